#pragma once

// The batch-cutting decision of one poller. Pure: time is passed in, sizes come from
// injected functions (the payload encoder's exact sizes). Owned by the poller thread.

#include "common/types.h"

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string_view>

namespace kesm::poller {

struct BatcherLimits {
  std::size_t max_records = 100;
  std::chrono::milliseconds window{500};
  std::size_t max_payload_bytes = 6 * 1024 * 1024;
};

// Orders partitions by (topic, partition) without building a TopicPartition per record (a
// topic name longer than the small-string buffer would cost an allocation each time).
struct PartitionOf {
  std::string_view topic;
  Partition partition;
};
struct PartitionLess {
  using is_transparent = void;
  template <class A, class B> bool operator()(const A& a, const B& b) const {
    if (a.topic != b.topic) {
      return std::string_view(a.topic) < std::string_view(b.topic);
    }
    return a.partition < b.partition;
  }
};

struct PayloadSizer {
  std::size_t envelope_bytes = 0;
  std::function<std::size_t(const Record&)> record_bytes;
  std::function<std::size_t(const TopicPartition&)> partition_bytes;
};

// Pending records across the poller's partitions, in arrival order (hence in offset order
// within each partition). A batch is a prefix of the pending records that are eligible.
class Batcher {
public:
  using time_point = Clock::time_point;

  Batcher(BatcherLimits limits, PayloadSizer sizer);

  void add(Record record, time_point arrived);

  // True when a batch should be sent now: it is full by count, the next record would pass
  // the payload cap, or the oldest pending record has waited the whole window.
  // Partitions in `busy` (a batch of theirs is in flight) are not eligible.
  bool ready(time_point now, const std::set<TopicPartition>& busy = {}) const;
  // When the window of the oldest eligible record ends; time_point::max() when none.
  time_point windowDeadline(const std::set<TopicPartition>& busy = {}) const;

  // Takes the next batch: eligible records in arrival order until the count or the byte
  // cap is reached. A single record larger than the cap is sent alone.
  Batch cut(const std::set<TopicPartition>& busy = {});

  // Forgets every pending record of the partition (revoked or rewound). Returns how many.
  std::size_t drop(const TopicPartition& tp);

  std::size_t size() const { return pending_.size(); }
  // Pending records of one partition.
  std::size_t pendingOf(const TopicPartition& tp) const;
  std::size_t pendingBytes() const { return pending_bytes_; }
  bool empty() const { return pending_.empty(); }

private:
  struct Pending {
    Record record;
    time_point arrived;
    std::size_t bytes;
  };
  std::size_t batchBytesFor(const std::deque<Pending>& pending, std::size_t max_records,
                            const std::set<TopicPartition>& busy, std::size_t* count,
                            bool* full_by_bytes) const;

  BatcherLimits limits_;
  PayloadSizer sizer_;
  std::deque<Pending> pending_;
  std::size_t pending_bytes_ = 0;
  std::map<TopicPartition, std::size_t, PartitionLess> per_partition_;
};

} // namespace kesm::poller
