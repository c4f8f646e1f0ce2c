#pragma once

// The recent past of one mapping for /status/history and the status page: a sample per
// controller evaluation (lag, pollers, committed events/s) and the recent changes of the
// desired poller count with their reasons. Pure: times are passed in (wall clock, shown to
// people as such).
//
// Bounded: at most Limits::samples samples, none older than Limits::window before the newest,
// and the last Limits::decisions decisions. Thread-safe: the controller's thread records, the
// HTTP handler threads read snapshots. Owned by the mapping's runtime (app/runtime.cc) and
// shared with each controller it starts, so it outlives leader-election terms.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kesm::scaler {

using WallTime = std::chrono::system_clock::time_point;

struct HistorySample {
  WallTime at{};
  std::optional<std::int64_t> lag_total; // records; nullopt: the probe failed (stale)
  int desired = 0;
  int running = 0;
  double committed_total = 0; // records committed since start (the counter)
  // Records/s committed since the sample before; 0 for the first. Set by record().
  double committed_per_second = 0;
};

struct HistoryDecision {
  WallTime at{};
  int from = 0;
  int to = 0;
  std::string reason; // scaler::toString(Reason), or "start", "disabled"
  std::string detail; // what it saw: lag, partitions, rates
};

class StatusHistory {
public:
  struct Limits {
    std::size_t samples = 600;        // 10 min at the 1 s evaluation interval
    std::chrono::seconds window{600}; // older samples are dropped whatever the count
    std::size_t decisions = 50;
  };

  StatusHistory() : StatusHistory(Limits{}) {}
  explicit StatusHistory(Limits limits);

  // Appends a sample, computing committed_per_second from the one before (0 when the time did
  // not advance or the counter went back: a new process's counter).
  void record(HistorySample sample);
  void recordDecision(HistoryDecision decision);

  struct Snapshot {
    std::vector<HistorySample> samples;     // oldest first
    std::vector<HistoryDecision> decisions; // oldest first
  };
  Snapshot snapshot() const;
  const Limits& limits() const { return limits_; }

private:
  const Limits limits_;
  mutable std::mutex mutex_;
  std::deque<HistorySample> samples_;     // guarded by mutex_
  std::deque<HistoryDecision> decisions_; // guarded by mutex_
};

} // namespace kesm::scaler
