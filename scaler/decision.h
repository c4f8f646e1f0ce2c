#pragma once

// The scaling decision: how many pollers a mapping wants, from lag history. Pure: no I/O,
// time passed in. Rules and a worked example: docs/scaling.md.

#include "common/types.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>

namespace kesm::scaler {

struct ScalingPolicy {
  int minimum_pollers = 1;
  int maximum_pollers = 200;
  // Scale down only to the highest recommendation seen over this window.
  std::chrono::milliseconds scale_down_stabilization{60000};
  // Scale up so that the backlog would drain within this time at the measured rates.
  std::chrono::milliseconds target_drain_time{30000};
  // Never retire more than this fraction of the running pollers in one evaluation.
  double max_scale_down_fraction = 0.5;
  // Records per batch: sizes the first scale-up before a drain rate is measured, and tells
  // whether pollers were saturated (enough backlog to fill their batches).
  int batch_size = 100;
};

// What the controller saw at one evaluation.
struct Observation {
  Clock::time_point at{};
  bool probe_ok = true;
  int partitions = 0;         // of all mapped topics
  int lagging_partitions = 0; // partitions with lag > 0
  std::int64_t total_lag = 0;
  std::int64_t high_watermark_sum = 0; // grows with ingest
  std::int64_t committed_sum = 0;      // grows with drain (committed or resolved position)
  int active_pollers = 0;              // pollers during the interval that just ended
};

enum class Reason {
  kSteady,       // recommendation equals the current count
  kScaleUp,      // backlog or ingest needs more pollers
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
  int recommendation = 0;           // before stabilization and step limits
  double ingest_rate = 0;           // records/s into the topics
  double drain_rate = 0;            // records/s committed
  std::optional<double> per_poller; // records/s one busy poller drains (EWMA)
};

// Stateful but pure: remembers the last observations and recommendations.
class Scaler {
public:
  explicit Scaler(ScalingPolicy policy);
  Decision decide(const Observation& observation);
  int current() const { return current_; }

private:
  int cap(const Observation& o) const;

  ScalingPolicy policy_;
  int current_ = 0;
  std::optional<Observation> last_;
  std::optional<double> per_poller_rate_;
  std::deque<std::pair<Clock::time_point, int>> recommendations_;
};

} // namespace kesm::scaler
