#include "scaler/decision.h"

#include <catch2/catch.hpp>
#include <random>

using namespace kesm;
using namespace kesm::scaler;
using namespace std::chrono_literals;

namespace {

const Clock::time_point t0{};

ScalingPolicy policy(int min, int max) {
  ScalingPolicy p;
  p.minimum_pollers = min;
  p.maximum_pollers = max;
  p.scale_down_stabilization = 60s;
  p.target_drain_time = 10s;
  p.scale_up_cooldown = 5s;
  p.rate_window = 10s;
  p.target_utilization = 0.8;
  p.tolerance = 0.1;
  p.batch_size = 100;
  return p;
}

// A topic driven through time: ingest and drain are what the test says they are.
struct World {
  int partitions = 8;
  std::int64_t high = 0;
  std::int64_t committed = 0;
  std::int64_t invocations = 0;
  double invocation_seconds = 0;
  Clock::time_point now = t0;

  Observation observe(int active, int lagging = -1) const {
    Observation o;
    o.at = now;
    o.partitions = partitions;
    o.total_lag = high - committed;
    o.lagging_partitions =
        lagging >= 0 ? lagging
                     : (o.total_lag > 0 ? std::min<std::int64_t>(partitions, o.total_lag) : 0);
    o.high_watermark_sum = high;
    o.committed_sum = committed;
    o.active_pollers = active;
    o.invocations = invocations;
    o.invocation_seconds = invocation_seconds;
    return o;
  }
};

} // namespace

TEST_CASE("decision: starts at the minimum and never goes below it", "[unit]") {
  Scaler s(policy(3, 10));
  CHECK(s.current() == 3);
  World w;
  auto d = s.decide(w.observe(3));
  CHECK(d.desired == 3);
}

TEST_CASE("decision: a burst scales up at once, sized from the backlog, capped by partitions",
          "[unit]") {
  struct Case {
    const char* name;
    int partitions;
    int max;
    std::int64_t backlog;
    int lagging;
    int expected;
  };
  auto c = GENERATE(Case{.name = "capped by partitions",
                         .partitions = 8,
                         .max = 100,
                         .backlog = 20000,
                         .lagging = 8,
                         .expected = 8},
                    Case{.name = "capped by maximum",
                         .partitions = 8,
                         .max = 5,
                         .backlog = 20000,
                         .lagging = 8,
                         .expected = 5},
                    Case{.name = "capped by lagging partitions",
                         .partitions = 8,
                         .max = 100,
                         .backlog = 20000,
                         .lagging = 3,
                         .expected = 3},
                    Case{.name = "sized by backlog in batches",
                         .partitions = 8,
                         .max = 100,
                         .backlog = 250,
                         .lagging = 8,
                         .expected = 3});
  INFO(c.name);
  Scaler s(policy(1, c.max));
  World w;
  w.partitions = c.partitions;
  w.high = c.backlog;
  auto d = s.decide(w.observe(1, c.lagging));
  CHECK(d.desired == c.expected);
  CHECK(d.reason == Reason::kScaleUp);
}

TEST_CASE("decision: with a measured capacity, sizes from ingest plus backlog over target time",
          "[unit]") {
  Scaler s(policy(1, 100));
  World w;
  w.partitions = 64;
  REQUIRE(s.decide(w.observe(1, 0)).desired == 1);
  // 10 s later: 10,000 records/s came in; one poller sent 100 full batches of 100 ms each.
  w.now += 10s;
  w.high = 100'000;
  w.committed = 10'000;
  w.invocations = 100;
  w.invocation_seconds = 10.0;
  auto d = s.decide(w.observe(1, 64));
  REQUIRE(d.per_poller);
  CHECK(*d.per_poller == Approx(1000)); // 100 records per 0.1 s
  CHECK(d.ingest_rate == Approx(10000));
  // demand = 10,000/s + (90,000 lag - 100 held) / 10 s = 18,990/s, 296.7/s per partition;
  // one poller at 80 % carries 800/s: 2 partitions -> ceil(64 / 2) = 32 pollers.
  CHECK(d.desired == 32);
  CHECK(d.reason == Reason::kScaleUp);
}

TEST_CASE("decision: concurrent batches per poller divide the pollers a load needs", "[unit]") {
  // The load of the test above, with pollers that run 4 batches at once.
  auto p = policy(1, 100);
  p.max_concurrent_batches = 4;
  Scaler s(p);
  World w;
  w.partitions = 64;
  REQUIRE(s.decide(w.observe(1, 0)).desired == 1);
  w.now += 10s;
  w.high = 100'000;
  w.committed = 10'000;
  w.invocations = 100;
  w.invocation_seconds = 10.0;
  auto d = s.decide(w.observe(1, 64));
  REQUIRE(d.per_poller);
  CHECK(*d.per_poller == Approx(1000)); // still per batch slot
  // demand = 10,000/s + (90,000 lag - 4 slots x 100 held) / 10 s = 18,960/s, 296.25/s per
  // partition; a slot at 80 % carries 2.7 partitions, 4 slots 10.8: ceil(64 / 10) = 7.
  CHECK(d.desired == 7);
}

TEST_CASE("decision: a cold-start burst asks for the fewest pollers that run one slot per "
          "lagging partition",
          "[unit]") {
  auto p = policy(1, 8);
  p.max_concurrent_batches = 5;
  Scaler s(p);
  World w;
  w.partitions = 8;
  w.high = 16'000;
  // 160 batches of backlog on 8 lagging partitions: 8 slots; 2 pollers own 4 partitions
  // each and run all 4 at once (1 poller would run only 5 of its 8).
  auto d = s.decide(w.observe(1, 8));
  CHECK(d.desired == 2);
  CHECK(d.reason == Reason::kScaleUp);
}

TEST_CASE("decision: a partition faster than one slot gets a slot of its own: ceil(P / C) "
          "pollers, not P",
          "[unit]") {
  struct Case {
    int concurrent;
    int expected;
  };
  // C = 5: 4 pollers own 4 partitions each and run all 4 at once; C = 1: one each.
  auto c = GENERATE(Case{.concurrent = 5, .expected = 4}, Case{.concurrent = 1, .expected = 16},
                    Case{.concurrent = 3, .expected = 6});
  INFO("maxConcurrentBatches " << c.concurrent);
  auto p = policy(1, 100);
  p.max_concurrent_batches = c.concurrent;
  Scaler s(p);
  World w;
  w.partitions = 16;
  REQUIRE(s.decide(w.observe(1, 0)).desired == 1);
  // 16,000 records/s over 16 partitions: 1,000/s each, above what one slot drains at 80 %
  // (800/s). Batches of one partition never run in parallel: more slots than partitions
  // cannot help, so the pool stops at one slot per partition.
  w.now += 10s;
  w.high = 160'000;
  w.committed = 10'000;
  w.invocations = 100;
  w.invocation_seconds = 10.0;
  auto d = s.decide(w.observe(1, 16));
  CHECK(d.recommendation == c.expected);
  CHECK(d.desired == c.expected);
  CHECK(d.reason == Reason::kScaleUp);
}

TEST_CASE("decision: a burst on every partition keeps the cold start's one slot per partition "
          "once the capacity is known",
          "[unit]") {
  // aws-burst: 2,000,000 records on 100 partitions, 100 ms per batch of 100, C = 5.
  auto p = policy(1, 100);
  p.max_concurrent_batches = 5;
  Scaler s(p);
  World w;
  w.partitions = 100;
  w.high = 2'000'000;
  auto first = s.decide(w.observe(1, 100));
  // No capacity yet: 20,000 batches on 100 lagging partitions, 5 slots per poller.
  REQUIRE(first.desired == 20);
  REQUIRE(first.reason == Reason::kScaleUp);
  // Each later second the 20 pollers drain 100 slots x 1,000 records/s; the excess stays far
  // beyond what one slot per partition drains in the 10 s target, so carry < 1 throughout.
  for (int i = 0; i < 12; ++i) {
    w.now += 1s;
    w.committed += 100'000;
    w.invocations += 1000;
    w.invocation_seconds += 100.0;
    auto d = s.decide(w.observe(20, 100));
    INFO("t = " << i + 1 << " s");
    REQUIRE(d.per_poller);
    CHECK(d.recommendation == 20);
    CHECK(d.desired == 20);
  }
}

TEST_CASE("decision: after a change, scale-ups wait for the cooldown", "[unit]") {
  Scaler s(policy(1, 64));
  World w;
  w.partitions = 64;
  w.high = 1000;
  auto first = s.decide(w.observe(1));
  REQUIRE(first.desired == 10); // cold start: one poller per batch of backlog
  // The rebalance stalls the group; lag piles up. Within the cooldown it is not demand.
  for (int i = 1; i < 5; ++i) {
    w.now += 1s;
    w.high += 2000;
    auto d = s.decide(w.observe(10, 64));
    CHECK(d.desired == 10);
    CHECK(d.reason == Reason::kCoolingDown);
  }
  w.now += 1s;
  w.high += 2000;
  auto d = s.decide(w.observe(10, 64));
  CHECK(d.reason == Reason::kScaleUp);
  CHECK(d.desired > 10);
}

TEST_CASE("decision: scale-down waits for the stabilization window, then steps down", "[unit]") {
  Scaler s(policy(1, 8));
  World w;
  w.high = 20000;
  REQUIRE(s.decide(w.observe(1)).desired == 8);
  // Drained: lag gone, no ingest.
  w.now += 5s;
  w.committed = w.high;
  std::vector<int> desired;
  for (int i = 0; i < 20; ++i) {
    auto d = s.decide(w.observe(s.current()));
    desired.push_back(d.desired);
    if (w.now - t0 < 60s) {
      CHECK(d.desired == 8);
      CHECK(d.reason == Reason::kStabilizing);
    }
    w.now += 5s;
  }
  // After the window: bounded steps (at most half per evaluation) down to the minimum.
  CHECK(desired.back() == 1);
  for (size_t i = 1; i < desired.size(); ++i) {
    CHECK(desired[i] >= desired[i - 1] / 2);
  }
}

TEST_CASE("decision: a failed probe holds the last decision", "[unit]") {
  Scaler s(policy(1, 8));
  World w;
  w.high = 20000;
  REQUIRE(s.decide(w.observe(1)).desired == 8);
  for (int i = 0; i < 30; ++i) {
    w.now += 5s;
    Observation failed;
    failed.at = w.now;
    failed.probe_ok = false;
    auto d = s.decide(failed);
    CHECK(d.desired == 8);
    CHECK(d.reason == Reason::kProbeFailed);
  }
}

TEST_CASE("decision: does not flap on a steady load with noise", "[unit]") {
  Scaler s(policy(1, 64));
  World w;
  w.partitions = 64;
  std::mt19937 rng(42);
  std::normal_distribution<double> noise(1.0, 0.1);
  // A poller sends a batch of up to 100 records in 100 ms: 1000 records/s when busy.
  // Ingest ~3000/s: 4 pollers at 75 % utilisation.
  const double capacity = 1000;
  const double ingest = 3000;
  std::vector<int> history;
  for (int i = 0; i < 600; ++i) {
    int pollers = s.current();
    w.high += static_cast<std::int64_t>(ingest * noise(rng));
    std::int64_t backlog = w.high - w.committed;
    std::int64_t drained =
        std::min<std::int64_t>(backlog, static_cast<std::int64_t>(pollers * capacity));
    w.committed += drained;
    w.invocations += (drained + 99) / 100;
    w.invocation_seconds += static_cast<double>((drained + 99) / 100) * 0.1;
    w.now += 1s;
    history.push_back(
        s.decide(w.observe(pollers, std::min<std::int64_t>(64, w.high - w.committed))).desired);
  }
  // After the cold start and one stabilization window the count settles and stays.
  int changes = 0;
  for (size_t i = 121; i < history.size(); ++i) {
    changes += history[i] != history[i - 1] ? 1 : 0;
  }
  INFO("settled at " << history.back());
  CHECK(changes == 0);
  CHECK(history.back() == 4);
}

TEST_CASE("decision: a shrinking cap lowers the count at once", "[unit]") {
  Scaler s(policy(1, 8));
  World w;
  w.high = 20000;
  REQUIRE(s.decide(w.observe(1)).desired == 8);
  w.partitions = 3;
  w.now += 1s;
  auto d = s.decide(w.observe(8, 3));
  CHECK(d.desired == 3);
  CHECK(d.reason == Reason::kAboveCap);
}

TEST_CASE("decision: a trickle on a fast function asks for one poller (no int overflow)",
          "[unit]") {
  // 10,000-record batches in 1 ms: 10,000,000 records/s per slot; 0.1 record/s over 1,000
  // partitions: one slot carries 8e10 partitions, beyond an int (undefined behaviour in the
  // cast before it was capped at the partition count).
  auto p = policy(1, 1000);
  p.batch_size = 10'000;
  Scaler s(p);
  World w;
  w.partitions = 1000;
  REQUIRE(s.decide(w.observe(1, 0)).desired == 1);
  w.now += 10s;
  w.high = 1;
  w.invocations = 10'000;
  w.invocation_seconds = 10.0;
  auto d = s.decide(w.observe(1, 1));
  REQUIRE(d.per_poller);
  CHECK(*d.per_poller == Approx(10'000'000));
  CHECK(d.recommendation == 1);
  CHECK(d.desired == 1);
}
