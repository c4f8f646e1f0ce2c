#include "app/runtime.h"

#include "app/leadership.h"
#include "app/live_line.h"
#include "app/status.h"
#include "app/status_page.h"
#include "common/log.h"
#include "common/resources.h"
#include "k8s/statefulset_pool.h"
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

// Pods mode: how often a controller that could not read its StatefulSet tries again.
constexpr milliseconds kPodsSeedRetry{5000};

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

// One mapping's parts: its metrics, the notes its pollers leave for /status, and, while this
// replica runs pollers, its controller, which owns the pool (pollers as threads of this
// process) and the Kafka lag probe. Leader election starts and ends a controller per term;
// the metrics and notes outlive them.
struct MappingRuntime {
  MappingRuntime(const config::Mapping& mapping, metrics::Registry& registry, const Clock& clock,
                 const PodsTarget* pods)
      : mapping(mapping), registry(registry), clock(clock), pods(pods),
        probe(registry, mapping.name) {
    if (pods != nullptr) {
      scale_probe.emplace(registry, mapping.name);
    }
  }

  // A new controller, not started: every part of a term is new but the metrics. Pods mode:
  // null while the StatefulSet cannot be read (waiting() says why), as its replicas are where
  // the controller starts from.
  std::shared_ptr<scaler::Controller> makeController() {
    return pods != nullptr ? makePodsController() : makeThreadsController();
  }

  std::shared_ptr<scaler::Controller> makePodsController() {
    const auto& pc = mapping.pods;
    if (pc.stateful_set.empty()) {
      throw std::runtime_error(pc.name_at.key + " '" + mapping.name +
                               "' makes no StatefulSet name (kesm-NAME must be a DNS label of at "
                               "most 52 characters); set the mapping's pods.statefulSet");
    }
    k8s::StatefulSetPoolOptions o;
    o.mapping = mapping.name;
    o.pollers_per_pod = pc.pollers_per_pod;
    o.max_replicas =
        (mapping.scaling.maximum_pollers + pc.pollers_per_pod - 1) / pc.pollers_per_pod;
    o.probe = &*scale_probe;
    auto pool = std::make_unique<k8s::StatefulSetPool>(
        k8s::makeApiScaleClient(pods->cluster, pods->ns, pc.stateful_set, pods->timeout), o);
    // The replicas that run are where this term starts: never resized by a restart or failover.
    if (auto seeded = pool->seed(); !seeded.ok()) {
      setWaiting(seeded.error);
      return nullptr;
    }
    setWaiting("");
    auto partitions_at_start = std::make_shared<PartitionsAtStart>();
    scaler::ControllerParts parts;
    auto held = std::make_shared<std::unique_ptr<scaler::WorkerPool>>(std::move(pool));
    parts.make_pool = [held](scaler::FatalSink&) { return std::move(*held); };
    parts.remote_workers = true;
    return finish(std::move(parts), std::make_shared<scaler::InvocationTally>(),
                  std::move(partitions_at_start));
  }

  std::shared_ptr<scaler::Controller> makeThreadsController() {
    auto invocations = std::make_shared<scaler::InvocationTally>();
    auto partitions_at_start = std::make_shared<PartitionsAtStart>();
    poller::PollerContext base = poller::basePollerContext(mapping);
    base.probe = &probe;
    base.client_id = "kesm-" + mapping.name;
    base.invocations = invocations;
    base.notes = notes;
    base.partitions_at_start = partitions_at_start;

    scaler::ControllerParts parts;
    parts.make_pool = [base = std::move(base)](scaler::FatalSink& fatal) mutable {
      base.fatal = &fatal;
      return poller::makeInProcessWorkerPool(std::move(base));
    };
    return finish(std::move(parts), std::move(invocations), std::move(partitions_at_start));
  }

  std::shared_ptr<scaler::Controller>
  finish(scaler::ControllerParts parts, std::shared_ptr<const scaler::InvocationStats> invocations,
         std::shared_ptr<PartitionsAtStart> partitions_at_start) {
    parts.lag_source = scaler::makeKafkaLagSource(mapping, milliseconds(5000), partitions_at_start);
    parts.invocations = std::move(invocations);
    parts.partitions_at_start = std::move(partitions_at_start);
    parts.clock = &clock;
    parts.registry = &registry;
    parts.probe = &probe;
    parts.history = history;
    return std::make_shared<scaler::Controller>(mapping, std::move(parts));
  }

  std::shared_ptr<scaler::Controller> current() const {
    std::lock_guard lock(mutex);
    return controller;
  }
  void setWaiting(const std::string& why) {
    std::lock_guard lock(mutex);
    if (why != waiting_reason && !why.empty()) {
      log(LogLevel::kWarn, "kesm", mapping.name, ": waiting for statefulset ",
          mapping.pods.stateful_set, ": ", why, "; retried every ", kPodsSeedRetry.count() / 1000,
          " s, nothing is written meanwhile");
    }
    waiting_reason = why;
  }
  std::string waiting() const {
    std::lock_guard lock(mutex);
    return waiting_reason;
  }
  void setCurrent(std::shared_ptr<scaler::Controller> c) {
    std::lock_guard lock(mutex);
    controller = std::move(c);
  }

  EventCounts events() const {
    return EventCounts{probe.events_polled.Value(), probe.events_invoked.Value(),
                       probe.events_failed.Value(), probe.events_committed.Value()};
  }

  MappingSnapshot snapshot() const {
    const auto e = events();
    MappingSnapshot s;
    s.name = mapping.name;
    s.polled = e.polled;
    s.invoked = e.invoked;
    s.failed = e.failed;
    s.committed = e.committed;
    const auto c = current();
    if (!c) {
      s.waiting = waiting();
      s.standby = s.waiting.empty();
      return s;
    }
    const auto cs = c->snapshot();
    s.desired = cs.desired;
    s.active = cs.pool.active;
    s.running = cs.pool.running;
    s.stopping = cs.pool.stopping;
    s.lag = cs.lag;
    s.lag_stale = cs.lag_stale;
    s.disabled = cs.disabled;
    s.disabled_reason = cs.disabled_reason;
    return s;
  }

  std::string statusJson(const std::string& standby_reason) const {
    const auto c = current();
    if (!c) {
      if (auto why = waiting(); !why.empty()) {
        return standbyStatusJson(
            mapping, "waiting for statefulset " + mapping.pods.stateful_set + ": " + why, events(),
            "Waiting");
      }
      return standbyStatusJson(mapping, standby_reason, events());
    }
    return mappingStatusJson(mapping, c->snapshot(), notes->snapshot(), events(),
                             std::chrono::steady_clock::now(), std::chrono::system_clock::now());
  }

  std::string historyJson() const { return mappingHistoryJson(mapping, history->snapshot()); }

  const config::Mapping& mapping;
  metrics::Registry& registry;
  const Clock& clock;
  const PodsTarget* pods; // null: threads of this process
  metrics::MappingProbe probe;
  std::optional<metrics::ScaleProbe> scale_probe; // pods mode
  Clock::time_point next_seed{};                  // pods mode: term thread only
  // Outlives the controllers: a new term goes on where the last one stopped.
  std::shared_ptr<scaler::StatusHistory> history = std::make_shared<scaler::StatusHistory>();
  std::shared_ptr<poller::PartitionNotes> notes = std::make_shared<poller::PartitionNotes>();
  mutable std::mutex mutex;
  std::shared_ptr<scaler::Controller> controller; // null while standing by
  std::string waiting_reason; // pods mode: why the StatefulSet could not be read
};

} // namespace

struct Runtime::Impl {
  Impl(config::Config c, RuntimeOptions o) : config(std::move(c)), options(std::move(o)) {}

  void liveLoop();

  // Starts every mapping's controller. `at_startup`: a failure ends kesm (as without leader
  // election); later, for a new term, the mapping is disabled with the reason instead.
  void startControllers(bool at_startup) {
    const auto now = clock.now();
    for (auto& m : mappings) {
      if (m->current()) {
        continue; // pods mode: started at an earlier try of this term
      }
      if (options.pods) {
        if (now < m->next_seed) {
          continue;
        }
        m->next_seed = now + kPodsSeedRetry;
      }
      std::shared_ptr<scaler::Controller> c;
      try {
        c = m->makeController();
        if (!c) {
          continue; // pods mode: waiting for the StatefulSet, tried again later
        }
        auto reason = options.disabled_at_start.find(m->mapping.name);
        if (reason != options.disabled_at_start.end()) {
          c->disable(reason->second);
        }
        c->start();
      } catch (const std::exception& e) {
        if (at_startup) {
          throw;
        }
        // A later term must not end the process: the mapping is disabled for this term.
        log(LogLevel::kError, "kesm", m->mapping.name, ": cannot start: ", e.what());
        if (c) {
          c->disable(std::string("cannot start: ") + e.what());
        }
      }
      m->setCurrent(std::move(c));
    }
  }

  // Stops every mapping's controller, in parallel (each has its own grace period).
  bool stopControllers(std::optional<milliseconds> grace) {
    std::vector<std::thread> stoppers;
    std::atomic<bool> all_ok{true};
    for (auto& m : mappings) {
      auto c = m->current();
      if (!c) {
        continue;
      }
      auto stop = [m = m.get(), c, grace, &all_ok] {
        if (!c->stop(grace)) {
          all_ok = false;
        }
        m->setCurrent(nullptr);
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
    return all_ok;
  }

  // Leader election: follows the Lease, starting the controllers when a term begins and
  // stopping them when it ends (the renew deadline passed, or another replica holds it).
  void termLoop() {
    std::unique_lock lock(term_mutex);
    while (!term_stop) {
      const auto now = clock.now();
      // Pods mode without leader election: one term from the start.
      const bool lead = !leadership || leadership->leading(now);
      if (lead && lead == leading && options.pods) {
        lock.unlock();
        startControllers(false); // the mappings still waiting for their StatefulSet
        lock.lock();
      }
      if (lead != leading) {
        lock.unlock();
        if (lead) {
          log(LogLevel::kInfo, "kesm", "leading: starting the pollers");
          startControllers(false);
        } else {
          log(LogLevel::kWarn, "kesm", "no longer leading: stopping the controllers within ",
              leadership->stopBudget().count(), " ms");
          stopControllers(leadership->stopBudget());
        }
        lock.lock();
        leading = lead;
        continue;
      }
      // Wake at the end of the term, or when the election reports a step.
      auto until = now + milliseconds(1000);
      if (auto s = leadership ? leadership->status() : k8s::ElectionStatus{};
          lead && s.valid_until && *s.valid_until < until) {
        until = *s.valid_until;
      }
      term_cv.wait_until(lock, until, [this] { return term_stop || term_changed; });
      term_changed = false;
    }
  }

  std::string standbyReason() const {
    if (!leadership) {
      return "";
    }
    auto s = leadership->status();
    std::string reason = "standing by: the Lease " + s.lease;
    reason += s.holder.empty() ? std::string(" is free") : " is held by " + s.holder;
    if (!s.last_error.empty()) {
      reason += "; last Lease error: " + s.last_error;
    }
    return reason;
  }

  config::Config config;
  RuntimeOptions options;
  metrics::Registry registry;
  std::unique_ptr<metrics::MetricsServer> server;
  SteadyClock clock; // outlives the controllers
  std::vector<std::unique_ptr<MappingRuntime>> mappings;

  std::unique_ptr<Leadership> leadership; // null: leader election off
  std::mutex term_mutex;
  std::condition_variable term_cv;
  bool term_stop = false;
  bool term_changed = false;
  bool leading = false; // term thread only
  std::thread term_thread;

  std::mutex live_mutex;
  std::condition_variable live_cv;
  bool live_stop = false;
  std::thread live_thread;
  bool stopped = false;
};

void Runtime::Impl::liveLoop() {
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
    // With leader election on, the leader's lines say so; a standby's say who leads.
    const std::string role =
        leadership && leadership->leading(clock.now()) ? std::string("leader") : std::string();
    for (size_t i = 0; i < mappings.size(); ++i) {
      auto s = mappings[i]->snapshot();
      auto rate = eventsPerSecond(last_committed[i], s.committed, secs);
      last_committed[i] = s.committed;
      LiveMapping m;
      m.name = s.name;
      if (s.standby) {
        m.state = LiveMapping::State::kStandby;
        m.reason = standbyReason();
      } else if (!s.waiting.empty()) {
        m.state = LiveMapping::State::kStandby;
        m.reason = "waiting for statefulset: " + s.waiting;
      } else if (s.disabled) {
        m.state = LiveMapping::State::kDisabled;
        m.reason = s.disabled_reason;
      }
      m.desired = s.desired;
      m.active = s.active;
      m.running = s.running;
      m.stopping = s.stopping;
      if (s.lag) {
        m.lag_total = s.lag->total;
        m.lag_max = s.lag->max;
      }
      m.lag_stale = s.lag_stale;
      m.committed = s.committed;
      m.failed = s.failed;
      std::printf("[%6.1fs] %s\n", elapsed, liveLine(m, rate, role).c_str());
    }
    std::fflush(stdout);
  }
}

Runtime::Runtime(config::Config config, RuntimeOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options))) {}

Runtime::~Runtime() { stop(); }

void Runtime::start() {
  checkLibrdkafkaSettings(impl_->config);
  for (const auto& mapping : impl_->config.mappings) {
    impl_->mappings.push_back(
        std::make_unique<MappingRuntime>(mapping, impl_->registry, impl_->clock,
                                         impl_->options.pods ? &*impl_->options.pods : nullptr));
  }
  if (impl_->options.lease_store) {
    impl_->leadership = std::make_unique<Leadership>(
        std::move(impl_->options.lease_store), impl_->options.identity,
        impl_->config.leader_election, impl_->clock, impl_->registry, [this] {
          {
            std::lock_guard lock(impl_->term_mutex);
            impl_->term_changed = true;
          }
          impl_->term_cv.notify_all();
        });
  }
  metrics::EndpointHooks hooks;
  hooks.ready = [this] { return ready(); };
  hooks.status = [this] { return statusJson(); };
  hooks.history = [this] { return historyJson(); };
  hooks.page = &statusPage();
  // Its acceptor and first connections; without them its own error would only say "open".
  ensureHeadroom("the metrics server on " + impl_->config.server.listen, 2, 4);
  impl_->server =
      std::make_unique<metrics::MetricsServer>(impl_->config.server.listen, impl_->registry, hooks);
  log(LogLevel::kInfo, "kesm", "serving / /metrics /healthz /readyz /status on port ",
      impl_->server->port());
  if (impl_->leadership || impl_->options.pods) {
    impl_->term_thread = startThread("the leader term", [this] { impl_->termLoop(); });
    if (impl_->leadership) {
      impl_->leadership->start();
    }
  } else {
    impl_->startControllers(true);
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
  // No new term from here; the election goes on renewing while the pollers finish, so no
  // standby starts before they are gone; then the Lease is given up for a quick takeover.
  {
    std::lock_guard lock(impl_->term_mutex);
    impl_->term_stop = true;
  }
  impl_->term_cv.notify_all();
  if (impl_->term_thread.joinable()) {
    impl_->term_thread.join();
  }
  bool ok = impl_->stopControllers(std::nullopt);
  if (impl_->leadership) {
    impl_->leadership->stopAndRelease();
  }
  impl_->server.reset();
  impl_->mappings.clear();
  return ok;
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
  std::string out = "{";
  if (impl_->leadership) {
    out += "\"leaderElection\":";
    const auto now = impl_->clock.now();
    out += leaderStatusJson(impl_->leadership->status(), impl_->leadership->leading(now), now);
    out += ',';
  }
  out += "\"mappings\":[";
  const std::string standby = impl_->standbyReason();
  for (size_t i = 0; i < impl_->mappings.size(); ++i) {
    if (i > 0) {
      out += ','; // not `(i ? "," : "") + …`: GCC 12 at -O3 reports a false -Wrestrict on it
    }
    out += impl_->mappings[i]->statusJson(standby);
  }
  return out + "]}";
}

std::string Runtime::historyJson() {
  std::vector<std::string> mappings;
  for (const auto& m : impl_->mappings) {
    mappings.push_back(m->historyJson());
  }
  return app::historyJson(scaler::StatusHistory::Limits{}, mappings);
}

bool Runtime::ready() {
  if (impl_->mappings.empty()) {
    return false;
  }
  // A standby is ready: it serves what it should, and takes over when the Lease is free.
  for (auto& m : impl_->mappings) {
    auto c = m->current();
    if (c && !c->ready()) {
      return false;
    }
    if (!c && !impl_->leadership) {
      return false;
    }
  }
  return true;
}

} // namespace kesm::app
