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
  // Which rows the goal compares (printVerdicts): kesm's decision and KEDA on pods.
  enum class Family { kOther, kKesmPods, kKedaPods } family = Family::kOther;
  Millis pod_start = 0; // pods only
};

// What the controller learns of the pollers' invocations (count and summed duration), which
// the decision turns into the capacity of one batch slot (docs/scaling.md, step 3).
enum class StatsChannel {
  kInProcess, // read directly, exact at every evaluation (threads; the ideal for pods)
  kScrape,    // each pod's /metrics scraped every scrape_interval: the last scrape's totals
  kNone,      // none: capacity only from committed offsets (the saturation estimate)
};

// How the pollers run. Threads: one process, a poller joins 1 s after the decision and leaves
// at once. Pods (a StatefulSet, podManagementPolicy Parallel): a pod of `pollers_per_pod`
// pollers starts `pod_start` after its replica is set, then its pollers join (1 s) and the
// group rebalances; scale-down removes the highest ordinals (the newest pods), each through
// SIGTERM: no new batch, the batches in flight finish (or are abandoned at the grace period,
// uncommitted), commit, then the pollers leave the group and the pod is gone.
struct Deployment {
  bool pods = false;
  Millis pod_start = 10 * kSecond;
  int pollers_per_pod = 1;
  Millis grace_period = 30 * kSecond; // Kubernetes' default terminationGracePeriodSeconds
  StatsChannel channel = StatsChannel::kInProcess;
  Millis scrape_interval = 15 * kSecond; // kScrape only; the first scrape is at t=0
};

// Runs `trace` under `policy` from t=0 until the trace's end (or, for a burst trace, until
// everything is drained and the policy is back at its minimum). `name` labels the result.
// The policy's decisions are in pollers; with pods they are rounded up to whole pods.
Result simulate(const Trace& trace, Policy& policy, std::string name,
                const Deployment& deployment = {});

} // namespace kesm::bench::sim
