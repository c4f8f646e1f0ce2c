#pragma once

// What the sample function saw, counted independently of kesm.

#include "bench/drain_util.h"
#include "samplefn/sample_function.h"

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

namespace kesm::bench::drain {

// Distinct (partition, offset) pairs delivered, duplicates, first-delivery order, and the
// latency of each record. Called from the sample function's connection threads.
class Tally {
public:
  void reset(const Watermarks& wm, std::int64_t target);
  void setTarget(std::int64_t target);

  // The moment the function got the batch, before its latency.
  void received(const std::vector<kesm::samplefn::ReceivedRecord>& batch);

  // A batch the function answered with success.
  void delivered(const std::vector<kesm::samplefn::ReceivedRecord>& batch);

  struct Snapshot {
    std::int64_t distinct = 0, total = 0, order_violations = 0, target = 0;
    std::optional<Clock::time_point> done, first, last;
    std::vector<double> latencies_ms;
  };
  Snapshot snapshot(bool with_latencies = false) const;

private:
  void checkDoneLocked(Clock::time_point now);

  mutable std::mutex mutex_;
  std::vector<std::int64_t> low_;
  std::vector<std::vector<std::uint8_t>> seen_;
  std::vector<std::int64_t> max_seen_;
  std::int64_t target_ = 0, distinct_ = 0, total_ = 0, order_violations_ = 0;
  std::vector<double> latencies_ms_;
  std::optional<Clock::time_point> done_, first_, last_;
};

} // namespace kesm::bench::drain
