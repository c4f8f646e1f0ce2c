#include "poller/commit_tracker.h"

#include <algorithm>

namespace kesm::poller {

PartitionRanges rangesOf(const Batch& batch) {
  PartitionRanges ranges;
  for (const auto& r : batch.records) {
    TopicPartition tp{r.topic, r.partition};
    auto it = ranges.find(tp);
    if (it == ranges.end()) {
      ranges.emplace(tp, PartitionRange{r.offset, r.offset, 1});
    } else {
      it->second.last = r.offset;
      it->second.records++;
    }
  }
  return ranges;
}

std::string describe(const PartitionRanges& ranges) {
  std::string out;
  for (const auto& [tp, range] : ranges) {
    if (!out.empty()) {
      out += ", ";
    }
    out += tp.topic + "-" + std::to_string(tp.partition.value()) + "@" +
           std::to_string(range.first.value()) + ".." + std::to_string(range.last.value());
  }
  return out;
}

void CommitTracker::assign(const TopicPartition& tp) {
  owned_.insert(tp);
  points_.erase(tp);
}

void CommitTracker::revoke(const TopicPartition& tp) {
  owned_.erase(tp);
  points_.erase(tp);
}

void CommitTracker::succeeded(const PartitionRanges& ranges) {
  for (const auto& [tp, range] : ranges) {
    if (!owns(tp)) {
      continue; // revoked meanwhile: the new owner redelivers from the last commit
    }
    auto& point = points_[tp];
    point.done = std::max(point.done, range.last.value() + 1);
    point.records += static_cast<double>(range.records);
  }
}

void CommitTracker::covered(const PartitionRanges& cut, std::size_t filtered) {
  for (const auto& [tp, range] : cut) {
    if (owns(tp)) {
      auto& point = points_[tp];
      point.done = std::max(point.done, range.last.value() + 1);
    }
  }
  if (filtered > 0 && !cut.empty() && owns(cut.begin()->first)) {
    points_[cut.begin()->first].records += static_cast<double>(filtered);
  }
}

void CommitTracker::startAt(const TopicPartition& tp, Offset next) {
  points_[tp].done = next.value();
}

CommitRequest CommitTracker::take(const std::set<TopicPartition>* only) {
  CommitRequest request;
  for (auto& [tp, point] : points_) {
    if (point.done <= point.confirmed || !owns(tp) || (only && !only->count(tp))) {
      continue;
    }
    request.offsets.push_back(CommitOffset{tp, Offset{point.done}});
    request.records[tp] = point.records;
    point.records = 0;
  }
  return request;
}

double CommitTracker::settle(const CommitRequest& request,
                             const std::vector<CommitAnswer>& answers) {
  double committed = 0;
  for (const auto& answer : answers) {
    auto records = request.records.find(answer.tp);
    double n = records == request.records.end() ? 0 : records->second;
    auto point = points_.find(answer.tp);
    if (answer.accepted) {
      committed += n;
      if (point != points_.end()) {
        point->second.confirmed = std::max(point->second.confirmed, answer.next.value());
      }
      continue;
    }
    if (point != points_.end()) {
      point->second.records += n; // committed by a later request, or delivered again
    }
  }
  return committed;
}

std::int64_t CommitTracker::committable(const TopicPartition& tp) const {
  auto it = points_.find(tp);
  return it == points_.end() ? -1 : it->second.done;
}

} // namespace kesm::poller
