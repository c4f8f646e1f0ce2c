#include "scaler/decision.h"

#include <algorithm>
#include <cmath>

namespace kesm::scaler {

const char* toString(Reason reason) {
  switch (reason) {
  case Reason::kSteady:
    return "steady";
  case Reason::kScaleUp:
    return "scale_up";
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

Decision Scaler::decide(const Observation& o) {
  Decision d;
  d.per_poller = per_poller_rate_;
  if (!o.probe_ok) {
    // A failed probe says nothing about the load: hold, never scale down on it.
    d.desired = current_;
    d.recommendation = current_;
    d.reason = Reason::kProbeFailed;
    return d;
  }

  if (last_ && o.at > last_->at) {
    double dt = std::chrono::duration<double>(o.at - last_->at).count();
    d.ingest_rate =
        std::max<double>(0, static_cast<double>(o.high_watermark_sum - last_->high_watermark_sum)) /
        dt;
    d.drain_rate =
        std::max<double>(0, static_cast<double>(o.committed_sum - last_->committed_sum)) / dt;
    // A poller's capacity is only visible while it had more work than it could finish:
    // enough backlog at both ends of the interval to fill a batch for every busy poller.
    int busy = std::min(o.active_pollers, std::max(last_->lagging_partitions, 1));
    std::int64_t backlog = std::min(last_->total_lag, o.total_lag);
    if (busy > 0 && d.drain_rate > 0 &&
        backlog >= static_cast<std::int64_t>(busy) * policy_.batch_size) {
      double sample = d.drain_rate / busy;
      per_poller_rate_ = per_poller_rate_ ? 0.5 * *per_poller_rate_ + 0.5 * sample : sample;
    }
  }
  last_ = o;
  d.per_poller = per_poller_rate_;

  // The recommendation: enough pollers to absorb ingest and drain the backlog in time.
  double need = 0;
  if (per_poller_rate_ && *per_poller_rate_ > 0) {
    double target = std::chrono::duration<double>(policy_.target_drain_time).count();
    need = (d.ingest_rate + static_cast<double>(o.total_lag) / std::max(target, 1.0)) /
           *per_poller_rate_;
  } else {
    // No rate measured yet: one poller per batch of backlog, at once.
    need = static_cast<double>(o.total_lag) / policy_.batch_size;
  }
  int rec = static_cast<int>(std::ceil(need - 1e-9));
  if (o.total_lag > 0) {
    // Only a partition with lag can keep a poller busy.
    rec = std::min(rec, std::max(o.lagging_partitions, 1));
  }
  rec = std::clamp(rec, policy_.minimum_pollers, std::max(policy_.minimum_pollers, cap(o)));
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
  } else if (rec > current_) {
    d.desired = rec;
    d.reason = Reason::kScaleUp;
  } else if (rec == current_) {
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
  current_ = d.desired;
  return d;
}

} // namespace kesm::scaler
