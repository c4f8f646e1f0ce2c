// What the controller leaves in its StatusHistory (/status/history): a sample per evaluation
// and each change of the desired count with its reason. Over fakes, driven by evaluate().

#include "scaler/controller.h"
#include "tests/fakes/scaler.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::scaler;
using namespace std::chrono_literals;

TEST_CASE("controller history: start, a scale-up with what it saw, samples, and the disable",
          "[unit]") {
  config::Mapping mapping;
  mapping.name = "orders";
  mapping.source.topics = {"t"};
  mapping.scaling.minimum_pollers = 1;
  mapping.scaling.maximum_pollers = 8;
  fakes::FakeClock clock;
  metrics::Registry registry;
  metrics::MappingProbe probe{registry, "orders"};
  auto* pool = new fakes::FakeWorkerPool(0);
  auto* lag = new fakes::FakeLagSource();
  lag->steady = fakes::probeOk(fakes::lagSample(8, 0));
  auto history = std::make_shared<StatusHistory>();
  FatalSink* sink = nullptr;
  ControllerParts parts;
  parts.make_pool = [&](FatalSink& fatal) {
    sink = &fatal;
    return std::unique_ptr<WorkerPool>(pool);
  };
  parts.lag_source = std::unique_ptr<LagSource>(lag);
  parts.invocations = std::make_shared<fakes::FakeInvocationStats>();
  parts.clock = &clock;
  parts.registry = &registry;
  parts.probe = &probe;
  parts.history = history;
  Controller controller(mapping, std::move(parts));
  auto tick = [&] {
    clock.advance(mapping.scaling.evaluation_interval);
    controller.evaluate();
  };

  controller.start(Runner::kNone);
  auto snap = history->snapshot();
  REQUIRE(snap.decisions.size() == 1);
  CHECK(snap.decisions[0].from == 0);
  CHECK(snap.decisions[0].to == 1);
  CHECK(snap.decisions[0].reason == "start");
  CHECK(snap.samples.empty()); // samples come from evaluations

  tick(); // no lag: steady, a sample and no decision
  lag->steady = fakes::probeOk(fakes::lagSample(8, 5000));
  tick(); // a backlog on every partition: more pollers
  snap = history->snapshot();
  REQUIRE(snap.samples.size() == 2);
  CHECK(snap.samples[0].lag_total == 0);
  CHECK(snap.samples[0].desired == 1);
  CHECK(snap.samples[1].lag_total == 8 * 5000);
  CHECK(snap.samples[1].desired == pool->active());
  REQUIRE(snap.decisions.size() == 2);
  const auto& up = snap.decisions[1];
  CHECK(up.from == 1);
  CHECK(up.to == pool->active());
  CHECK(up.to > 1);
  CHECK(up.reason == "scale_up");
  CHECK(up.detail.rfind("lag 40000 on 8/8 partitions", 0) == 0);

  lag->steady = fakes::probeFailed("timed out", false);
  tick(); // a failed probe: a sample without lag, the count held
  snap = history->snapshot();
  REQUIRE(snap.samples.size() == 3);
  CHECK_FALSE(snap.samples[2].lag_total.has_value());
  CHECK(snap.decisions.size() == 2);

  REQUIRE(sink != nullptr);
  sink->reportFatal("the function answered 404");
  const int before = pool->active();
  tick(); // the pollers retire: a decision with the reason
  snap = history->snapshot();
  REQUIRE(snap.decisions.size() == 3);
  CHECK(snap.decisions[2].from == before);
  CHECK(snap.decisions[2].to == 0);
  CHECK(snap.decisions[2].reason == "disabled");
  CHECK(snap.decisions[2].detail == "the function answered 404");
  CHECK(snap.samples.back().desired == 0);
}
