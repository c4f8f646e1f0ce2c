#include "app/runtime.h"

#include "common/log.h"
#include "common/resources.h"
#include "invoker/invoker.h"
#include "metrics/metrics.h"
#include "poller/poller.h"
#include "scaler/decision.h"
#include "scaler/stall.h"
#include "scaler/worker_pool.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <librdkafka/rdkafkacpp.h>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace kesm::app {

using std::chrono::milliseconds;

void checkLibrdkafkaSettings(const config::Config& config) {
  for (const auto& mapping : config.mappings) {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string err;
    for (const auto& [key, value] : poller::consumerSettings(mapping, "kesm-check")) {
      if (conf->set(key, value, err) != RdKafka::Conf::CONF_OK) {
        throw std::runtime_error("mapping '" + mapping.name + "': librdkafka setting '" + key +
                                 "': " + err);
      }
    }
  }
}

namespace {

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string joinServers(const std::vector<std::string>& servers) {
  std::string out;
  for (const auto& s : servers) {
    out += (out.empty() ? "" : ",") + s;
  }
  return out;
}

scaler::ScalingPolicy policyOf(const config::Mapping& mapping) {
  scaler::ScalingPolicy p;
  p.minimum_pollers = mapping.scaling.minimum_pollers;
  p.maximum_pollers = mapping.scaling.maximum_pollers;
  p.batch_size = mapping.batching.batch_size;
  p.max_concurrent_batches = mapping.scaling.max_concurrent_batches;
  p.scale_down_stabilization = mapping.scaling.scale_down_stabilization;
  return p;
}

// One mapping's controller: probes lag every interval, publishes it, sets the poller count.
class MappingController final : public scaler::FatalSink {
public:
  MappingController(const config::Mapping& mapping, metrics::Registry& registry,
                    milliseconds interval)
      : mapping_(mapping), registry_(registry), probe_(registry, mapping.name), interval_(interval),
        scaler_(policyOf(mapping)) {
    poller::PollerContext base;
    base.mapping = mapping;
    base.probe = &probe_;
    base.client_id = "kesm-" + mapping.name;
    invoker::HttpInvokerOptions opts;
    opts.url = mapping.function.url;
    opts.timeout = mapping.function.timeout;
    opts.bootstrap_servers = joinServers(mapping.source.bootstrap_servers);
    opts.format = poller::eventFormat(mapping);
    opts.detect_error_body = mapping.function.detect_error_body;
    opts.log_name = mapping.name;
    base.make_invoker = [opts] { return invoker::makeHttpInvoker(opts); };
    if (!mapping.on_failure.destination_topic.empty()) {
      base.dead_letters = poller::makeKafkaDeadLetterSink(mapping, milliseconds(30000));
    }
    base.fatal = this;
    base.invocations = invocations_;
    base.notes = notes_;
    partitions_at_start_ = std::make_shared<PartitionsAtStart>();
    base.partitions_at_start = partitions_at_start_;
    pool_ = std::make_unique<scaler::InProcessWorkerPool>(std::move(base));
    lag_source_ = scaler::makeKafkaLagSource(mapping, milliseconds(5000), partitions_at_start_);
    probe_.pollers_min.Set(mapping.scaling.minimum_pollers);
    probe_.pollers_max.Set(mapping.scaling.maximum_pollers);
    probe_.lag_stale.Set(1); // until the first probe succeeds
    probe_.state_enabled.Set(1);
    probe_.state_disabled.Set(0);
  }

  void reportFatal(const std::string& reason) override { disable(reason); }

  // Moves the mapping to Disabled: its pollers retire (a poller that met the fatal error
  // commits nothing of its failing batch) and none is spawned until a restart. Thread-safe,
  // does not block: pollers call it from their own thread.
  void disable(const std::string& reason) {
    {
      std::lock_guard lock(mutex_);
      if (disabled_) {
        return;
      }
      disabled_ = true;
      disabled_reason_ = reason;
    }
    probe_.state_enabled.Set(0);
    probe_.state_disabled.Set(1);
    log(LogLevel::kError, "controller", mapping_.name, ": mapping DISABLED: ", reason,
        ". Other mappings keep running; fix the cause and restart kesm to enable it again.");
    cv_.notify_all();
  }

  bool disabled() {
    std::lock_guard lock(mutex_);
    return disabled_;
  }

  ~MappingController() override { stop(); }

  // Throws ResourceError when the minimum pollers or the controller cannot start: at startup
  // that ends kesm with the reason (exit 1); later, a pool short of threads holds instead.
  void start() {
    if (!disabled()) {
      notePartitionsAtStart();
      setDesired(mapping_.scaling.minimum_pollers);
      std::string error = pool_->status().spawn_error;
      if (!error.empty()) {
        throw ResourceError(error);
      }
    }
    thread_ = startThread("the controller of mapping " + mapping_.name, [this] { loop(); });
  }

  bool stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) {
        return true;
      }
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
      thread_.join();
    }
    bool ok = pool_->stopAll(mapping_.scaling.grace_period + milliseconds(10000));
    probe_.pollers_starting.Set(0);
    probe_.pollers_running.Set(0);
    probe_.pollers_stopping.Set(0);
    return ok;
  }

  MappingSnapshot snapshot() {
    MappingSnapshot s;
    s.name = mapping_.name;
    auto status = pool_->status();
    s.active = status.active;
    s.running = status.running;
    s.stopping = status.stopping;
    {
      std::lock_guard lock(mutex_);
      s.desired = desired_;
      s.lag = last_sample_;
      s.lag_stale = lag_stale_;
      s.disabled = disabled_;
      s.disabled_reason = disabled_reason_;
    }
    s.polled = probe_.events_polled.Value();
    s.invoked = probe_.events_invoked.Value();
    s.failed = probe_.events_failed.Value();
    s.committed = probe_.events_committed.Value();
    return s;
  }

  std::string statusJson() {
    auto s = snapshot();
    auto status = pool_->status();
    std::ostringstream out;
    std::string reason;
    bool disabled = false;
    {
      std::lock_guard lock(mutex_);
      disabled = disabled_;
      reason = disabled_reason_;
    }
    out << "{\"name\":" << jsonString(s.name) << ",\"state\":\""
        << (disabled ? "Disabled" : "Enabled") << "\"";
    if (disabled) {
      out << ",\"stateReason\":" << jsonString(reason);
    }
    out << ",\"topics\":[";
    for (size_t i = 0; i < mapping_.source.topics.size(); ++i) {
      out << (i ? "," : "") << jsonString(mapping_.source.topics[i]);
    }
    out << "],\"consumerGroupId\":" << jsonString(mapping_.source.consumer_group_id)
        << ",\"pollers\":{\"desired\":" << s.desired << ",\"active\":" << s.active
        << ",\"running\":" << s.running << ",\"stopping\":" << s.stopping
        << ",\"minimum\":" << mapping_.scaling.minimum_pollers
        << ",\"maximum\":" << mapping_.scaling.maximum_pollers << ",\"workers\":[";
    for (size_t i = 0; i < status.pollers.size(); ++i) {
      const auto& p = status.pollers[i];
      out << (i ? "," : "") << "{\"id\":" << jsonString(p.id) << ",\"state\":\""
          << poller::toString(p.state) << "\",\"partitions\":" << p.partitions << "}";
    }
    out << "]},\"lag\":{\"stale\":" << (s.lag_stale ? "true" : "false");
    const auto notes = notes_->snapshot();
    std::map<TopicPartition, std::optional<std::chrono::steady_clock::time_point>> stalled;
    {
      std::lock_guard lock(mutex_);
      if (s.lag) {
        for (const auto& p : s.lag->partitions) {
          stalled[p.tp] = stall_.stalledSince(p.tp);
        }
      }
    }
    const auto steady_now = std::chrono::steady_clock::now();
    const auto wall_now = std::chrono::system_clock::now();
    if (s.lag) {
      out << ",\"total\":" << s.lag->total << ",\"max\":" << s.lag->max << ",\"partitions\":[";
      for (size_t i = 0; i < s.lag->partitions.size(); ++i) {
        const auto& p = s.lag->partitions[i];
        out << (i ? "," : "") << "{\"topic\":" << jsonString(p.tp.topic)
            << ",\"partition\":" << p.tp.partition.value() << ",\"lag\":" << p.lag
            << ",\"highWatermark\":" << p.high << ",\"committed\":";
        if (p.committed) {
          out << *p.committed;
        } else {
          out << "null";
        }
        // Lagging with no commit progress since: null when not lagging.
        out << ",\"stalledSince\":";
        if (auto since = stalled[p.tp]) {
          auto wall = wall_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                     steady_now - *since);
          out << jsonString(utcTimestamp(wall)) << ",\"stalledSeconds\":"
              << std::chrono::duration_cast<milliseconds>(steady_now - *since).count() / 1000.0;
        } else {
          out << "null,\"stalledSeconds\":0";
        }
        if (auto n = notes.find(p.tp); n != notes.end()) {
          out << ",\"note\":" << jsonString(n->second);
        }
        out << "}";
      }
      out << "]";
    }
    out << "},\"events\":{\"polled\":" << static_cast<long long>(s.polled)
        << ",\"invoked\":" << static_cast<long long>(s.invoked)
        << ",\"failedInvoke\":" << static_cast<long long>(s.failed)
        << ",\"committed\":" << static_cast<long long>(s.committed) << "}}";
    return out.str();
  }

  // A disabled mapping does not make kesm unready: it is reported in /status and metrics,
  // and the other mappings are served.
  bool ready() {
    if (disabled()) {
      return true;
    }
    auto s = snapshot();
    return !s.lag_stale && s.running > 0;
  }

private:
  // LATEST: the partitions that exist now start at their end, any added later at their
  // beginning (poller.cc, startLatest). Runs before the first poller and the controller's
  // thread start, which then only read the set.
  void notePartitionsAtStart() {
    if (mapping_.source.starting_position != config::StartingPosition::kLatest) {
      return;
    }
    scaler::ProbeResult result = lag_source_->probe();
    if (!result.sample) {
      log(LogLevel::kWarn, "controller", mapping_.name,
          ": cannot list the topics' partitions at start (", result.error,
          "); LATEST then starts every partition without a committed offset at its end, also "
          "partitions added while kesm runs");
      return;
    }
    for (const auto& p : result.sample->partitions) {
      partitions_at_start_->partitions.insert(p.tp);
    }
    partitions_at_start_->known = true;
  }

  void loop() {
    std::unique_lock lock(mutex_);
    bool retired = false;
    while (!stopping_) {
      bool disabled = disabled_;
      lock.unlock();
      if (disabled && !retired) {
        setDesired(0); // the pollers retire; the lag is still probed and published
        retired = true;
      }
      evaluate(disabled);
      lock.lock();
      cv_.wait_for(lock, interval_,
                   [this, disabled] { return stopping_ || disabled_ != disabled; });
    }
  }

  void evaluate(bool disabled) {
    auto started = std::chrono::steady_clock::now();
    scaler::ProbeResult result = lag_source_->probe();
    // A missing topic or refused access, seen twice in a row (a broker that restarts may
    // answer once without the topic), disables the mapping.
    fatal_probes_ = result.fatal ? fatal_probes_ + 1 : 0;
    if (fatal_probes_ >= 2 && !disabled) {
      disable(result.error);
      disabled = true;
    }
    probe_.lag_probe_duration.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    scaler::Observation observation;
    observation.at = started;
    observation.active_pollers = pool_->status().active;
    // Capacity comes from how long invocations take (scaler/decision.h).
    auto invocations = invocations_->invocationTotals();
    observation.invocations = invocations.count;
    observation.invocation_seconds = invocations.seconds;
    if (result.sample) {
      const auto& sample = *result.sample;
      std::lock_guard stall_lock(mutex_);
      stall_.observe(started, sample);
      for (const auto& p : sample.partitions) {
        registry_.offsetLag(mapping_.name, p.tp.topic, p.tp.partition.value())
            .Set(static_cast<double>(p.lag));
        auto since = stall_.stalledSince(p.tp);
        registry_.partitionStalled(mapping_.name, p.tp.topic, p.tp.partition.value())
            .Set(since ? std::chrono::duration<double>(started - *since).count() : 0.0);
      }
      probe_.lag_total.Set(static_cast<double>(sample.total));
      probe_.lag_max.Set(static_cast<double>(sample.max));
      probe_.lag_stale.Set(0);
      observation.partitions = static_cast<int>(sample.partitions.size());
      observation.lagging_partitions = sample.lagging_partitions;
      observation.total_lag = sample.total;
      observation.high_watermark_sum = sample.high_sum;
      observation.committed_sum = sample.high_sum - sample.total;
      last_sample_ = std::move(result.sample);
      lag_stale_ = false;
    } else {
      observation.probe_ok = false;
      probe_.lag_probe_failures.Increment();
      probe_.lag_stale.Set(1);
      log(LogLevel::kWarn, "controller", mapping_.name,
          ": lag probe failed, holding the last decision: ", result.error);
      std::lock_guard lock(mutex_);
      lag_stale_ = true;
    }
    if (disabled) {
      return; // no scaling: the pollers stay retired
    }
    scaler::Decision decision = scaler_.decide(observation);
    int before = desired_;
    const char* direction =
        decision.desired > before ? "up" : (decision.desired < before ? "down" : "hold");
    probe_.scalingDecisions(direction, scaler::toString(decision.reason)).Increment();
    if (decision.desired != before) {
      log(LogLevel::kInfo, "controller", mapping_.name, ": pollers ", before, " -> ",
          decision.desired, " (", scaler::toString(decision.reason), "; lag ",
          observation.total_lag, " on ", observation.lagging_partitions, "/",
          observation.partitions, " partitions, ingest ",
          static_cast<long long>(decision.ingest_rate), "/s, drain ",
          static_cast<long long>(decision.drain_rate), "/s)");
    }
    setDesired(decision.desired);
  }

  void setDesired(int desired) {
    {
      std::lock_guard lock(mutex_);
      desired_ = desired;
    }
    pool_->scaleTo(desired);
    probe_.pollers_desired.Set(desired);
    auto status = pool_->status();
    probe_.pollers_starting.Set(status.active - status.running);
    probe_.pollers_running.Set(status.running);
    probe_.pollers_stopping.Set(status.stopping);
  }

  config::Mapping mapping_;
  metrics::Registry& registry_;
  metrics::MappingProbe probe_;
  milliseconds interval_;
  std::unique_ptr<scaler::InProcessWorkerPool> pool_;
  std::unique_ptr<scaler::LagSource> lag_source_;
  std::shared_ptr<PartitionsAtStart> partitions_at_start_;
  scaler::Scaler scaler_;
  std::shared_ptr<scaler::InvocationTally> invocations_ =
      std::make_shared<scaler::InvocationTally>();

  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool disabled_ = false;
  std::string disabled_reason_;
  int fatal_probes_ = 0; // consecutive probes that failed with a fatal error
  int desired_ = 0;
  std::optional<scaler::LagSample> last_sample_;
  scaler::StallTracker stall_; // under mutex_
  std::shared_ptr<poller::PartitionNotes> notes_ = std::make_shared<poller::PartitionNotes>();
  bool lag_stale_ = true;
  std::thread thread_;
};

} // namespace

struct Runtime::Impl {
  Impl(config::Config c, RuntimeOptions o) : config(std::move(c)), options(o) {}

  void liveLoop() {
    auto started = std::chrono::steady_clock::now();
    std::vector<double> last_committed(controllers.size(), 0.0);
    auto last = started;
    std::unique_lock lock(live_mutex);
    while (!live_stop) {
      live_cv.wait_for(lock, milliseconds(1000), [this] { return live_stop; });
      if (live_stop) {
        break;
      }
      auto now = std::chrono::steady_clock::now();
      double secs = std::chrono::duration<double>(now - last).count();
      double elapsed = std::chrono::duration<double>(now - started).count();
      last = now;
      for (size_t i = 0; i < controllers.size(); ++i) {
        auto s = controllers[i]->snapshot();
        double rate = secs > 0 ? (s.committed - last_committed[i]) / secs : 0;
        last_committed[i] = s.committed;
        std::string extra;
        if (s.active > s.running) {
          extra += ", " + std::to_string(s.active - s.running) + " starting";
        }
        if (s.stopping > 0) {
          extra += ", " + std::to_string(s.stopping) + " retiring";
        }
        if (s.disabled) {
          std::printf("[%6.1fs] %s: DISABLED: %s\n", elapsed, s.name.c_str(),
                      s.disabled_reason.c_str());
          continue;
        }
        std::printf("[%6.1fs] %s: lag %s%lld (max %lld) | pollers desired %d, running %d%s"
                    " | %.0f events/s | committed %.0f, failed records %.0f\n",
                    elapsed, s.name.c_str(), s.lag_stale ? "STALE " : "",
                    s.lag ? static_cast<long long>(s.lag->total) : 0LL,
                    s.lag ? static_cast<long long>(s.lag->max) : 0LL, s.desired, s.running,
                    extra.c_str(), rate, s.committed, s.failed);
      }
      std::fflush(stdout);
    }
  }

  config::Config config;
  RuntimeOptions options;
  metrics::Registry registry;
  std::unique_ptr<metrics::MetricsServer> server;
  std::vector<std::unique_ptr<MappingController>> controllers;

  std::mutex live_mutex;
  std::condition_variable live_cv;
  bool live_stop = false;
  std::thread live_thread;
  bool stopped = false;
};

Runtime::Runtime(config::Config config, RuntimeOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), options)) {}

Runtime::~Runtime() { stop(); }

void Runtime::start() {
  checkLibrdkafkaSettings(impl_->config);
  for (const auto& mapping : impl_->config.mappings) {
    impl_->controllers.push_back(std::make_unique<MappingController>(
        mapping, impl_->registry, mapping.scaling.evaluation_interval));
    auto reason = impl_->options.disabled_at_start.find(mapping.name);
    if (reason != impl_->options.disabled_at_start.end()) {
      impl_->controllers.back()->disable(reason->second);
    }
  }
  metrics::EndpointHooks hooks;
  hooks.ready = [this] { return ready(); };
  hooks.status = [this] { return statusJson(); };
  // Its acceptor and first connections; without them its own error would only say "open".
  ensureHeadroom("the metrics server on " + impl_->config.server.listen, 2, 4);
  impl_->server =
      std::make_unique<metrics::MetricsServer>(impl_->config.server.listen, impl_->registry, hooks);
  log(LogLevel::kInfo, "kesm", "serving /metrics /healthz /readyz /status on port ",
      impl_->server->port());
  for (auto& c : impl_->controllers) {
    c->start();
  }
  if (impl_->options.live_line) {
    impl_->live_thread = startThread("the --live line", [this] { impl_->liveLoop(); });
  }
}

bool Runtime::stop() {
  if (impl_->stopped) {
    return true;
  }
  impl_->stopped = true;
  {
    std::lock_guard lock(impl_->live_mutex);
    impl_->live_stop = true;
  }
  impl_->live_cv.notify_all();
  if (impl_->live_thread.joinable()) {
    impl_->live_thread.join();
  }
  // Mappings stop in parallel: each has its own grace period.
  std::vector<std::thread> stoppers;
  std::atomic<bool> all_ok{true};
  for (auto& c : impl_->controllers) {
    auto stop = [&c, &all_ok] {
      if (!c->stop()) {
        all_ok = false;
      }
    };
    try {
      stoppers.emplace_back(stop);
    } catch (const std::system_error&) {
      stop(); // no thread left: one after the other, each still bounded
    }
  }
  for (auto& t : stoppers) {
    t.join();
  }
  impl_->server.reset();
  impl_->controllers.clear();
  return all_ok;
}

std::vector<MappingSnapshot> Runtime::snapshot() {
  std::vector<MappingSnapshot> out;
  for (auto& c : impl_->controllers) {
    out.push_back(c->snapshot());
  }
  return out;
}

std::uint16_t Runtime::metricsPort() const { return impl_->server ? impl_->server->port() : 0; }

std::string Runtime::statusJson() {
  std::string out = "{\"mappings\":[";
  for (size_t i = 0; i < impl_->controllers.size(); ++i) {
    out += (i ? "," : "") + impl_->controllers[i]->statusJson();
  }
  return out + "]}";
}

bool Runtime::ready() {
  if (impl_->controllers.empty()) {
    return false;
  }
  for (auto& c : impl_->controllers) {
    if (!c->ready()) {
      return false;
    }
  }
  return true;
}

} // namespace kesm::app
