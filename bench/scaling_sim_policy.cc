#include "bench/scaling_sim_policy.h"

#include "scaler/controller_rules.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace kesm::bench::sim {

config::Mapping mappingOf(const Trace& trace, int max_concurrent_batches) {
  config::Mapping m;
  m.scaling.minimum_pollers = trace.minimum_pollers;
  m.scaling.maximum_pollers = trace.maximum_pollers;
  m.scaling.max_concurrent_batches = max_concurrent_batches;
  m.batching.batch_size = trace.batch_size;
  return m;
}

KesmPolicy::KesmPolicy(const config::Mapping& mapping, Millis interval)
    : interval_(interval), max_concurrent_batches_(mapping.scaling.max_concurrent_batches),
      scaler_(scaler::policyOf(mapping)) {}

std::optional<Action> KesmPolicy::evaluate(const View& v) {
  scaler::Observation o;
  o.at = Clock::time_point{} + std::chrono::milliseconds(v.now);
  o.partitions = v.partitions;
  o.lagging_partitions = v.lagging_partitions;
  o.total_lag = v.total_lag;
  o.high_watermark_sum = v.high_watermark_sum;
  o.committed_sum = v.committed_sum;
  o.active_pollers = v.active_pollers;
  o.invocations = v.invocations;
  o.invocation_seconds = v.invocation_seconds;
  scaler::Decision d = scaler_.decide(o);
  if (log_ != nullptr && d.desired != last_desired_) {
    std::fprintf(log_,
                 "t=%.1f lag=%lld lagging=%d active=%d ingest=%.0f drain=%.0f per_poller=%.1f "
                 "rec=%d desired=%d (%s)\n",
                 static_cast<double>(v.now) / 1000.0, static_cast<long long>(v.total_lag),
                 v.lagging_partitions, v.active_pollers, d.ingest_rate, d.drain_rate,
                 d.per_poller.value_or(-1), d.recommendation, d.desired,
                 scaler::toString(d.reason));
  }
  last_desired_ = d.desired;
  return Action{v.now, d.desired};
}

std::optional<Action> KedaPolicy::evaluate(const View& v) {
  std::int64_t want = (v.total_lag + kLagThreshold - 1) / kLagThreshold;
  want = std::min<std::int64_t>(want, std::min(v.partitions, trace_.maximum_pollers));
  int rec = static_cast<int>(std::max<std::int64_t>(want, trace_.minimum_pollers));
  history_.emplace_back(v.now, rec);
  while (!history_.empty() && history_.front().first < v.now - kStabilization) {
    history_.pop_front();
  }
  if (rec >= current_) {
    current_ = rec;
  } else {
    int stabilized = rec;
    for (const auto& [at, r] : history_) {
      stabilized = std::max(stabilized, r);
    }
    current_ = std::min(current_, stabilized);
  }
  return Action{v.now, current_};
}

std::optional<Action> KedaHpaPolicy::evaluate(const View& v) {
  // KEDA's metric: the total lag, at most partitions x lagThreshold.
  std::int64_t metric = v.total_lag;
  if (metric / kLagThreshold > v.partitions) {
    metric = static_cast<std::int64_t>(v.partitions) * kLagThreshold;
  }
  // The replica calculator (external metric, AverageValue target).
  const int status = std::max(1, v.active_pollers);
  const double ratio = static_cast<double>(metric) / static_cast<double>(kLagThreshold * status);
  int desired = status;
  if (std::abs(ratio - 1.0) > kTolerance) {
    desired = static_cast<int>((metric + kLagThreshold - 1) / kLagThreshold);
  }
  // Stabilization: up at once; down only to the highest recommendation of the window.
  while (!recommendations_.empty() &&
         recommendations_.front().first <= v.now - kScaleDownStabilization) {
    recommendations_.pop_front();
  }
  int down = desired;
  for (const auto& [at, r] : recommendations_) {
    down = std::max(down, r);
  }
  recommendations_.emplace_back(v.now, desired);
  int next = std::min(std::max(current_, desired), down);
  // Scale-up rate: from the replicas at the start of the last 15 s.
  while (!scale_up_events_.empty() && scale_up_events_.front().first <= v.now - kScaleUpPeriod) {
    scale_up_events_.pop_front();
  }
  int period_start = current_;
  for (const auto& [at, added] : scale_up_events_) {
    period_start -= added;
  }
  const int up_limit =
      std::max(period_start + kScaleUpPods, period_start + period_start * kScaleUpPercent / 100);
  next = std::clamp(std::min(next, up_limit), trace_.minimum_pollers, trace_.maximum_pollers);
  if (next > current_) {
    scale_up_events_.emplace_back(v.now, next - current_);
  }
  current_ = next;
  return Action{v.now, current_};
}

std::optional<Action> AwsOnDemandPolicy::evaluate(const View& v) {
  // Before the first evaluation the topic was idle: lag 0.
  std::int64_t previous = previous_lag_.value_or(0);
  previous_lag_ = v.total_lag;
  int cap = std::max(trace_.minimum_pollers, std::min(v.partitions, trace_.maximum_pollers));
  int next = target_;
  if (v.total_lag > 0 && static_cast<double>(v.total_lag) >
                             (1.0 - model_.min_decrease) * static_cast<double>(previous)) {
    next = std::min(cap, target_ * 2);
  } else if (v.total_lag == 0) {
    next = std::max(trace_.minimum_pollers, target_ / 2);
  }
  if (next == target_) {
    return std::nullopt;
  }
  target_ = next;
  return Action{v.now + model_.delay, next};
}

} // namespace kesm::bench::sim
