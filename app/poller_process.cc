#include "app/poller_process.h"

#include "common/json.h"
#include "common/log.h"
#include "common/resources.h"
#include "invoker/invoker.h"
#include "kafka/kafka.h"
#include "metrics/metrics.h"
#include "poller/dead_letter.h"
#include "poller/poller.h"
#include "scaler/lag_source.h"
#include "scaler/signals.h"

#include <condition_variable>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unistd.h>

namespace kesm::app {

using std::chrono::milliseconds;

std::vector<std::string> instanceIds(const std::string& id, int pollers) {
  std::vector<std::string> out;
  if (id.empty()) {
    out.resize(static_cast<std::size_t>(pollers));
    return out;
  }
  if (pollers == 1) {
    return {id};
  }
  for (int i = 0; i < pollers; ++i) {
    out.push_back(id + "-" + std::to_string(i));
  }
  return out;
}

namespace {

const config::Mapping& findMapping(const config::Config& config, const std::string& name) {
  for (const auto& m : config.mappings) {
    if (m.name == name) {
      return m;
    }
  }
  std::string names;
  for (const auto& m : config.mappings) {
    names += (names.empty() ? "" : ", ") + m.name;
  }
  throw std::invalid_argument("--mapping: no mapping named '" + name + "' in the config (it has " +
                              names + ")");
}

} // namespace

// The fatal sink of the pollers: a fatal error (function 404/401/403, access refused) disables
// the mapping in this process, as `kesm run` does; the supervisor then stops the pollers.
struct PollerProcess::Impl final : scaler::FatalSink {
  Impl(config::Config c, PollerProcessOptions o)
      : config(std::move(c)), options(std::move(o)), mapping(findMapping(config, options.mapping)),
        probe(registry, mapping.name) {}

  // One poller and what it is restarted with (the same instance id) when it stops on its own.
  struct Slot {
    poller::PollerContext context;
    std::unique_ptr<poller::Poller> poller;
  };

  void reportFatal(const std::string& reason) override {
    {
      std::lock_guard lock(mutex);
      if (disabled) {
        return;
      }
      disabled = true;
      disabled_reason = reason;
    }
    probe.state_enabled.Set(0);
    probe.state_disabled.Set(1);
    probe.pollers_desired.Set(0); // as `kesm run`: a disabled mapping wants no pollers
    log(LogLevel::kError, "poller", mapping.name,
        ": disabled, stopping this pod's pollers (it keeps serving /status and /metrics; "
        "restart the pods once fixed): ",
        reason);
    cv.notify_all();
  }

  void startSlot(Slot& slot) {
    const int servers = static_cast<int>(mapping.source.bootstrap_servers.size());
    ensureHeadroom("poller " + slot.context.client_id + " of mapping " + mapping.name,
                   pollerThreads(servers), pollerDescriptors(servers));
    auto p = std::make_unique<poller::Poller>(slot.context);
    p->start();
    slot.poller = std::move(p);
  }

  // Every second: publish the pollers' states; replace a poller whose thread ended on its own
  // (a consumer error) under the same instance id; on disable, stop them all.
  void superviseLoop() {
    std::unique_lock lock(mutex);
    bool retired = false;
    while (!stopping) {
      // Under the lock: /status and /readyz read the slots from the server's thread.
      const bool now_disabled = disabled;
      int starting = 0, running = 0, halting = 0;
      for (auto& slot : slots) {
        if (now_disabled && !retired) {
          slot.poller->requestStop();
        } else if (!now_disabled && slot.poller->state() == poller::PollerState::kStopped) {
          log(LogLevel::kWarn, "poller", slot.context.client_id,
              ": stopped on its own, restarting");
          try {
            slot.poller.reset();
            startSlot(slot);
          } catch (const std::exception& e) {
            probe.poller_spawn_failures.Increment();
            log(LogLevel::kError, "poller", slot.context.client_id, ": cannot restart: ", e.what());
          }
        }
        if (!slot.poller) {
          continue;
        }
        switch (slot.poller->state()) {
        case poller::PollerState::kStarting:
          starting++;
          break;
        case poller::PollerState::kRunning:
          running++;
          break;
        case poller::PollerState::kStopping:
          halting++;
          break;
        case poller::PollerState::kStopped:
          break;
        }
      }
      retired = retired || now_disabled;
      probe.pollers_starting.Set(starting);
      probe.pollers_running.Set(running);
      probe.pollers_stopping.Set(halting);
      cv.wait_for(lock, milliseconds(1000),
                  [this, now_disabled] { return stopping || disabled != now_disabled; });
    }
  }

  config::Config config;
  PollerProcessOptions options;
  const config::Mapping& mapping; // in `config`
  metrics::Registry registry;
  metrics::MappingProbe probe;
  std::shared_ptr<poller::PartitionNotes> notes = std::make_shared<poller::PartitionNotes>();
  std::unique_ptr<metrics::MetricsServer> server;
  std::vector<Slot> slots; // fixed after start(); each poller pointer belongs to the supervisor

  std::mutex mutex;
  std::condition_variable cv;
  bool stopping = false;
  bool disabled = false;
  std::string disabled_reason;
  std::thread supervisor;
  bool started = false;
  bool stopped = false;
};

namespace {

// LATEST: the partitions that exist as this pod starts begin at their end when the group never
// committed them, partitions added later at their beginning (poller_rebalance.cc startLatest).
// A pod knows only its own start: a partition added while the mapping ran, that no earlier pod
// took and committed, starts at its end in a pod started after it (docs/kubernetes.md).
std::shared_ptr<PartitionsAtStart> partitionsAtStart(const config::Mapping& mapping) {
  if (mapping.source.starting_position != config::StartingPosition::kLatest) {
    return nullptr;
  }
  auto at_start = std::make_shared<PartitionsAtStart>();
  auto result = scaler::makeKafkaLagSource(mapping, milliseconds(5000))->probe();
  if (!result.sample) {
    log(LogLevel::kWarn, "kesm", mapping.name, ": cannot list the topics' partitions at start (",
        result.error,
        "); LATEST then starts every partition without a committed offset at its end");
    return at_start;
  }
  for (const auto& p : result.sample->partitions) {
    at_start->partitions.insert(p.tp);
  }
  at_start->known = true;
  return at_start;
}

} // namespace

PollerProcess::PollerProcess(config::Config config, PollerProcessOptions options) {
  if (options.pollers < kMinPodPollers || options.pollers > kMaxPodPollers) {
    throw std::invalid_argument("--pollers: expected " + std::to_string(kMinPodPollers) + " to " +
                                std::to_string(kMaxPodPollers) + ", got " +
                                std::to_string(options.pollers));
  }
  impl_ = std::make_unique<Impl>(std::move(config), std::move(options));
}

PollerProcess::~PollerProcess() { stop(); }

void PollerProcess::start() {
  auto& im = *impl_;
  const auto& mapping = im.mapping;
  poller::PollerContext base = poller::basePollerContext(mapping);
  base.probe = &im.probe;
  base.notes = im.notes;
  base.fatal = &im;
  base.partitions_at_start = partitionsAtStart(mapping);
  const auto ids = instanceIds(im.options.instance_id, im.options.pollers);
  for (int i = 0; i < im.options.pollers; ++i) {
    Impl::Slot slot;
    slot.context = base;
    if (im.options.static_membership) {
      slot.context.group_instance_id = ids[static_cast<std::size_t>(i)];
    }
    // Distinct client ids across pods too, so the broker's logs name the pod.
    slot.context.client_id = "kesm-" + mapping.name + "-" +
                             (ids[static_cast<std::size_t>(i)].empty()
                                  ? std::to_string(::getpid()) + "-" + std::to_string(i)
                                  : ids[static_cast<std::size_t>(i)]);
    im.slots.push_back(std::move(slot));
  }
  im.probe.state_enabled.Set(1);
  im.probe.state_disabled.Set(0);
  im.probe.pollers_desired.Set(im.options.pollers);

  metrics::EndpointHooks hooks;
  hooks.ready = [this] { return ready(); };
  hooks.status = [this] { return statusJson(); };
  const std::string listen =
      im.options.listen.empty() ? im.config.server.listen : im.options.listen;
  ensureHeadroom("the metrics server on " + listen, 2, 4);
  im.server = std::make_unique<metrics::MetricsServer>(listen, im.registry, hooks);
  log(LogLevel::kInfo, "kesm", "poller: serving /metrics /healthz /readyz /status on port ",
      im.server->port());
  for (auto& slot : im.slots) {
    im.startSlot(slot); // a failure here ends the process: nothing runs yet
  }
  log(LogLevel::kInfo, "kesm", "poller: ", im.options.pollers, " poller(s) of mapping ",
      mapping.name, " started",
      !im.options.static_membership ? std::string(" (dynamic group members)")
                                    : " (static members, group.instance.id " + ids.front() +
                                          (ids.size() > 1 ? " .. " + ids.back() : "") + ")");
  im.started = true;
  im.supervisor = startThread("the poller supervisor", [this] { impl_->superviseLoop(); });
}

bool PollerProcess::stop() {
  auto& im = *impl_;
  if (im.stopped) {
    return true;
  }
  im.stopped = true;
  {
    std::lock_guard lock(im.mutex);
    im.stopping = true;
  }
  im.cv.notify_all();
  if (im.supervisor.joinable()) {
    im.supervisor.join();
  }
  // All at once: each finishes its batches within the grace period, in parallel.
  for (auto& slot : im.slots) {
    if (slot.poller) {
      slot.poller->requestStop();
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + im.mapping.scaling.grace_period +
                        im.mapping.function.timeout;
  bool all = true;
  for (auto& slot : im.slots) {
    if (!slot.poller) {
      continue;
    }
    auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    all = slot.poller->waitStopped(std::max(left, milliseconds(0))) && all;
  }
  im.probe.pollers_starting.Set(0);
  im.probe.pollers_running.Set(0);
  im.probe.pollers_stopping.Set(0);
  std::vector<Impl::Slot> done;
  {
    std::lock_guard lock(im.mutex);
    done.swap(im.slots);
  }
  // Outside the lock: a poller late to stop is joined (bounded) while /status still answers.
  done.clear();
  im.server.reset();
  return all;
}

bool PollerProcess::ready() {
  auto& im = *impl_;
  std::lock_guard lock(im.mutex);
  if (im.disabled) {
    return true;
  }
  if (!im.started || im.stopping) {
    return false;
  }
  for (const auto& slot : im.slots) {
    if (!slot.poller || slot.poller->state() != poller::PollerState::kRunning) {
      return false;
    }
  }
  return true;
}

std::string PollerProcess::statusJson() {
  using json::quote;
  auto& im = *impl_;
  std::lock_guard lock(im.mutex);
  std::ostringstream out;
  out << "{\"mode\":\"poller\",\"mapping\":" << quote(im.mapping.name)
      << ",\"instanceId\":" << quote(im.options.instance_id)
      << ",\"staticMembership\":" << (im.options.static_membership ? "true" : "false")
      << ",\"state\":" << (im.disabled ? "\"Disabled\"" : "\"Enabled\"");
  if (im.disabled) {
    out << ",\"disabledReason\":" << quote(im.disabled_reason);
  }
  out << ",\"pollers\":[";
  bool first = true;
  for (const auto& slot : im.slots) {
    if (!first) {
      out << ',';
    }
    first = false;
    const auto state = slot.poller ? slot.poller->state() : poller::PollerState::kStopped;
    out << "{\"clientId\":" << quote(slot.context.client_id)
        << ",\"groupInstanceId\":" << quote(slot.context.group_instance_id)
        << ",\"state\":" << quote(poller::toString(state))
        << ",\"partitions\":" << (slot.poller ? slot.poller->assignedPartitions() : 0) << "}";
  }
  out << "],\"events\":{\"polled\":" << static_cast<long long>(im.probe.events_polled.Value())
      << ",\"invoked\":" << static_cast<long long>(im.probe.events_invoked.Value())
      << ",\"failedInvoke\":" << static_cast<long long>(im.probe.events_failed.Value())
      << ",\"committed\":" << static_cast<long long>(im.probe.events_committed.Value()) << "}}";
  return out.str();
}

std::uint16_t PollerProcess::metricsPort() const {
  return impl_->server ? impl_->server->port() : 0;
}

} // namespace kesm::app
