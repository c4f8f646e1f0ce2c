#pragma once

// What a poller may commit, per partition, from the offset ranges its batches settled. Pure:
// no clock, no librdkafka. A committed offset is the NEXT offset to read: last processed + 1.
// Owned and used by one poller thread; not thread-safe.

#include "common/types.h"

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace kesm::poller {

// The offsets one batch (or piece of one) holds of a partition.
struct PartitionRange {
  Offset first;
  Offset last;
  std::size_t records = 0; // in the batch; fewer than last - first + 1 where offsets have gaps
};

using PartitionRanges = std::map<TopicPartition, PartitionRange>;

// Per partition, the first and last offsets of the batch's records, in batch order.
PartitionRanges rangesOf(const Batch& batch);

// "topic-0@5..9, topic-1@3..3", for logs.
std::string describe(const PartitionRanges& ranges);

// One partition's offset in a commit request.
struct CommitOffset {
  TopicPartition tp;
  Offset next; // the next offset to read
};

// A commit request: the offsets it carries, and the succeeded records it will count as
// committed when the coordinator accepts it.
struct CommitRequest {
  std::vector<CommitOffset> offsets; // in partition order
  std::map<TopicPartition, double> records;
  bool empty() const { return offsets.empty(); }
};

// The coordinator's answer for one partition of a request.
struct CommitAnswer {
  TopicPartition tp;
  Offset next;
  bool accepted = false; // the request and this partition both succeeded
};

class CommitTracker {
public:
  // The group gave this poller the partition: it starts from the group's committed offset,
  // with nothing of an earlier ownership remembered.
  void assign(const TopicPartition& tp);
  // The partition moved away: forgotten, and later successes of it are ignored (the next
  // owner redelivers from the last commit).
  void revoke(const TopicPartition& tp);
  bool owns(const TopicPartition& tp) const { return owned_.count(tp) > 0; }
  const std::set<TopicPartition>& owned() const { return owned_; }

  // The records of `ranges` succeeded: each partition may be committed up to last + 1.
  void succeeded(const PartitionRanges& ranges);
  // Every offset of a cut (filtered records too) is done once all it sent succeeded;
  // `filtered` records never sent are counted on the cut's first partition.
  void covered(const PartitionRanges& cut, std::size_t filtered);
  // LATEST: where a never-committed partition starts, committed with the next request so a
  // restart resumes there.
  void startAt(const TopicPartition& tp, Offset next);

  // The owned partitions (of `only`, when given) whose commit point is ahead of what the
  // coordinator accepted; their records move into the request.
  CommitRequest take(const std::set<TopicPartition>* only = nullptr);
  // The coordinator answered `request`. Accepted partitions are confirmed; refused ones stay
  // due, so the next request resends them (at its newer offset), and their records return.
  // Returns the records now committed.
  double settle(const CommitRequest& request, const std::vector<CommitAnswer>& answers);

  // The offset a request would carry for `tp` now; -1 when nothing succeeded yet.
  std::int64_t committable(const TopicPartition& tp) const;

private:
  struct Point {
    std::int64_t done = -1;      // next offset after the last succeeded batch
    std::int64_t confirmed = -1; // last offset the coordinator accepted from this poller
    double records = 0;          // succeeded records not yet in a commit request
  };
  std::set<TopicPartition> owned_;
  std::map<TopicPartition, Point> points_;
};

} // namespace kesm::poller
