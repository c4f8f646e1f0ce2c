#include "scaler/stall.h"

namespace kesm::scaler {

void StallTracker::observe(time_point at, const LagSample& sample) {
  std::map<TopicPartition, State> next;
  for (const auto& p : sample.partitions) {
    State state;
    state.committed = p.committed;
    if (p.lag > 0) {
      auto it = partitions_.find(p.tp);
      bool moved = it == partitions_.end() || it->second.committed != p.committed;
      state.since = moved || !it->second.since ? at : *it->second.since;
    }
    next[p.tp] = state;
  }
  partitions_ = std::move(next); // partitions gone from the topic are forgotten
}

std::optional<StallTracker::time_point> StallTracker::stalledSince(const TopicPartition& tp) const {
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) {
    return std::nullopt;
  }
  return it->second.since;
}

} // namespace kesm::scaler
