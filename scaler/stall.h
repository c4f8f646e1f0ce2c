#pragma once

// Since when each partition has had lag without its committed offset moving: the signal that
// one partition is stuck (a poison record retried for ever, a function that times out on one
// batch) while the others progress. Computed from the lag probe alone, so it holds whoever
// runs the pollers. Pure: time is passed in. Owned by the controller thread.

#include "common/types.h"
#include "scaler/lag_source.h"

#include <map>
#include <optional>

namespace kesm::scaler {

class StallTracker {
public:
  using time_point = Clock::time_point;

  // One probe's sample. A partition is stalled from the first probe that saw it lagging with
  // the committed offset of the probe before (or from the probe that saw the offset move).
  void observe(time_point at, const LagSample& sample);

  // Since when the partition has been lagging without progress; nullopt when it is not
  // lagging (or was never seen).
  std::optional<time_point> stalledSince(const TopicPartition& tp) const;

private:
  struct State {
    std::optional<std::int64_t> committed;
    std::optional<time_point> since;
  };
  std::map<TopicPartition, State> partitions_;
};

} // namespace kesm::scaler
