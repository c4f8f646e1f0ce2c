#include "scaler/controller_rules.h"

namespace kesm::scaler {

ScalingPolicy policyOf(const config::Mapping& mapping) {
  ScalingPolicy p;
  p.minimum_pollers = mapping.scaling.minimum_pollers;
  p.maximum_pollers = mapping.scaling.maximum_pollers;
  p.batch_size = mapping.batching.batch_size;
  p.max_concurrent_batches = mapping.scaling.max_concurrent_batches;
  p.scale_down_stabilization = mapping.scaling.scale_down_stabilization;
  return p;
}

Observation observationOf(Clock::time_point at, const ProbeResult& probe, int active_pollers,
                          const InvocationTotals& invocations) {
  Observation o;
  o.at = at;
  o.active_pollers = active_pollers;
  // Capacity comes from how long invocations take (scaler/decision.h).
  o.invocations = invocations.count;
  o.invocation_seconds = invocations.seconds;
  if (!probe.sample) {
    o.probe_ok = false;
    return o;
  }
  const LagSample& sample = *probe.sample;
  o.partitions = static_cast<int>(sample.partitions.size());
  o.lagging_partitions = sample.lagging_partitions;
  o.total_lag = sample.total;
  o.high_watermark_sum = sample.high_sum;
  o.committed_sum = sample.high_sum - sample.total;
  return o;
}

bool FatalProbes::record(const ProbeResult& probe) {
  consecutive_ = probe.fatal ? consecutive_ + 1 : 0;
  return consecutive_ >= kFatalProbesToDisable;
}

} // namespace kesm::scaler
