#pragma once

// The scaling decision: how many pollers a mapping wants, from lag history. Pure: no I/O,
// time passed in. Rules and a worked example: docs/scaling.md.

#include "common/types.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>

namespace kesm::scaler {

// The defaults here are for tests and the simulator (bench/scaling_sim.cc). The product's
// policy comes from the config only, through policyOf() (scaler/controller_rules.h), whose
// defaults differ: scaling.maxConcurrentBatches is 5 there (config/config.h), 1 here.
struct ScalingPolicy {
  int minimum_pollers = 1;
  int maximum_pollers = 200;
  // Scale down only to the highest recommendation seen over this window.
  std::chrono::milliseconds scale_down_stabilization{60000};
  // Size the pool so that the backlog beyond what pollers hold would drain within this time.
  std::chrono::milliseconds target_drain_time{10000};
  // Never retire more than this fraction of the running pollers in one evaluation.
  double max_scale_down_fraction = 0.5;
  // After any change, scale-ups wait this long: a change costs a join and a rebalance during
  // which nothing drains, and the lag that piles up meanwhile is not demand.
  std::chrono::milliseconds scale_up_cooldown{5000};
  // Rates (ingest, drain, invocation time) are measured over at least this window.
  std::chrono::milliseconds rate_window{10000};
  // Size for pollers busy this fraction of the time: headroom for commits, fetches and
  // partitions that do not divide evenly.
  double target_utilization = 0.8;
  // Scale up only when the current pollers would be busier than target + tolerance.
  double tolerance = 0.1;
  // Records per batch: a full batch is what a busy poller sends, and what it may hold.
  int batch_size = 100;
  // Batches one poller runs at once, each of other partitions (scaling.maxConcurrentBatches):
  // a poller with k partitions drains up to min(k, this) batches in parallel.
  int max_concurrent_batches = 1;
};

// What the controller saw at one evaluation. Sums are cumulative since start.
struct Observation {
  Clock::time_point at{};
  bool probe_ok = true;
  int partitions = 0;         // of all mapped topics
  int lagging_partitions = 0; // partitions with lag > 0
  std::int64_t total_lag = 0;
  std::int64_t high_watermark_sum = 0; // grows with ingest
  std::int64_t committed_sum = 0;      // grows with drain (committed or resolved position)
  int active_pollers = 0;              // pollers counted toward the desired number
  std::int64_t invocations = 0;        // finished invocation attempts, all pollers
  double invocation_seconds = 0;       // their summed duration
};

enum class Reason {
  kSteady,       // recommendation equals the current count
  kScaleUp,      // backlog or ingest needs more pollers
  kCoolingDown,  // more needed, but the last change has not settled yet
  kScaleDown,    // lag stayed low for the stabilization window
  kStabilizing,  // lower recommendation, but not yet for the whole window
  kProbeFailed,  // held the last decision
  kBelowMinimum, // raised to the minimum
  kAboveCap,     // lowered to min(maximum, partitions)
};

const char* toString(Reason reason);

struct Decision {
  int desired = 0;
  Reason reason = Reason::kSteady;
  int recommendation = 0; // before cooldown, stabilization and step limits
  double ingest_rate = 0; // records/s into the topics (median over the window)
  double drain_rate = 0;  // records/s committed over the window
  // Records/s one batch slot drains when busy, once known: a poller owning one partition, or
  // a partition at most (never two batches of one partition run at once).
  std::optional<double> per_poller;
};

// Stateful but pure: remembers recent observations and recommendations. The first decide()
// takes Observation::active_pollers as the current count; later ones trust its own decisions.
class Scaler {
public:
  explicit Scaler(ScalingPolicy policy);
  Decision decide(const Observation& observation);
  // The count decided last; the minimum before the first decide().
  int current() const { return current_; }

private:
  int cap(const Observation& o) const;
  int slots(const Observation& o, int pollers) const;
  void measure(const Observation& o, Decision& d);
  int recommend(const Observation& o, const Decision& d, double utilization) const;

  ScalingPolicy policy_;
  int current_ = 0;
  bool seeded_ = false;                      // current_ was taken from an observation
  std::deque<Observation> history_;          // good probes, oldest first, about one rate window
  std::optional<double> capacity_from_time_; // batch size / mean invocation time
  std::optional<double> capacity_from_saturated_; // drain per slot while all were busy
  Clock::time_point active_changed_at_{};
  std::optional<Clock::time_point> last_change_;
  std::deque<std::pair<Clock::time_point, int>> recommendations_;
};

} // namespace kesm::scaler
