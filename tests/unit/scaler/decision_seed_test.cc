// The Scaler starts from the count that runs (Observation::active_pollers at its first
// decision), not from the minimum.

#include "scaler/decision.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::scaler;
using namespace std::chrono_literals;

namespace {

Observation idle(Clock::time_point at, int active) {
  Observation o;
  o.at = at;
  o.partitions = 64;
  o.high_watermark_sum = 6400;
  o.committed_sum = 6400;
  o.active_pollers = active;
  return o;
}

} // namespace

TEST_CASE("decision seed: over 40 running pollers and no lag, it keeps them for the "
          "stabilization window, then halves at most per evaluation",
          "[unit]") {
  ScalingPolicy p;
  p.minimum_pollers = 1;
  p.maximum_pollers = 100;
  p.scale_down_stabilization = 60s;
  p.max_scale_down_fraction = 0.5;
  Scaler s(p);
  Clock::time_point now{};
  auto d = s.decide(idle(now, 40));
  CHECK(d.desired == 40);
  CHECK(d.reason == Reason::kStabilizing);
  int current = 40;
  std::vector<int> counts;
  for (int i = 0; i < 60 && current > 1; ++i) {
    now += 5s;
    d = s.decide(idle(now, current));
    if (now < Clock::time_point{} + 60s) {
      REQUIRE(d.desired == 40); // within the window the seed holds
    }
    REQUIRE(d.desired >= current - current / 2);
    if (d.desired != current) {
      counts.push_back(d.desired);
    }
    current = d.desired;
  }
  CHECK(current == 1);
  CHECK(counts == std::vector<int>{20, 10, 5, 3, 2, 1});
}

TEST_CASE("decision seed: below the minimum at the start, it raises to the minimum", "[unit]") {
  ScalingPolicy p;
  p.minimum_pollers = 2;
  Scaler s(p);
  auto d = s.decide(idle(Clock::time_point{}, 0));
  CHECK(d.desired == 2);
  CHECK(d.reason == Reason::kBelowMinimum);
}

TEST_CASE("decision seed: only the first observation sets the count", "[unit]") {
  ScalingPolicy p;
  p.minimum_pollers = 1;
  Scaler s(p);
  Clock::time_point now{};
  REQUIRE(s.decide(idle(now, 1)).desired == 1);
  // A pool that reports more later (a poller not yet reaped) does not move the decision.
  now += 5s;
  CHECK(s.decide(idle(now, 7)).desired == 1);
}
