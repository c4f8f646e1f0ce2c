#include "bench/drain_options.h"

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace kesm::bench::drain {
namespace {

using namespace std::chrono_literals;

[[noreturn]] void usageError(const std::string& message) {
  std::cerr << "kesm_drain: " << message << " (try --help)\n";
  std::exit(2);
}

constexpr const char* kUsage = R"(bench/drain — load a topic, run kesm on it, measure (issue 5)

usage: bench/drain [--scenario drain|throughput|latency|scale-up|memory] [options]

  --backend kafka|mock|auto   auto (default): a real Apache Kafka broker (tests/e2e/kafka.sh)
                              when java and mvn are on PATH, else librdkafka's mock cluster
  --records N                 records to load (drain, throughput, memory) or to burst (scale-up)
  --record-bytes B            value size of each record (default 1024)
  --partitions P              partitions of the topic
  --batch-size S              kesm's batching.batchSize
  --window DURATION           kesm's batching.maximumBatchingWindow
  --latency DURATION          the sample function's time per batch
  --min-pollers A             kesm's scaling.minimumPollers
  --max-pollers B             kesm's scaling.maximumPollers
  --mode inprocess|pods       drain, throughput: one `kesm run` (default), or pods mode:
                              max-pollers / K `kesm poller --pollers K` processes of one
                              mapping, started at once (needs --min-pollers = --max-pollers)
  --pollers-per-pod K         pods mode: pollers of each process (1-64, default 1; must divide
                              --max-pollers)
  --max-concurrent-batches C  kesm's scaling.maxConcurrentBatches (passed only when given)
  --evaluation-interval D     kesm's scaling.evaluationInterval
  --rate R --duration D       latency scenario: records/s produced live, and for how long
  --idle D                    scale-up scenario: idle time before the burst (default 8s)
  --pollers LIST              memory scenario: poller counts (default 1,10,50,100)
  --settle D                  memory scenario: wait at each count before reading RSS (default 5s)
  --topic NAME                topic (kafka: reused when it already holds exactly the records)
  --broker-dir DIR            kafka.sh state dir (default <repo>/build/drain-kafka); a broker
                              already running there is used and left running
  --keep-broker               leave a broker this run started running (to reuse its topics)
  --kesm PATH                 the kesm binary (default: the one built beside this program)
  --work-dir DIR              kesm's config and log (default /tmp/kesm-drain-<pid>)
  --timeout D                 give up waiting for the drain (default 15m)
  --json                      one JSON object on stdout instead of the report
)";

milliseconds parseDuration(const std::string& text, const std::string& option) {
  std::size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    usageError(option + ": '" + text + "' is not a duration such as 100ms, 1s or 2m");
  }
  std::string unit = text.substr(pos);
  double ms = 0;
  if (unit == "ms" || (unit.empty() && value == 0)) {
    ms = value;
  } else if (unit == "s") {
    ms = value * 1000;
  } else if (unit == "m") {
    ms = value * 60000;
  } else {
    usageError(option + ": '" + text + "' is not a duration such as 100ms, 1s or 2m");
  }
  if (ms < 0) {
    usageError(option + " must not be negative");
  }
  return milliseconds(static_cast<std::int64_t>(std::llround(ms)));
}

std::int64_t parseInt(const std::string& text, const std::string& option, std::int64_t low,
                      std::int64_t high) {
  std::size_t pos = 0;
  std::int64_t value = 0;
  try {
    value = std::stoll(text, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos == 0 || pos != text.size() || value < low || value > high) {
    usageError(option + ": '" + text + "' is not an integer in " + std::to_string(low) + ".." +
               std::to_string(high));
  }
  return value;
}

} // namespace

Options parseOptions(int argc, char** argv) {
  std::map<std::string, std::string> given;
  Options o;
  for (int i = 0; i < argc; ++i) {
    // Appended piece by piece: `" " + std::string(...)` inserts at the front of a temporary,
    // which GCC 12 at -O3 misreads, once inlined, as an overlapping memcpy (-Wrestrict).
    if (i > 0) {
      o.command_line += ' ';
    }
    o.command_line += i == 0 ? "bench/drain" : argv[i];
  }
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (a == "--json" || a == "--keep-broker") {
      given[a.substr(2)] = "1";
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      usageError("unexpected argument '" + a + "'");
    }
    std::string name = a.substr(2), value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      usageError(a + " needs a value");
    }
    given[name] = value;
  }
  if (auto it = given.find("scenario"); it != given.end()) {
    o.scenario_name = it->second;
    given.erase(it);
  }
  if (o.scenario_name == "drain") {
    o.scenario = Scenario::kDrain;
  } else if (o.scenario_name == "throughput") {
    // One poller, a function that answers at once, big batches (1 KB records: a batch of
    // 1000 is a ~1.4 MB event, well under the 6 MiB limit).
    o.scenario = Scenario::kThroughput;
    o.records = 400000;
    o.batch_size = 1000;
    o.window = 100ms;
    o.latency = 0ms;
    o.min_pollers = o.max_pollers = 1;
  } else if (o.scenario_name == "latency") {
    o.scenario = Scenario::kLatency;
    o.partitions = 10;
    o.window = 0ms;
    o.latency = 0ms;
    o.min_pollers = o.max_pollers = 1;
  } else if (o.scenario_name == "scale-up") {
    o.scenario = Scenario::kScaleUp;
    o.records = 100000;
    o.min_pollers = 1;
    o.max_pollers = 100;
    o.evaluation_interval = 1000ms;
  } else if (o.scenario_name == "memory") {
    o.scenario = Scenario::kMemory;
    o.records = 10000; // light load: 100 records per partition
    o.latency = 0ms;
  } else {
    usageError("--scenario: '" + o.scenario_name +
               "' is not drain, throughput, latency, scale-up or memory");
  }
  for (const auto& [name, value] : given) {
    const std::string opt = "--" + name;
    if (name == "backend") {
      if (value != "kafka" && value != "mock" && value != "auto") {
        usageError("--backend: '" + value + "' is not kafka, mock or auto");
      }
      o.backend = value;
    } else if (name == "records") {
      o.records = parseInt(value, opt, 1, 1'000'000'000);
    } else if (name == "record-bytes") {
      o.record_bytes = static_cast<int>(parseInt(value, opt, 0, 900'000));
    } else if (name == "partitions") {
      o.partitions = static_cast<int>(parseInt(value, opt, 1, 10000));
    } else if (name == "batch-size") {
      o.batch_size = static_cast<int>(parseInt(value, opt, 1, 10000));
    } else if (name == "window") {
      o.window = parseDuration(value, opt);
    } else if (name == "latency") {
      o.latency = parseDuration(value, opt);
    } else if (name == "min-pollers") {
      o.min_pollers = static_cast<int>(parseInt(value, opt, 1, 2000));
    } else if (name == "max-pollers") {
      o.max_pollers = static_cast<int>(parseInt(value, opt, 1, 2000));
    } else if (name == "mode") {
      if (value != "inprocess" && value != "pods") {
        usageError("--mode: '" + value + "' is not inprocess or pods");
      }
      o.pods = value == "pods";
    } else if (name == "pollers-per-pod") {
      o.pollers_per_pod = static_cast<int>(parseInt(value, opt, 1, 64));
    } else if (name == "max-concurrent-batches") {
      o.max_concurrent_batches = static_cast<int>(parseInt(value, opt, 1, 1000));
    } else if (name == "evaluation-interval") {
      o.evaluation_interval = parseDuration(value, opt);
    } else if (name == "rate") {
      o.rate = static_cast<double>(parseInt(value, opt, 1, 10'000'000));
    } else if (name == "duration") {
      o.duration = parseDuration(value, opt);
    } else if (name == "idle") {
      o.idle = parseDuration(value, opt);
    } else if (name == "settle") {
      o.settle = parseDuration(value, opt);
    } else if (name == "pollers") {
      o.poller_counts.clear();
      std::istringstream in(value);
      for (std::string item; std::getline(in, item, ',');) {
        o.poller_counts.push_back(static_cast<int>(parseInt(item, opt, 1, 2000)));
      }
      if (o.poller_counts.empty()) {
        usageError("--pollers needs a list such as 1,10,50,100");
      }
    } else if (name == "topic") {
      o.topic = value;
    } else if (name == "broker-dir") {
      o.broker_dir = value;
    } else if (name == "keep-broker") {
      o.keep_broker = true;
    } else if (name == "kesm") {
      o.kesm = value;
    } else if (name == "work-dir") {
      o.work_dir = value;
    } else if (name == "timeout") {
      o.timeout = parseDuration(value, opt);
    } else if (name == "json") {
      o.json = true;
    } else {
      usageError("unknown option --" + name);
    }
  }
  if (o.min_pollers > o.max_pollers) {
    usageError("--min-pollers must not exceed --max-pollers");
  }
  if (o.pods) {
    // The pods are what `kesm controller` would scale; here their number is fixed.
    if (o.scenario != Scenario::kDrain && o.scenario != Scenario::kThroughput) {
      usageError("--mode pods runs the drain and throughput scenarios only");
    }
    if (o.min_pollers != o.max_pollers) {
      usageError("--mode pods runs a fixed number of pollers: give --min-pollers = --max-pollers");
    }
    if (o.max_pollers % o.pollers_per_pod != 0) {
      usageError("--mode pods: --pollers-per-pod " + std::to_string(o.pollers_per_pod) +
                 " does not divide --max-pollers " + std::to_string(o.max_pollers));
    }
  } else if (given.count("pollers-per-pod") != 0) {
    usageError("--pollers-per-pod needs --mode pods");
  }
  if (o.broker_dir.empty()) {
    o.broker_dir = std::string(KESM_SOURCE_DIR) + "/build/drain-kafka";
  }
  if (o.work_dir.empty()) {
    o.work_dir = "/tmp/kesm-drain-" + std::to_string(::getpid());
  }
  return o;
}

} // namespace kesm::bench::drain
