#include "scaler/decision.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kesm::scaler {

const char* toString(Reason reason) {
  switch (reason) {
  case Reason::kSteady:
    return "steady";
  case Reason::kScaleUp:
    return "scale_up";
  case Reason::kCoolingDown:
    return "cooling_down";
  case Reason::kScaleDown:
    return "scale_down";
  case Reason::kStabilizing:
    return "stabilizing";
  case Reason::kProbeFailed:
    return "probe_failed";
  case Reason::kBelowMinimum:
    return "below_minimum";
  case Reason::kAboveCap:
    return "above_cap";
  }
  return "unknown";
}

Scaler::Scaler(ScalingPolicy policy) : policy_(policy) {
  policy_.minimum_pollers = std::max(1, policy_.minimum_pollers);
  policy_.maximum_pollers = std::max(policy_.minimum_pollers, policy_.maximum_pollers);
  policy_.batch_size = std::max(1, policy_.batch_size);
  current_ = policy_.minimum_pollers;
}

int Scaler::cap(const Observation& o) const {
  int cap = policy_.maximum_pollers;
  if (o.partitions > 0) {
    cap = std::min(cap, o.partitions);
  }
  return std::max(cap, 1);
}

namespace {

template <class Rep, class Period> double seconds(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration<double>(d).count();
}

} // namespace

// Updates the rates and the two capacity estimates from the observations of the last window.
void Scaler::measure(const Observation& o, Decision& d) {
  if (!history_.empty() && history_.back().active_pollers != o.active_pollers) {
    active_changed_at_ = o.at;
  }
  history_.push_back(o);
  // Keep the newest observation that is at least a window old as the oldest.
  while (history_.size() > 2 && history_[1].at <= o.at - policy_.rate_window) {
    history_.pop_front();
  }
  if (history_.size() < 2) {
    return;
  }
  const Observation& oldest = history_.front();
  double span = seconds(o.at - oldest.at);
  if (span <= 0) {
    return;
  }
  d.drain_rate =
      std::max<double>(0, static_cast<double>(o.committed_sum - oldest.committed_sum)) / span;
  // Ingest: the lower median of the per-interval rates, so that one burst is read as backlog
  // (which it is) and not as a lasting rate.
  std::vector<double> rates;
  for (std::size_t i = 1; i < history_.size(); ++i) {
    double dt = seconds(history_[i].at - history_[i - 1].at);
    if (dt > 0) {
      rates.push_back(std::max<double>(0, static_cast<double>(history_[i].high_watermark_sum -
                                                              history_[i - 1].high_watermark_sum)) /
                      dt);
    }
  }
  if (!rates.empty()) {
    std::sort(rates.begin(), rates.end());
    d.ingest_rate = rates[(rates.size() - 1) / 2];
  }
  // Capacity from invocation time: a busy poller sends full batches back to back. Valid in
  // any regime; it ignores kesm's own overhead, hence the utilization target.
  std::int64_t calls = o.invocations - oldest.invocations;
  double busy = o.invocation_seconds - oldest.invocation_seconds;
  if (calls > 0 && busy > 0) {
    double mean = std::max(busy / static_cast<double>(calls), 0.001);
    capacity_from_time_ = policy_.batch_size / mean;
  }
  // Capacity from the drain, only while every poller had a full batch waiting for the whole
  // window and the count had settled: then the drain is what the pollers can do.
  const int busy_slots = slots(o, o.active_pollers);
  bool saturated = busy_slots > 0 && d.drain_rate > 0 &&
                   oldest.at - active_changed_at_ >= policy_.scale_up_cooldown;
  for (const auto& h : history_) {
    saturated = saturated && h.active_pollers == o.active_pollers &&
                h.lagging_partitions >= busy_slots &&
                h.total_lag >= static_cast<std::int64_t>(busy_slots) * policy_.batch_size;
  }
  if (saturated) {
    capacity_from_saturated_ = d.drain_rate / busy_slots;
  }
}

// Batches `pollers` pollers can run at once: each owns about P/n partitions and runs at most
// max_concurrent_batches of them.
int Scaler::slots(const Observation& o, int pollers) const {
  if (pollers <= 0) {
    return 0;
  }
  int per_poller = std::max(1, (std::max(o.partitions, 1) + pollers - 1) / pollers);
  return pollers * std::min(std::max(1, policy_.max_concurrent_batches), per_poller);
}

int Scaler::recommend(const Observation& o, const Decision& d, double utilization) const {
  // Records that pollers hold or have in flight are lag too, but not a backlog.
  const std::int64_t held = static_cast<std::int64_t>(slots(o, current_)) * policy_.batch_size;
  const std::int64_t excess = std::max<std::int64_t>(0, o.total_lag - held);
  // Only a partition with lag can keep a slot busy.
  int lagging = 1;
  for (const auto& h : history_) {
    lagging = std::max(lagging, h.lagging_partitions);
  }
  int rec = 0;
  if (d.per_poller && *d.per_poller > 0) {
    double demand = d.ingest_rate +
                    static_cast<double>(excess) / std::max(seconds(policy_.target_drain_time), 1.0);
    if (demand > 0) {
      // Partitions are shared out whole: the busiest poller owns ceil(P / n) of them, so
      // find how many partitions one poller can carry and divide. One slot drains one
      // partition at a time; a poller runs up to max_concurrent_batches slots.
      const int partitions = std::max(o.partitions, 1);
      const int concurrent = std::max(1, policy_.max_concurrent_batches);
      double per_partition = demand / partitions;
      double carry = *d.per_poller * utilization / per_partition;
      // When one slot cannot carry one partition, the most that helps is a slot for every
      // partition: ceil(P / C) pollers; more add no slot that can run, only a rebalance
      // (measured on the real broker: docs/benchmarks.md, "Pods (issue 17)").
      // Capped at P before the cast: a tiny demand makes carry overflow an int.
      const int carried =
          carry < 1
              ? concurrent
              : static_cast<int>(std::min<double>(std::floor(carry * concurrent), partitions));
      rec = (partitions + carried - 1) / carried;
    }
  } else if (excess > 0) {
    // No capacity known yet: one slot per batch of backlog, at once, on the fewest pollers
    // that run that many slots (only lagging partitions can keep a slot busy).
    std::int64_t batches = (o.total_lag + policy_.batch_size - 1) / policy_.batch_size;
    int wanted = static_cast<int>(std::min<std::int64_t>(batches, lagging));
    rec = 1;
    while (rec < std::max(o.partitions, 1) && slots(o, rec) < wanted) {
      ++rec;
    }
  } else {
    rec = o.total_lag == 0 ? 0 : current_;
  }
  if (o.total_lag > 0) {
    rec = std::min(rec, lagging);
  }
  return std::clamp(rec, policy_.minimum_pollers, std::max(policy_.minimum_pollers, cap(o)));
}

Decision Scaler::decide(const Observation& o) {
  if (!seeded_) {
    // Start from what runs, not from the minimum: a controller that starts over a running
    // pool keeps it, and scales it down only through the stabilization window (the count
    // that runs counts as a recommendation just made) and the step limit.
    seeded_ = true;
    current_ = std::max(0, o.active_pollers);
    recommendations_.emplace_back(o.at, current_);
  }
  Decision d;
  if (!o.probe_ok) {
    // A failed probe says nothing about the load: hold, never scale on it.
    d.desired = current_;
    d.recommendation = current_;
    d.reason = Reason::kProbeFailed;
    d.per_poller = capacity_from_saturated_ ? capacity_from_saturated_ : capacity_from_time_;
    return d;
  }
  measure(o, d);
  if (capacity_from_time_ && capacity_from_saturated_) {
    d.per_poller = std::min(*capacity_from_time_, *capacity_from_saturated_);
  } else {
    d.per_poller = capacity_from_time_ ? capacity_from_time_ : capacity_from_saturated_;
  }
  int rec = recommend(o, d, policy_.target_utilization);
  // Hysteresis: add pollers only when the current ones would be busier than the target plus
  // the tolerance; then size to the target.
  int rec_up = recommend(o, d, std::min(1.0, policy_.target_utilization + policy_.tolerance));
  d.recommendation = rec;

  recommendations_.emplace_back(o.at, rec);
  while (!recommendations_.empty() &&
         recommendations_.front().first < o.at - policy_.scale_down_stabilization) {
    recommendations_.pop_front();
  }

  int hard_cap = std::max(policy_.minimum_pollers, cap(o));
  if (current_ > hard_cap) {
    d.desired = hard_cap;
    d.reason = Reason::kAboveCap;
  } else if (current_ < policy_.minimum_pollers) {
    d.desired = policy_.minimum_pollers;
    d.reason = Reason::kBelowMinimum;
  } else if (rec_up > current_) {
    if (last_change_ && o.at - *last_change_ < policy_.scale_up_cooldown) {
      d.desired = current_;
      d.reason = Reason::kCoolingDown;
    } else {
      d.desired = rec;
      d.reason = Reason::kScaleUp;
    }
  } else if (rec >= current_) {
    d.desired = current_;
    d.reason = Reason::kSteady;
  } else {
    int stabilized = rec;
    for (const auto& [at, r] : recommendations_) {
      stabilized = std::max(stabilized, r);
    }
    if (stabilized >= current_) {
      d.desired = current_;
      d.reason = Reason::kStabilizing;
    } else {
      int step =
          std::max(1, static_cast<int>(std::floor(current_ * policy_.max_scale_down_fraction)));
      d.desired = std::max(stabilized, current_ - step);
      d.reason = Reason::kScaleDown;
    }
  }
  if (d.desired != current_) {
    last_change_ = o.at;
  }
  current_ = d.desired;
  return d;
}

} // namespace kesm::scaler
