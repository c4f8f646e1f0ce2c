#include "scaler/lag_source.h"

#include <algorithm>

namespace kesm::scaler {

std::int64_t partitionLag(std::int64_t low, std::int64_t high,
                          std::optional<std::int64_t> committed, config::StartingPosition position,
                          PartitionOrigin origin) {
  if (committed) {
    // A committed offset below the low watermark was deleted by retention: the consumer
    // resumes from the low watermark, so only what still exists is lag.
    return std::max<std::int64_t>(0, high - std::max(*committed, low));
  }
  if (position == config::StartingPosition::kLatest && origin == PartitionOrigin::kAtStart) {
    return 0;
  }
  return std::max<std::int64_t>(0, high - low);
}

} // namespace kesm::scaler
