#include "scaler/history.h"

#include <stdexcept>

namespace kesm::scaler {

StatusHistory::StatusHistory(Limits limits) : limits_(limits) {
  if (limits_.samples == 0 || limits_.decisions == 0 || limits_.window.count() <= 0) {
    throw std::invalid_argument("StatusHistory: every limit must be positive");
  }
}

void StatusHistory::record(HistorySample sample) {
  std::lock_guard lock(mutex_);
  sample.committed_per_second = 0;
  if (!samples_.empty()) {
    const auto& last = samples_.back();
    const double seconds = std::chrono::duration<double>(sample.at - last.at).count();
    const double committed = sample.committed_total - last.committed_total;
    if (seconds > 0 && committed >= 0) {
      sample.committed_per_second = committed / seconds;
    }
  }
  samples_.push_back(std::move(sample));
  const auto oldest = samples_.back().at - limits_.window;
  while (samples_.size() > limits_.samples || samples_.front().at < oldest) {
    samples_.pop_front();
  }
}

void StatusHistory::recordDecision(HistoryDecision decision) {
  std::lock_guard lock(mutex_);
  decisions_.push_back(std::move(decision));
  while (decisions_.size() > limits_.decisions) {
    decisions_.pop_front();
  }
}

StatusHistory::Snapshot StatusHistory::snapshot() const {
  std::lock_guard lock(mutex_);
  return Snapshot{{samples_.begin(), samples_.end()}, {decisions_.begin(), decisions_.end()}};
}

} // namespace kesm::scaler
