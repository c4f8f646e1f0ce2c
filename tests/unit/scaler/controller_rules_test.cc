// The controller's pure rules (scaler/controller_rules.h).

#include "scaler/controller_rules.h"
#include "tests/fakes/scaler.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::scaler;
using namespace std::chrono_literals;

TEST_CASE("rules: policyOf takes the config's defaults, not ScalingPolicy's", "[unit]") {
  config::Mapping mapping; // every field at the config's default
  ScalingPolicy p = policyOf(mapping);
  CHECK(p.minimum_pollers == config::kDefaultMinimumPollers);
  CHECK(p.maximum_pollers == config::kDefaultMaximumPollers);
  CHECK(p.batch_size == config::kDefaultBatchSize);
  CHECK(p.max_concurrent_batches == config::kDefaultMaxConcurrentBatches);
  CHECK(p.scale_down_stabilization == mapping.scaling.scale_down_stabilization);
  // ScalingPolicy's own default (for tests and the simulator) differs; the product never
  // sees it.
  CHECK(ScalingPolicy{}.max_concurrent_batches != config::kDefaultMaxConcurrentBatches);
}

TEST_CASE("rules: policyOf carries every scaling setting of the mapping", "[unit]") {
  config::Mapping mapping;
  mapping.scaling.minimum_pollers = 3;
  mapping.scaling.maximum_pollers = 17;
  mapping.scaling.max_concurrent_batches = 9;
  mapping.scaling.scale_down_stabilization = 120s;
  mapping.batching.batch_size = 250;
  ScalingPolicy p = policyOf(mapping);
  CHECK(p.minimum_pollers == 3);
  CHECK(p.maximum_pollers == 17);
  CHECK(p.max_concurrent_batches == 9);
  CHECK(p.scale_down_stabilization == 120s);
  CHECK(p.batch_size == 250);
}

TEST_CASE("rules: an observation of a good probe carries its sums and the pool's count", "[unit]") {
  const Clock::time_point at = Clock::time_point{} + 42s;
  auto sample = fakes::lagSample(4, 30, 1000); // 3 lagging below: one partition caught up
  sample.partitions[3].lag = 0;
  sample.total = 90;
  sample.lagging_partitions = 3;
  Observation o = observationOf(at, fakes::probeOk(sample), 6, InvocationTotals{12, 3.5});
  CHECK(o.at == at);
  CHECK(o.probe_ok);
  CHECK(o.partitions == 4);
  CHECK(o.lagging_partitions == 3);
  CHECK(o.total_lag == 90);
  CHECK(o.high_watermark_sum == 4000);
  CHECK(o.committed_sum == 4000 - 90); // the consumed position: high watermarks minus lag
  CHECK(o.active_pollers == 6);
  CHECK(o.invocations == 12);
  CHECK(o.invocation_seconds == 3.5);
}

TEST_CASE("rules: an observation of a failed probe says so and keeps pool and invocations",
          "[unit]") {
  Observation o = observationOf(Clock::time_point{}, fakes::probeFailed("timed out", false), 5,
                                InvocationTotals{7, 1.0});
  CHECK_FALSE(o.probe_ok);
  CHECK(o.active_pollers == 5);
  CHECK(o.invocations == 7);
  CHECK(o.partitions == 0);
  CHECK(o.total_lag == 0);
}

TEST_CASE("rules: a fatal probe disables only when seen twice in a row", "[unit]") {
  struct Case {
    const char* name;
    std::vector<int> probes; // 0 ok, 1 failed (retriable), 2 failed fatally
    std::vector<bool> disable;
  };
  auto c = GENERATE(
      Case{.name = "one fatal probe", .probes = {2}, .disable = {false}},
      Case{.name = "two in a row", .probes = {2, 2}, .disable = {false, true}},
      Case{.name = "and after", .probes = {2, 2, 2}, .disable = {false, true, true}},
      Case{.name = "a good probe between", .probes = {2, 0, 2}, .disable = {false, false, false}},
      Case{.name = "a retriable failure between",
           .probes = {2, 1, 2, 2},
           .disable = {false, false, false, true}},
      Case{.name = "retriable failures never",
           .probes = {1, 1, 1},
           .disable = {false, false, false}});
  INFO(c.name);
  FatalProbes rule;
  for (std::size_t i = 0; i < c.probes.size(); ++i) {
    auto probe = c.probes[i] == 0 ? fakes::probeOk(fakes::lagSample(1, 0))
                                  : fakes::probeFailed("no such topic", c.probes[i] == 2);
    CHECK(rule.record(probe) == c.disable[i]);
  }
}
