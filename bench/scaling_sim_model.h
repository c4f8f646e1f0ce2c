#pragma once

// kesm_scaling_sim's model of a consumer group draining a topic under a scaling policy: the
// partitions, the pollers and their batches, rebalances, and the figures of a run. The model
// itself is described at the top of scaling_sim.cc. Deterministic; single-threaded.

#include "bench/scaling_sim_policy.h"
#include "bench/scaling_sim_trace.h"

#include <optional>
#include <string>

namespace kesm::bench::sim {

// The figures of one run of one policy on one trace (scaling_sim.cc says what each means).
struct Result {
  std::string policy;
  std::optional<Millis> drain;      // worst burst; nullopt: n/a (no burst)
  bool drained = true;              // every burst drained within the run
  double mean_drain_s = 0;          // mean over bursts
  std::optional<Millis> full_scale; // first time cap pollers held an assignment
  Millis max_age = 0;
  Millis max_age_at = 0; // when the oldest record was committed
  double poller_seconds = 0;
  int peak = 0;
  int rebalances = 0;
  Millis ran_for = 0;
};

// Runs `trace` under `policy` from t=0 until the trace's end (or, for a burst trace, until
// everything is drained and the policy is back at its minimum). `name` labels the result.
Result simulate(const Trace& trace, Policy& policy, std::string name);

} // namespace kesm::bench::sim
