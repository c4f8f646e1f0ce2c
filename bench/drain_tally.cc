#include "bench/drain_tally.h"

#include <algorithm>

namespace kesm::bench::drain {

void Tally::reset(const Watermarks& wm, std::int64_t target) {
  std::lock_guard lock(mutex_);
  low_.clear();
  seen_.clear();
  max_seen_.clear();
  for (const auto& [low, high] : wm) {
    low_.push_back(low);
    seen_.emplace_back(static_cast<std::size_t>(high - low), 0);
    max_seen_.push_back(-1);
  }
  target_ = target;
  distinct_ = total_ = order_violations_ = 0;
  latencies_ms_.clear();
  done_.reset();
  first_.reset();
  last_.reset();
}

void Tally::setTarget(std::int64_t target) {
  std::lock_guard lock(mutex_);
  target_ = target;
  checkDoneLocked(Clock::now());
}

void Tally::received(const std::vector<kesm::samplefn::ReceivedRecord>& batch) {
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::lock_guard lock(mutex_);
  for (const auto& r : batch) {
    latencies_ms_.push_back(static_cast<double>(now_us - r.timestamp_ms * 1000) / 1000.0);
  }
}

void Tally::delivered(const std::vector<kesm::samplefn::ReceivedRecord>& batch) {
  const auto now = Clock::now();
  std::lock_guard lock(mutex_);
  if (!first_) {
    first_ = now;
  }
  last_ = now;
  for (const auto& r : batch) {
    ++total_;
    auto p = static_cast<std::size_t>(r.partition);
    if (p >= seen_.size() || r.offset < low_[p]) {
      continue; // not a record of this run
    }
    auto i = static_cast<std::size_t>(r.offset - low_[p]);
    if (i >= seen_[p].size()) {
      seen_[p].resize(i + 1, 0);
    }
    if (seen_[p][i]++ == 0) {
      ++distinct_;
      if (r.offset < max_seen_[p]) {
        ++order_violations_;
      }
      max_seen_[p] = std::max(max_seen_[p], r.offset);
    }
  }
  checkDoneLocked(now);
}

Tally::Snapshot Tally::snapshot(bool with_latencies) const {
  std::lock_guard lock(mutex_);
  Snapshot s{distinct_, total_, order_violations_, target_, done_, first_, last_, {}};
  if (with_latencies) {
    s.latencies_ms = latencies_ms_;
  }
  return s;
}

void Tally::checkDoneLocked(Clock::time_point now) {
  if (!done_ && target_ > 0 && distinct_ >= target_) {
    done_ = now;
  }
}

} // namespace kesm::bench::drain
