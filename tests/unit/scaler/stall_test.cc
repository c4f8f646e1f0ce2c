#include "scaler/stall.h"

#include <catch2/catch.hpp>
#include <chrono>

using namespace kesm;
using namespace kesm::scaler;
using namespace std::chrono_literals;

namespace {

const TopicPartition kA{"orders", Partition{0}};
const TopicPartition kB{"orders", Partition{1}};

LagSample sample(std::int64_t a_committed, std::int64_t a_lag, std::int64_t b_committed,
                 std::int64_t b_lag) {
  LagSample s;
  s.partitions.push_back({.tp = kA, .committed = a_committed, .lag = a_lag});
  s.partitions.push_back({.tp = kB, .committed = b_committed, .lag = b_lag});
  return s;
}

} // namespace

TEST_CASE("stall: one stuck partition while the other progresses", "[unit]") {
  StallTracker t;
  const Clock::time_point t0{};
  t.observe(t0, sample(10, 5, 100, 50));
  CHECK(t.stalledSince(kA) == t0);
  CHECK(t.stalledSince(kB) == t0);
  // A stays at 10 with lag; B commits at every probe.
  t.observe(t0 + 5s, sample(10, 7, 150, 40));
  t.observe(t0 + 10s, sample(10, 9, 190, 30));
  CHECK(t.stalledSince(kA) == t0);       // stuck for 10 s
  CHECK(t.stalledSince(kB) == t0 + 10s); // progress at the last probe
  // A moves: the stall ends; then it drains.
  t.observe(t0 + 15s, sample(11, 8, 220, 0));
  CHECK(t.stalledSince(kA) == t0 + 15s);
  CHECK(t.stalledSince(kB) == std::nullopt); // no lag: not stalled
  t.observe(t0 + 20s, sample(19, 0, 220, 0));
  CHECK(t.stalledSince(kA) == std::nullopt);
}

TEST_CASE("stall: a partition that starts lagging counts from that probe", "[unit]") {
  StallTracker t;
  const Clock::time_point t0{};
  t.observe(t0, sample(10, 0, 0, 0));
  t.observe(t0 + 5s, sample(10, 3, 0, 0));
  CHECK(t.stalledSince(kA) == t0 + 5s);
  t.observe(t0 + 10s, sample(10, 3, 0, 0));
  CHECK(t.stalledSince(kA) == t0 + 5s);
  CHECK(t.stalledSince(TopicPartition{"other", Partition{0}}) == std::nullopt);
}

TEST_CASE("stall: a never-committed partition with lag is stalled until a first commit", "[unit]") {
  StallTracker t;
  const Clock::time_point t0{};
  LagSample s;
  s.partitions.push_back({.tp = kA, .committed = std::nullopt, .lag = 4});
  t.observe(t0, s);
  t.observe(t0 + 5s, s);
  CHECK(t.stalledSince(kA) == t0);
  s.partitions[0].committed = 2;
  s.partitions[0].lag = 2;
  t.observe(t0 + 10s, s);
  CHECK(t.stalledSince(kA) == t0 + 10s);
}
