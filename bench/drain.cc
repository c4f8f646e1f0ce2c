// bench/drain: loads a topic, runs kesm (a separate process) against the sample function
// (in this process) and measures how kesm drains it (issue 5). Results: docs/benchmarks.md.
//
// Scenarios:
//   drain       (default) a preloaded backlog from TRIM_HORIZON: drain time against the
//               physical bound ceil(records / batch / partitions) x latency
//   throughput  one poller, a function that answers at once: records/s, MB/s, CPU s per GB
//   latency     records produced live at a steady rate: receive time - record timestamp
//   scale-up    kesm idle at its minimum, then a burst: time until running pollers reach
//               the decision (`desired`)
//   memory      kesm's RSS at several fixed poller counts: RSS per additional poller
//
// The sample function runs here so that what it received is counted independently of
// kesm: distinct (partition, offset) pairs, duplicates, per-record latency. kesm is spawned
// only once the topic is loaded, so the drain time is kesm's alone; the clock starts at the
// spawn. kesm's /metrics and /status are read every 250 ms, and the group's committed
// offsets are read with Kafka's OffsetFetch by a client that never joins the group.
// --mode pods (issue 17) runs the drain with max-pollers / K `kesm poller` processes instead
// of one `kesm run`: the pods of pods mode without the kubelet; CPU, memory and threads are
// summed over them.
//
// This file holds main and the steps the scenarios share; drain_scenarios.cc the scenarios;
// drain_options.h the command line; drain_kafka.h the broker, the loader and the committed
// offsets; drain_kesm.h the kesm process, its /proc and the sampler; drain_tally.h what the
// function saw; drain_report.h the figures; drain_util.h small helpers.

#include "bench/drain_bench.h"
#include "bench/drain_options.h"
#include "bench/drain_util.h"
#include "samplefn/sample_function.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace kesm::bench::drain {
namespace {

void onSignal(int) { g_interrupted = true; }

} // namespace

using namespace std::chrono_literals;

int Bench::run() {
  Backend backend = chooseBackend();
  const bool mock = backend == Backend::kMock;
  std::string banner =
      mock ? "BACKEND: librdkafka's MOCK Kafka cluster, in this process (not a real broker: "
             "figures are not comparable with Apache Kafka)"
           : "BACKEND: a real Apache Kafka 4.4 broker (tests/e2e/kafka.sh, KRaft, loopback)";
  std::cerr << "\n==== " << banner << " ====\n\n";
  report_.str("backend", mock ? "mock" : "kafka");
  report_.str("scenario", o_.scenario_name);
  report_.str("command", o_.command_line);
  report_.str("kesm_binary", o_.kesm);
  checkMockSize(mock);
  ::mkdir(o_.work_dir.c_str(), 0755);

  Broker broker(backend, o_);
  bootstrap_ = broker.bootstrap();
  broker_ = &broker;
  value_ = randomValue(o_.record_bytes);

  kesm::samplefn::SampleFunctionOptions fn;
  fn.latency = o_.latency;
  fn.decide = [this](const std::vector<kesm::samplefn::ReceivedRecord>& batch) {
    tally_.received(batch);
    return kesm::samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [this](const std::vector<kesm::samplefn::ReceivedRecord>& batch) {
    tally_.delivered(batch);
  };
  kesm::samplefn::SampleFunction function(fn);
  url_ = function.url();

  int rc = 0;
  switch (o_.scenario) {
  case Scenario::kDrain:
  case Scenario::kThroughput:
    rc = drain();
    break;
  case Scenario::kLatency:
    rc = latency();
    break;
  case Scenario::kScaleUp:
    rc = scaleUp();
    break;
  case Scenario::kMemory:
    rc = memory();
    break;
  }
  report_.str("kesm_exit_code_after_SIGTERM", exit_codes_);
  if (!o_.json) {
    std::cout << "\n==== " << banner << " ====\n";
  }
  report_.print(o_.json);
  return rc;
}

Backend Bench::chooseBackend() {
  if (o_.backend == "kafka") {
    return Backend::kKafka;
  }
  if (o_.backend == "mock") {
    return Backend::kMock;
  }
  bool jvm = onPath("java") && onPath("mvn");
  note("--backend auto: java and mvn ", jvm ? "are" : "are NOT", " on PATH -> ",
       jvm ? "real Kafka" : "mock cluster");
  return jvm ? Backend::kKafka : Backend::kMock;
}

void Bench::checkMockSize(bool mock) const {
  if (!mock) {
    return;
  }
  std::int64_t records = o_.records;
  if (o_.scenario == Scenario::kLatency) {
    records =
        static_cast<std::int64_t>(o_.rate * std::chrono::duration<double>(o_.duration).count());
  }
  const std::int64_t per_partition = (records + o_.partitions - 1) / o_.partitions;
  const double bytes = static_cast<double>(per_partition) * (o_.record_bytes + 80);
  const double limit = 0.9 * 5 * 1024 * 1024;
  if (bytes > limit) {
    std::cerr << "kesm_drain: " << records << " records of " << o_.record_bytes << " bytes on "
              << o_.partitions << " partitions is " << std::llround(bytes / 1e6)
              << " MB per partition; librdkafka's mock cluster keeps only ~5 MiB per partition "
              << "and drops older records beyond that. Use --backend kafka, more --partitions "
              << "or fewer --records (at most ~"
              << static_cast<std::int64_t>(limit / (o_.record_bytes + 80)) * o_.partitions
              << " here).\n";
    std::exit(2);
  }
}

std::string Bench::uniqueSuffix() const {
  return std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count() %
                        1000000);
}

Watermarks Bench::loadTopic(std::int64_t records) {
  if (topic_.empty()) {
    topic_ = o_.topic.empty()
                 ? "drain-" + std::to_string(records) + "x" + std::to_string(o_.record_bytes) +
                       "-p" + std::to_string(o_.partitions)
                 : o_.topic;
  }
  if (!broker_->isMock()) {
    if (auto wm = watermarks(bootstrap_, topic_)) {
      if (static_cast<int>(wm->size()) == o_.partitions && sumRecords(*wm) == records) {
        note("reusing topic ", topic_, ": it already holds ", records, " records on ",
             o_.partitions, " partitions");
        report_.str("load", "reused topic " + topic_);
        return *wm;
      }
      throw std::runtime_error("topic " + topic_ + " exists with " + std::to_string(wm->size()) +
                               " partitions and " + std::to_string(sumRecords(*wm)) +
                               " records, not what was asked: pass another --topic");
    }
  }
  broker_->createTopic(topic_, o_.partitions);
  note("loading ", records, " records of ", o_.record_bytes, " bytes into ", topic_, " (",
       o_.partitions, " partitions; acks=1, no compression, linger 50 ms, 1 MB batches)");
  double seconds = produceBurst(bootstrap_, topic_, o_.partitions, records, value_);
  auto wm = watermarks(bootstrap_, topic_);
  if (!wm || sumRecords(*wm) != records) {
    throw std::runtime_error("after the load the topic holds " +
                             std::to_string(wm ? sumRecords(*wm) : 0) + " records, not " +
                             std::to_string(records));
  }
  double mb = static_cast<double>(records) * o_.record_bytes / 1e6;
  note("loaded in ", seconds, " s (", mb / seconds, " MB/s of values)");
  report_.num("load_seconds", seconds, 2, "s");
  report_.num("load_MBps", mb / seconds, 1, "MB/s");
  return *wm;
}

std::vector<pid_t> Bench::Run::pids() const {
  std::vector<pid_t> out;
  for (const auto& k : kesm) {
    out.push_back(k->pid());
  }
  return out;
}

Bench::Run Bench::startKesm(int min_pollers, int max_pollers, const Watermarks& wm) {
  Run run;
  const int processes = o_.pods ? max_pollers / o_.pollers_per_pod : 1;
  while (static_cast<int>(run.ports.size()) < processes) {
    std::uint16_t port = freePort(); // a port handed out twice is asked again
    if (std::find(run.ports.begin(), run.ports.end(), port) == run.ports.end()) {
      run.ports.push_back(port);
    }
  }
  run.group = "kesm-drain-" + uniqueSuffix();
  MappingSpec m{bootstrap_, topic_, run.group, url_, run.ports[0], broker_->isMock()};
  std::string config = o_.work_dir + "/kesm-" + std::to_string(max_pollers) + ".yaml";
  std::ofstream(config) << kesmYaml(o_, m, min_pollers, max_pollers);
  if (o_.pods) {
    note("spawning ", processes, " kesm poller processes of ", o_.pollers_per_pod,
         " poller(s) each (group ", run.group, "); config ", config, ", logs ", o_.work_dir,
         "/pod-N.log; the clock starts now");
  } else {
    note("spawning kesm (pollers ", min_pollers, "..", max_pollers, ", group ", run.group,
         "); config ", config, ", log ", o_.work_dir, "/kesm-", max_pollers,
         ".log; the clock starts now");
  }
  run.started = Clock::now();
  std::vector<SampledProcess> sampled;
  for (int i = 0; i < processes; ++i) {
    std::vector<std::string> args{"run", "--config", config};
    std::string log = o_.work_dir + "/kesm-" + std::to_string(max_pollers) + ".log";
    if (o_.pods) {
      // As a StatefulSet pod kesm-drain-i would run it (POD_NAME = the instance id).
      const auto port = std::to_string(run.ports[static_cast<std::size_t>(i)]);
      args = {"poller",
              "--config",
              config,
              "--mapping",
              "drain",
              "--pollers",
              std::to_string(o_.pollers_per_pod),
              "--instance-id",
              "kesm-drain-" + std::to_string(i),
              "--listen",
              "127.0.0.1:" + port};
      log = o_.work_dir + "/pod-" + std::to_string(i) + ".log";
    }
    run.kesm.push_back(std::make_unique<KesmChild>(o_.kesm, args, log));
    run.logs.push_back(log);
    sampled.push_back({run.kesm.back().get(), run.ports[static_cast<std::size_t>(i)]});
  }
  run.sampler = std::make_unique<Sampler>(std::move(sampled), o_.pods, max_pollers, run.started,
                                          bootstrap_, run.group, topic_, wm);
  return run;
}

void Bench::requireAlive(Run& run) {
  for (std::size_t i = 0; i < run.kesm.size(); ++i) {
    if (run.kesm[i]->running()) {
      continue;
    }
    int status = 0;
    std::cerr << runCommand("tail -n 30 '" + run.logs[i] + "'", status);
    throw std::runtime_error("kesm exited early with status " +
                             std::to_string(run.kesm[i]->exitCode()) + " (log: " + run.logs[i] +
                             ")");
  }
}

Bench::Stopped Bench::stopKesm(Run& run) {
  Stopped out;
  out.usage = procUsageSum(run.pids());
  for (pid_t pid : run.pids()) {
    out.pss_mb += pssMb(pid);
  }
  run.sampler->stop();
  out.rebalances = run.sampler->sumMetric("kesm_rebalances_total");
  for (pid_t pid : run.pids()) {
    ::kill(pid, SIGTERM); // all at once: each then has its own grace period, as pods do
  }
  std::map<int, int> codes;
  for (std::size_t i = 0; i < run.kesm.size(); ++i) {
    int code = run.kesm[i]->terminate(40s);
    codes[code]++;
    if (code != 0) {
      note("kesm did not exit 0 after SIGTERM (", code, "); log: ", run.logs[i]);
    }
  }
  // Appended piece by piece, as in parseOptions (drain_options.cc): GCC 12 at -O3 misreads `"," +
  // std::string` here as an overlapping memcpy (-Wrestrict).
  for (const auto& [code, count] : codes) {
    if (!exit_codes_.empty()) {
      exit_codes_ += ',';
    }
    exit_codes_ += std::to_string(code);
    if (run.kesm.size() > 1) {
      exit_codes_ += " x";
      exit_codes_ += std::to_string(count);
    }
  }
  return out;
}

double Bench::firstTime(const std::vector<Sample>& samples,
                        const std::function<bool(const Sample&)>& pred) {
  for (const auto& s : samples) {
    if (pred(s)) {
      return s.t;
    }
  }
  return std::nan("");
}

void Bench::reportDelivery(const Tally::Snapshot& t, std::int64_t expected) {
  report_.num("records_expected", static_cast<double>(expected), 0);
  report_.num("records_delivered_distinct", static_cast<double>(t.distinct), 0);
  report_.num("records_missing", static_cast<double>(expected - t.distinct), 0);
  report_.num("duplicates", static_cast<double>(t.total - t.distinct), 0);
  report_.num("order_violations", static_cast<double>(t.order_violations), 0);
  report_.num("latency_p50_ms", percentile(t.latencies_ms, 0.50), 1, "ms");
  report_.num("latency_p99_ms", percentile(t.latencies_ms, 0.99), 1, "ms");
  report_.num("latency_max_ms", percentile(t.latencies_ms, 1.0), 1, "ms");
}

} // namespace kesm::bench::drain

int main(int argc, char** argv) {
  using namespace kesm::bench::drain;
  Options options = parseOptions(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return Bench(std::move(options)).run();
  } catch (const std::exception& e) {
    std::cerr << "kesm_drain: " << e.what() << "\n";
    return 1;
  }
}
