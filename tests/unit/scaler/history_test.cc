#include "scaler/history.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <thread>

using namespace kesm::scaler;
using namespace std::chrono_literals;

namespace {

const WallTime kT0{std::chrono::seconds(1'800'000'000)};

HistorySample at(std::chrono::milliseconds offset, double committed, int desired = 1) {
  HistorySample s;
  s.at = kT0 + offset;
  s.lag_total = 100;
  s.desired = desired;
  s.running = desired;
  s.committed_total = committed;
  return s;
}

} // namespace

TEST_CASE("history: committed events per second between consecutive samples", "[unit]") {
  StatusHistory h;
  h.record(at(0s, 1000));
  h.record(at(2s, 1500));     // 500 in 2 s
  h.record(at(2500ms, 1500)); // nothing committed
  h.record(at(2500ms, 1600)); // no time passed: no rate, not infinity
  h.record(at(3500ms, 10));   // a counter that went back (a new process): no negative rate
  const auto s = h.snapshot().samples;
  REQUIRE(s.size() == 5);
  CHECK(s[0].committed_per_second == 0); // nothing before the first
  CHECK(s[1].committed_per_second == Approx(250));
  CHECK(s[2].committed_per_second == 0);
  CHECK(s[3].committed_per_second == 0);
  CHECK(s[4].committed_per_second == 0);
  CHECK(s[4].committed_total == 10); // the counter itself is kept as given
}

TEST_CASE("history: samples are capped by count, oldest dropped first", "[unit]") {
  StatusHistory h(StatusHistory::Limits{.samples = 3, .window = 3600s, .decisions = 50});
  for (int i = 0; i < 5; ++i) {
    h.record(at(std::chrono::seconds(i), i * 10.0, i));
  }
  const auto s = h.snapshot().samples;
  REQUIRE(s.size() == 3);
  CHECK(s[0].desired == 2);
  CHECK(s[2].desired == 4);
  CHECK(s[0].committed_per_second == Approx(10)); // computed before the drop
}

TEST_CASE("history: samples older than the window before the newest are dropped", "[unit]") {
  StatusHistory h(StatusHistory::Limits{.samples = 1000, .window = 60s, .decisions = 50});
  h.record(at(0s, 0));
  h.record(at(30s, 0));
  h.record(at(60s, 0)); // exactly the window: kept
  CHECK(h.snapshot().samples.size() == 3);
  h.record(at(61s, 0));
  auto s = h.snapshot().samples;
  REQUIRE(s.size() == 3);
  CHECK(s.front().at == kT0 + 30s);
  // A long pause (no evaluation: a standby replica) leaves only the new sample.
  h.record(at(10min, 0));
  s = h.snapshot().samples;
  REQUIRE(s.size() == 1);
  CHECK(s.front().at == kT0 + 10min);
}

TEST_CASE("history: the last decisions are kept, oldest first", "[unit]") {
  StatusHistory h(StatusHistory::Limits{.samples = 10, .window = 60s, .decisions = 2});
  h.recordDecision({kT0, 0, 1, "start", ""});
  h.recordDecision({kT0 + 5s, 1, 8, "scale_up", "lag 16000 on 8/8 partitions"});
  h.recordDecision({kT0 + 30s, 8, 4, "scale_down", "lag 0 on 0/8 partitions"});
  const auto d = h.snapshot().decisions;
  REQUIRE(d.size() == 2);
  CHECK(d[0].from == 1);
  CHECK(d[0].to == 8);
  CHECK(d[0].reason == "scale_up");
  CHECK(d[0].detail == "lag 16000 on 8/8 partitions");
  CHECK(d[1].reason == "scale_down");
  CHECK(d[1].at == kT0 + 30s);
}

TEST_CASE("history: a stale sample keeps no lag", "[unit]") {
  StatusHistory h;
  auto s = at(0s, 0);
  s.lag_total.reset();
  h.record(s);
  CHECK_FALSE(h.snapshot().samples.at(0).lag_total.has_value());
}

TEST_CASE("history: limits must be positive", "[unit]") {
  CHECK_THROWS_AS(StatusHistory(StatusHistory::Limits{.samples = 0}), std::invalid_argument);
  CHECK_THROWS_AS(StatusHistory(StatusHistory::Limits{.decisions = 0}), std::invalid_argument);
  CHECK_THROWS_AS(StatusHistory(StatusHistory::Limits{.window = 0s}), std::invalid_argument);
}

TEST_CASE("history: one writer and readers at once see whole, bounded snapshots", "[unit]") {
  StatusHistory h(StatusHistory::Limits{.samples = 50, .window = 3600s, .decisions = 5});
  std::thread writer([&] {
    for (int i = 0; i < 5000; ++i) {
      h.record(at(std::chrono::milliseconds(i), i, i));
      h.recordDecision({kT0 + std::chrono::milliseconds(i), i, i + 1, "scale_up", ""});
    }
  });
  bool ordered = true;
  std::size_t max_samples = 0, max_decisions = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto snap = h.snapshot();
    max_samples = std::max(max_samples, snap.samples.size());
    max_decisions = std::max(max_decisions, snap.decisions.size());
    for (std::size_t k = 1; k < snap.samples.size(); ++k) {
      ordered = ordered && snap.samples[k].desired == snap.samples[k - 1].desired + 1;
    }
  }
  writer.join();
  CHECK(ordered);
  CHECK(max_samples <= 50);
  CHECK(max_decisions <= 5);
  CHECK(h.snapshot().samples.back().desired == 4999);
}
