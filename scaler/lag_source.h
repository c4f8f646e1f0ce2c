#pragma once

// Offset lag per partition, from a client that is not a group member:
// lag = high watermark - committed offset. Without a committed offset the lag follows the
// starting position (TRIM_HORIZON: high - low; LATEST: 0, or high - low for a partition
// added since the mapping started, which the pollers read from its beginning).

#include "common/types.h"
#include "config/config.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kesm::scaler {

struct PartitionLag {
  TopicPartition tp;
  std::int64_t low = 0;
  std::int64_t high = 0;
  std::optional<std::int64_t> committed; // next offset to read; nullopt when none
  std::int64_t lag = 0;
};

struct LagSample {
  Clock::time_point at{};
  std::vector<PartitionLag> partitions;
  std::int64_t total = 0;
  std::int64_t max = 0;
  std::int64_t high_sum = 0; // sum of high watermarks; high_sum - total = consumed position
  int lagging_partitions = 0;
};

enum class PartitionOrigin {
  kAtStart,   // existed when the mapping started in this process
  kAddedSince // added to the topic while the mapping ran
};

// Pure: the lag of one partition from its watermarks and committed offset.
std::int64_t partitionLag(std::int64_t low, std::int64_t high,
                          std::optional<std::int64_t> committed, config::StartingPosition position,
                          PartitionOrigin origin = PartitionOrigin::kAtStart);

struct ProbeResult {
  std::optional<LagSample> sample; // nullopt when the probe failed
  std::string error;               // why it failed
  // Set when the failure is one retrying cannot fix: a mapped topic does not exist, or the
  // cluster refused access. The caller decides whether to disable the mapping.
  bool fatal = false;
};

class LagSource {
public:
  virtual ~LagSource() = default;
  virtual ProbeResult probe() = 0;
};

// Watermark queries plus the Admin API's ListConsumerGroupOffsets. Owned by one thread.
// Never calls DescribeConsumerGroups (it breaks the handle on the mock cluster).
// `at_start` (LATEST): the partitions that start at their end when never committed; it may be
// filled after creation, before the first probe that is to use it.
std::unique_ptr<LagSource>
makeKafkaLagSource(const config::Mapping& mapping, std::chrono::milliseconds timeout,
                   std::shared_ptr<const PartitionsAtStart> at_start = nullptr);

} // namespace kesm::scaler
