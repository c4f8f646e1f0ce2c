#include "poller/batcher.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace kesm::poller {

namespace {
bool same(const TopicPartition& tp, const Record& r) {
  return tp.partition == r.partition && tp.topic == r.topic;
}

// A poller has at most maxConcurrentBatches batches in flight, so `busy` is small: a scan
// costs less than building a key per record.
bool isBusy(const std::set<TopicPartition>& busy, const Record& r) {
  return std::any_of(busy.begin(), busy.end(),
                     [&](const TopicPartition& tp) { return same(tp, r); });
}

void forget(std::map<TopicPartition, std::size_t, PartitionLess>& counts, const Record& r) {
  auto it = counts.find(PartitionOf{r.topic, r.partition});
  if (it != counts.end() && --it->second == 0) {
    counts.erase(it);
  }
}
} // namespace

Batcher::Batcher(BatcherLimits limits, PayloadSizer sizer)
    : limits_(limits), sizer_(std::move(sizer)) {
  limits_.max_records = std::max<std::size_t>(1, limits_.max_records);
}

void Batcher::add(Record record, time_point arrived) {
  std::size_t bytes = sizer_.record_bytes ? sizer_.record_bytes(record) : 0;
  pending_bytes_ += bytes;
  auto it = per_partition_.find(PartitionOf{record.topic, record.partition});
  if (it == per_partition_.end()) {
    it = per_partition_.emplace(TopicPartition{record.topic, record.partition}, 0).first;
  }
  ++it->second;
  pending_.push_back(Pending{std::move(record), arrived, bytes});
}

std::size_t Batcher::pendingOf(const TopicPartition& tp) const {
  auto it = per_partition_.find(tp);
  return it == per_partition_.end() ? 0 : it->second;
}

// Walks the eligible prefix the way cut() would, returning the batch's encoded size.
std::size_t Batcher::batchBytesFor(const std::deque<Pending>& pending, std::size_t max_records,
                                   const std::set<TopicPartition>& busy, std::size_t* count,
                                   bool* full_by_bytes) const {
  std::size_t total = sizer_.envelope_bytes;
  std::vector<const Record*> seen; // one record of each partition in the batch
  *count = 0;
  *full_by_bytes = false;
  for (const auto& p : pending) {
    if (*count == max_records) {
      break;
    }
    if (isBusy(busy, p.record)) {
      continue;
    }
    std::size_t extra = p.bytes;
    bool new_partition = std::none_of(seen.begin(), seen.end(), [&](const Record* r) {
      return r->partition == p.record.partition && r->topic == p.record.topic;
    });
    if (new_partition && sizer_.partition_bytes) {
      extra += sizer_.partition_bytes(TopicPartition{p.record.topic, p.record.partition});
    }
    if (*count > 0 && total + extra > limits_.max_payload_bytes) {
      *full_by_bytes = true;
      break;
    }
    if (new_partition) {
      seen.push_back(&p.record);
    }
    total += extra;
    ++*count;
  }
  return total;
}

bool Batcher::ready(time_point now, const std::set<TopicPartition>& busy) const {
  if (pending_.empty()) {
    return false;
  }
  std::size_t count = 0;
  bool full_by_bytes = false;
  batchBytesFor(pending_, limits_.max_records, busy, &count, &full_by_bytes);
  if (count == 0) {
    return false;
  }
  if (count >= limits_.max_records || full_by_bytes) {
    return true;
  }
  return now >= windowDeadline(busy);
}

Batcher::time_point Batcher::windowDeadline(const std::set<TopicPartition>& busy) const {
  for (const auto& p : pending_) {
    if (!isBusy(busy, p.record)) {
      return p.arrived + limits_.window;
    }
  }
  return time_point::max();
}

Batch Batcher::cut(const std::set<TopicPartition>& busy) {
  std::size_t count = 0;
  bool full_by_bytes = false;
  Batch batch;
  batch.payload_bytes = batchBytesFor(pending_, limits_.max_records, busy, &count, &full_by_bytes);
  batch.records.reserve(count);
  std::deque<Pending> kept;
  for (auto& p : pending_) {
    if (batch.records.size() < count && !isBusy(busy, p.record)) {
      pending_bytes_ -= p.bytes;
      forget(per_partition_, p.record);
      batch.records.push_back(std::move(p.record));
    } else {
      kept.push_back(std::move(p));
    }
  }
  pending_.swap(kept);
  return batch;
}

std::size_t Batcher::drop(const TopicPartition& tp) {
  std::size_t before = pending_.size();
  std::deque<Pending> kept;
  for (auto& p : pending_) {
    if (p.record.topic == tp.topic && p.record.partition == tp.partition) {
      pending_bytes_ -= p.bytes;
    } else {
      kept.push_back(std::move(p));
    }
  }
  pending_.swap(kept);
  per_partition_.erase(tp);
  return before - pending_.size();
}

} // namespace kesm::poller
