#pragma once

// The controller's pure rules (scaler/controller.h runs them): the policy from the config,
// what one evaluation observed, and when failed lag probes disable a mapping. No I/O, no
// clock, no threads.

#include "config/config.h"
#include "scaler/decision.h"
#include "scaler/lag_source.h"
#include "scaler/signals.h"

namespace kesm::scaler {

// The one path from a mapping's config to its scaling policy; every field the config does not
// set keeps ScalingPolicy's default.
ScalingPolicy policyOf(const config::Mapping& mapping);

// One evaluation's observation: the probe's sample (when it succeeded), the pool's active
// count and the invocation totals since start. `at` is when the probe started.
Observation observationOf(Clock::time_point at, const ProbeResult& probe, int active_pollers,
                          const InvocationTotals& invocations);

// A mapped topic that does not exist, or refused access, seen this many probes in a row
// disables the mapping: once could be a broker that restarts and answers without the topic.
inline constexpr int kFatalProbesToDisable = 2;

// Counts consecutive fatal probe failures. Owned by the controller's evaluating thread.
class FatalProbes {
public:
  // Records one probe; true when the mapping is to be disabled (and on every fatal probe
  // after, until a probe that is not fatal).
  bool record(const ProbeResult& probe);
  int consecutive() const { return consecutive_; }

private:
  int consecutive_ = 0;
};

} // namespace kesm::scaler
