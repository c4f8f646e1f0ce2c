#include "app/runtime.h"

#include "app/status.h"
#include "common/log.h"
#include "common/resources.h"
#include "invoker/invoker.h"
#include "kafka/rdkafka_adapter.h"
#include "metrics/metrics.h"
#include "poller/in_process_pool.h"
#include "poller/poller.h"
#include "scaler/controller.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

namespace kesm::app {

using std::chrono::milliseconds;

void checkLibrdkafkaSettings(const config::Config& config) {
  for (const auto& mapping : config.mappings) {
    try {
      rd_kafka_conf_destroy(
          kafka::newConf(kafka::consumerSettings(mapping, "kesm-check"), kafka::OnRefused::kThrow));
    } catch (const kafka::SettingError& e) {
      throw std::runtime_error("mapping '" + mapping.name + "': librdkafka setting '" + e.key() +
                               "': " + e.reason());
    }
  }
}

namespace {

// One mapping's parts: its metrics, the notes its pollers leave for /status, and its
// controller, which owns the pool (pollers as threads of this process) and the Kafka lag probe.
// Destroyed in reverse: the controller stops its pollers before the probe they count into goes.
struct MappingRuntime {
  MappingRuntime(const config::Mapping& mapping, metrics::Registry& registry, const Clock& clock)
      : probe(registry, mapping.name) {
    auto invocations = std::make_shared<scaler::InvocationTally>();
    auto partitions_at_start = std::make_shared<PartitionsAtStart>();
    poller::PollerContext base;
    base.mapping = mapping;
    base.probe = &probe;
    base.client_id = "kesm-" + mapping.name;
    invoker::HttpInvokerOptions opts;
    opts.url = mapping.function.url;
    opts.timeout = mapping.function.timeout;
    opts.bootstrap_servers = kafka::joinServers(mapping.source.bootstrap_servers);
    opts.format = poller::eventFormat(mapping);
    opts.detect_error_body = mapping.function.detect_error_body;
    opts.log_name = mapping.name;
    base.make_invoker = [opts] { return invoker::makeHttpInvoker(opts); };
    if (!mapping.on_failure.destination_topic.empty()) {
      base.dead_letters = poller::makeKafkaDeadLetterSink(mapping, milliseconds(30000));
    }
    base.invocations = invocations;
    base.notes = notes;
    base.partitions_at_start = partitions_at_start;

    scaler::ControllerParts parts;
    parts.make_pool = [base = std::move(base)](scaler::FatalSink& fatal) mutable {
      base.fatal = &fatal;
      return poller::makeInProcessWorkerPool(std::move(base));
    };
    parts.lag_source = scaler::makeKafkaLagSource(mapping, milliseconds(5000), partitions_at_start);
    parts.invocations = std::move(invocations);
    parts.partitions_at_start = std::move(partitions_at_start);
    parts.clock = &clock;
    parts.registry = &registry;
    parts.probe = &probe;
    controller = std::make_unique<scaler::Controller>(mapping, std::move(parts));
  }

  EventCounts events() const {
    return EventCounts{probe.events_polled.Value(), probe.events_invoked.Value(),
                       probe.events_failed.Value(), probe.events_committed.Value()};
  }

  MappingSnapshot snapshot() const {
    const auto c = controller->snapshot();
    const auto e = events();
    MappingSnapshot s;
    s.name = controller->mapping().name;
    s.desired = c.desired;
    s.active = c.pool.active;
    s.running = c.pool.running;
    s.stopping = c.pool.stopping;
    s.lag = c.lag;
    s.lag_stale = c.lag_stale;
    s.disabled = c.disabled;
    s.disabled_reason = c.disabled_reason;
    s.polled = e.polled;
    s.invoked = e.invoked;
    s.failed = e.failed;
    s.committed = e.committed;
    return s;
  }

  std::string statusJson() const {
    return mappingStatusJson(controller->mapping(), controller->snapshot(), notes->snapshot(),
                             events(), std::chrono::steady_clock::now(),
                             std::chrono::system_clock::now());
  }

  metrics::MappingProbe probe;
  std::shared_ptr<poller::PartitionNotes> notes = std::make_shared<poller::PartitionNotes>();
  std::unique_ptr<scaler::Controller> controller;
};

} // namespace

struct Runtime::Impl {
  Impl(config::Config c, RuntimeOptions o) : config(std::move(c)), options(o) {}

  void liveLoop() {
    auto started = std::chrono::steady_clock::now();
    std::vector<double> last_committed(mappings.size(), 0.0);
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
      for (size_t i = 0; i < mappings.size(); ++i) {
        auto s = mappings[i]->snapshot();
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
  SteadyClock clock; // outlives the controllers
  std::vector<std::unique_ptr<MappingRuntime>> mappings;

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
    impl_->mappings.push_back(
        std::make_unique<MappingRuntime>(mapping, impl_->registry, impl_->clock));
    auto reason = impl_->options.disabled_at_start.find(mapping.name);
    if (reason != impl_->options.disabled_at_start.end()) {
      impl_->mappings.back()->controller->disable(reason->second);
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
  for (auto& c : impl_->mappings) {
    c->controller->start();
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
  for (auto& c : impl_->mappings) {
    auto stop = [&c, &all_ok] {
      if (!c->controller->stop()) {
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
  impl_->mappings.clear();
  return all_ok;
}

std::vector<MappingSnapshot> Runtime::snapshot() {
  std::vector<MappingSnapshot> out;
  for (auto& c : impl_->mappings) {
    out.push_back(c->snapshot());
  }
  return out;
}

std::uint16_t Runtime::metricsPort() const { return impl_->server ? impl_->server->port() : 0; }

std::string Runtime::statusJson() {
  std::string out = "{\"mappings\":[";
  for (size_t i = 0; i < impl_->mappings.size(); ++i) {
    if (i > 0) {
      out += ','; // not `(i ? "," : "") + …`: GCC 12 at -O3 reports a false -Wrestrict on it
    }
    out += impl_->mappings[i]->statusJson();
  }
  return out + "]}";
}

bool Runtime::ready() {
  if (impl_->mappings.empty()) {
    return false;
  }
  for (auto& c : impl_->mappings) {
    if (!c->controller->ready()) {
      return false;
    }
  }
  return true;
}

} // namespace kesm::app
