#pragma once

// Fakes of the controller's seams (scaler/controller.h) for unit tests: a clock the test
// moves, a pool that only counts, a lag source that answers from a script. Single-threaded:
// the test drives Controller::evaluate() itself.

#include "common/types.h"
#include "scaler/lag_source.h"
#include "scaler/signals.h"
#include "scaler/worker_pool.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <string>
#include <vector>

namespace kesm::fakes {

class FakeClock final : public Clock {
public:
  time_point now() const override { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

private:
  time_point now_{};
};

// Reaches any count up to `limit`; above it holds there and reports `spawn_error`.
class FakeWorkerPool final : public scaler::WorkerPool {
public:
  explicit FakeWorkerPool(int active = 0) : active_(active) {}

  scaler::ScaleResult scaleTo(int desired) override {
    asked.push_back(desired);
    scaler::ScaleResult result;
    active_ = std::min(desired, limit);
    result.active = active_;
    if (desired > limit) {
      result.error = spawn_error;
    }
    last_error_ = result.error;
    return result;
  }

  scaler::PoolStatus status() override {
    scaler::PoolStatus s;
    s.active = active_;
    s.running = active_;
    s.spawn_error = last_error_;
    for (int i = 0; i < active_; ++i) {
      s.pollers.push_back({"fake-" + std::to_string(i + 1), scaler::WorkerState::kRunning, 1});
    }
    return s;
  }

  using scaler::WorkerPool::shutdown;
  bool shutdown(std::chrono::milliseconds timeout,
                std::optional<std::chrono::milliseconds> grace) override {
    shutdowns.push_back(timeout);
    graces.push_back(grace);
    active_ = 0;
    return true;
  }

  int active() const { return active_; }

  int limit = 1 << 20;
  std::string spawn_error = "cannot start poller: Resource temporarily unavailable";
  std::vector<int> asked;                           // every scaleTo(), in order
  std::vector<std::chrono::milliseconds> shutdowns; // every shutdown(), with its timeout
  std::vector<std::optional<std::chrono::milliseconds>> graces; // and its grace

private:
  int active_ = 0;
  std::string last_error_;
};

// Answers each probe with the next scripted result; once the script is empty, with `steady`.
class FakeLagSource final : public scaler::LagSource {
public:
  scaler::ProbeResult probe() override {
    ++probes;
    if (script.empty()) {
      return steady;
    }
    auto r = script.front();
    script.pop_front();
    return r;
  }

  std::deque<scaler::ProbeResult> script;
  scaler::ProbeResult steady;
  int probes = 0;
};

class FakeInvocationStats final : public scaler::InvocationStats {
public:
  scaler::InvocationTotals invocationTotals() const override { return totals; }
  scaler::InvocationTotals totals;
};

// A sample of `partitions` partitions of topic "t", each `lag` behind a high watermark `high`.
inline scaler::LagSample lagSample(int partitions, std::int64_t lag, std::int64_t high = 1000) {
  scaler::LagSample s;
  for (int p = 0; p < partitions; ++p) {
    scaler::PartitionLag pl;
    pl.tp = TopicPartition{"t", Partition(p)};
    pl.high = high;
    pl.committed = high - lag;
    pl.lag = lag;
    s.partitions.push_back(pl);
    s.total += lag;
    s.max = std::max(s.max, lag);
    s.high_sum += high;
    s.lagging_partitions += lag > 0 ? 1 : 0;
  }
  return s;
}

inline scaler::ProbeResult probeOk(scaler::LagSample sample) {
  scaler::ProbeResult r;
  r.sample = std::move(sample);
  return r;
}

inline scaler::ProbeResult probeFailed(std::string error, bool fatal) {
  scaler::ProbeResult r;
  r.error = std::move(error);
  r.fatal = fatal;
  return r;
}

} // namespace kesm::fakes
