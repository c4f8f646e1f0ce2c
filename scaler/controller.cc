#include "scaler/controller.h"

#include "common/log.h"
#include "common/resources.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace kesm::scaler {

using std::chrono::milliseconds;

namespace {

template <class T> T& required(T* part, const char* what) {
  if (part == nullptr) {
    throw std::invalid_argument(std::string("Controller: ") + what + " is required");
  }
  return *part;
}

} // namespace

Controller::Controller(config::Mapping mapping, ControllerParts parts)
    : mapping_(std::move(mapping)), lag_source_(std::move(parts.lag_source)),
      invocations_(std::move(parts.invocations)),
      partitions_at_start_(std::move(parts.partitions_at_start)),
      history_(std::move(parts.history)), clock_(required(parts.clock, "a clock")),
      remote_workers_(parts.remote_workers),
      registry_(required(parts.registry, "a metrics registry")),
      probe_(required(parts.probe, "a mapping probe")), scaler_(policyOf(mapping_)) {
  if (!parts.make_pool || !lag_source_ || !invocations_) {
    throw std::invalid_argument("Controller: a pool, a lag source and invocation stats are "
                                "required");
  }
  pool_ = parts.make_pool(*this);
  probe_.pollers_min.Set(mapping_.scaling.minimum_pollers);
  probe_.pollers_max.Set(mapping_.scaling.maximum_pollers);
  probe_.lag_stale.Set(1); // until the first probe succeeds
  probe_.state_enabled.Set(1);
  probe_.state_disabled.Set(0);
}

Controller::~Controller() { stop(); }

void Controller::disable(const std::string& reason) {
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

bool Controller::disabled() const {
  std::lock_guard lock(mutex_);
  return disabled_;
}

void Controller::start(Runner runner) {
  if (!disabled()) {
    notePartitionsAtStart();
    // Workers that already run are kept: the first evaluation starts from them.
    const int first = std::max(mapping_.scaling.minimum_pollers, pool_->status().active);
    ScaleResult result = setDesired(first);
    noteChange(0, first, "start",
               first == mapping_.scaling.minimum_pollers ? "scaling.minimumPollers"
                                                         : "the pollers already running");
    if (!result.ok() && !remote_workers_) {
      throw ResourceError(result.error);
    }
  }
  if (runner == Runner::kThread) {
    thread_ = startThread("the controller of mapping " + mapping_.name, [this] { loop(); });
  }
}

bool Controller::stop(std::optional<milliseconds> grace) {
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
  const auto period =
      grace ? std::min(*grace, mapping_.scaling.grace_period) : mapping_.scaling.grace_period;
  bool ok = pool_->shutdown(period + milliseconds(10000), grace);
  probe_.pollers_starting.Set(0);
  probe_.pollers_running.Set(0);
  probe_.pollers_stopping.Set(0);
  // What only a running controller knows goes too: a replica that lost the lead then shows
  // what a standby shows (no partition series, zeros), not a frozen picture that a
  // max() across replicas would keep reporting.
  std::lock_guard lock(mutex_);
  for (const auto& [topic, partition] : published_partitions_) {
    registry_.removePartitionGauges(mapping_.name, topic, partition);
  }
  published_partitions_.clear();
  probe_.lag_total.Set(0);
  probe_.lag_max.Set(0);
  probe_.lag_stale.Set(0);
  probe_.pollers_desired.Set(0);
  probe_.state_enabled.Set(0);
  probe_.state_disabled.Set(0);
  return ok;
}

ControllerSnapshot Controller::snapshot() {
  ControllerSnapshot s;
  s.pool = pool_->status();
  std::lock_guard lock(mutex_);
  s.desired = desired_;
  s.lag = last_sample_;
  s.lag_stale = lag_stale_;
  s.disabled = disabled_;
  s.disabled_reason = disabled_reason_;
  if (s.lag) {
    for (const auto& p : s.lag->partitions) {
      s.stalled_since[p.tp] = stall_.stalledSince(p.tp);
    }
  }
  return s;
}

bool Controller::ready() {
  if (disabled()) {
    return true;
  }
  auto running = pool_->status().running;
  std::lock_guard lock(mutex_);
  return !lag_stale_ && (running > 0 || remote_workers_);
}

// LATEST: the partitions that exist now start at their end, any added later at their
// beginning (poller.cc, startLatest). Runs before the first worker and the runner start,
// which then only read the set.
void Controller::notePartitionsAtStart() {
  if (mapping_.source.starting_position != config::StartingPosition::kLatest ||
      !partitions_at_start_) {
    return;
  }
  ProbeResult result = lag_source_->probe();
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

// The runner: an evaluation every interval; stop and disable wake it at once.
void Controller::loop() {
  const milliseconds interval = mapping_.scaling.evaluation_interval;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    bool disabled = evaluateOnce();
    lock.lock();
    cv_.wait_for(lock, interval, [this, disabled] { return stopping_ || disabled_ != disabled; });
  }
}

void Controller::evaluate() { evaluateOnce(); }

bool Controller::evaluateOnce() {
  bool disabled = this->disabled();
  if (disabled && !retired_) {
    int before = 0;
    std::string reason;
    {
      std::lock_guard lock(mutex_);
      before = desired_;
      reason = disabled_reason_;
    }
    setDesired(0); // the workers retire; the lag is still probed and published
    noteChange(before, 0, "disabled", reason);
    retired_ = true;
  }
  decide(disabled);
  return disabled;
}

void Controller::decide(bool disabled) {
  const auto started = clock_.now();
  ProbeResult result = lag_source_->probe();
  if (fatal_probes_.record(result) && !disabled) {
    disable(result.error);
    disabled = true;
  }
  probe_.lag_probe_duration.Observe(std::chrono::duration<double>(clock_.now() - started).count());
  Observation observation =
      observationOf(started, result, pool_->status().active, invocations_->invocationTotals());
  if (result.sample) {
    const auto& sample = *result.sample;
    std::lock_guard stall_lock(mutex_);
    stall_.observe(started, sample);
    for (const auto& p : sample.partitions) {
      published_partitions_.emplace(p.tp.topic, p.tp.partition.value());
      registry_.offsetLag(mapping_.name, p.tp.topic, p.tp.partition.value())
          .Set(static_cast<double>(p.lag));
      auto since = stall_.stalledSince(p.tp);
      registry_.partitionStalled(mapping_.name, p.tp.topic, p.tp.partition.value())
          .Set(since ? std::chrono::duration<double>(started - *since).count() : 0.0);
    }
    probe_.lag_total.Set(static_cast<double>(sample.total));
    probe_.lag_max.Set(static_cast<double>(sample.max));
    probe_.lag_stale.Set(0);
    last_sample_ = std::move(result.sample);
    lag_stale_ = false;
  } else {
    probe_.lag_probe_failures.Increment();
    probe_.lag_stale.Set(1);
    log(LogLevel::kWarn, "controller", mapping_.name,
        ": lag probe failed, holding the last decision: ", result.error);
    std::lock_guard lock(mutex_);
    lag_stale_ = true;
  }
  if (disabled) {
    noteSample(observation.probe_ok ? std::optional<std::int64_t>(observation.total_lag)
                                    : std::nullopt);
    return; // no scaling: the workers stay retired
  }
  Decision decision = scaler_.decide(observation);
  int before = 0;
  {
    std::lock_guard lock(mutex_);
    before = desired_;
  }
  const char* direction =
      decision.desired > before ? "up" : (decision.desired < before ? "down" : "hold");
  probe_.scalingDecisions(direction, toString(decision.reason)).Increment();
  if (decision.desired != before) {
    std::ostringstream detail;
    detail << "lag " << observation.total_lag << " on " << observation.lagging_partitions << "/"
           << observation.partitions << " partitions, ingest "
           << static_cast<long long>(decision.ingest_rate) << "/s, drain "
           << static_cast<long long>(decision.drain_rate) << "/s";
    log(LogLevel::kInfo, "controller", mapping_.name, ": pollers ", before, " -> ",
        decision.desired, " (", toString(decision.reason), "; ", detail.str(), ")");
    noteChange(before, decision.desired, toString(decision.reason), detail.str());
  }
  setDesired(decision.desired);
  noteSample(observation.probe_ok ? std::optional<std::int64_t>(observation.total_lag)
                                  : std::nullopt);
}

void Controller::noteChange(int from, int to, std::string reason, std::string detail) {
  if (history_ && from != to) {
    history_->recordDecision(HistoryDecision{std::chrono::system_clock::now(), from, to,
                                             std::move(reason), std::move(detail)});
  }
}

void Controller::noteSample(const std::optional<std::int64_t>& lag_total) {
  if (!history_) {
    return;
  }
  HistorySample sample;
  sample.at = std::chrono::system_clock::now();
  sample.lag_total = lag_total;
  {
    std::lock_guard lock(mutex_);
    sample.desired = desired_;
  }
  sample.running = pool_->status().running;
  sample.committed_total = probe_.events_committed.Value();
  history_->record(std::move(sample));
}

// A pool that cannot start every worker holds at what runs and says so once (the pool logs
// it); the next evaluation asks again.
ScaleResult Controller::setDesired(int desired) {
  {
    std::lock_guard lock(mutex_);
    desired_ = desired;
  }
  ScaleResult result = pool_->scaleTo(desired);
  probe_.pollers_desired.Set(desired);
  auto status = pool_->status();
  probe_.pollers_starting.Set(status.active - status.running);
  probe_.pollers_running.Set(status.running);
  probe_.pollers_stopping.Set(status.stopping);
  return result;
}

} // namespace kesm::scaler
