// The mapping controller (scaler/controller.h) over fakes, driven by evaluate(): no thread, no
// socket, no Kafka.

#include "common/resources.h"
#include "scaler/controller.h"
#include "tests/fakes/scaler.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::scaler;
using namespace std::chrono_literals;

namespace {

struct Rig {
  explicit Rig(int running = 0, int partitions = 64) {
    mapping.name = "orders";
    mapping.source.topics = {"t"};
    mapping.scaling.minimum_pollers = 1;
    mapping.scaling.maximum_pollers = 100;
    pool_ = new fakes::FakeWorkerPool(running);
    lag_ = new fakes::FakeLagSource();
    lag_->steady = fakes::probeOk(fakes::lagSample(partitions, 0));
  }

  Controller& controller() {
    if (!controller_) {
      ControllerParts parts;
      parts.make_pool = [this](FatalSink& fatal) {
        sink = &fatal;
        return std::unique_ptr<WorkerPool>(pool_);
      };
      parts.lag_source = std::unique_ptr<LagSource>(lag_);
      parts.invocations = invocations;
      parts.clock = &clock;
      parts.registry = &registry;
      parts.probe = &probe;
      controller_ = std::make_unique<Controller>(mapping, std::move(parts));
    }
    return *controller_;
  }

  // Moves the clock one evaluation interval and evaluates.
  void tick() {
    clock.advance(mapping.scaling.evaluation_interval);
    controller().evaluate();
  }

  fakes::FakeWorkerPool& pool() { return *pool_; }
  fakes::FakeLagSource& lag() { return *lag_; }

  config::Mapping mapping;
  fakes::FakeClock clock;
  metrics::Registry registry;
  metrics::MappingProbe probe{registry, "orders"};
  std::shared_ptr<fakes::FakeInvocationStats> invocations =
      std::make_shared<fakes::FakeInvocationStats>();
  FatalSink* sink = nullptr;

private:
  fakes::FakeWorkerPool* pool_; // owned by the controller once built
  fakes::FakeLagSource* lag_;   // owned by the controller once built
  std::unique_ptr<Controller> controller_;
};

} // namespace

TEST_CASE("controller: started over 40 running pollers with no lag, it steps down gradually, "
          "not to the minimum at once",
          "[unit]") {
  Rig rig(40);
  rig.controller().start(Runner::kNone);
  REQUIRE(rig.pool().active() == 40); // start keeps what runs
  std::vector<int> counts{40};
  for (int i = 0; i < 60; ++i) {
    rig.tick();
    if (rig.pool().active() != counts.back()) {
      counts.push_back(rig.pool().active());
    }
  }
  // Held for the stabilization window (60 s), then at most half retired per evaluation.
  CHECK(counts == std::vector<int>{40, 20, 10, 5, 3, 2, 1});
  for (int asked : rig.pool().asked) {
    CHECK(asked >= 1);
  }
  CHECK(rig.probe.pollers_desired.Value() == 1);
  CHECK(rig.pool().shutdowns.empty());
}

TEST_CASE("controller: the first step down comes only after the stabilization window", "[unit]") {
  Rig rig(40);
  rig.controller().start(Runner::kNone);
  const auto window = rig.mapping.scaling.scale_down_stabilization;
  const auto interval = rig.mapping.scaling.evaluation_interval;
  rig.tick(); // the first evaluation: the 40 count as its recommendation
  const auto first = rig.clock.now();
  REQUIRE(rig.pool().active() == 40);
  while (rig.clock.now() + interval - first <= window) {
    rig.tick();
    REQUIRE(rig.pool().active() == 40);
  }
  rig.tick();
  CHECK(rig.pool().active() == 20);
}

TEST_CASE("controller: a fresh pool starts at the minimum", "[unit]") {
  Rig rig(0);
  rig.mapping.scaling.minimum_pollers = 3;
  rig.controller().start(Runner::kNone);
  CHECK(rig.pool().asked == std::vector<int>{3});
  CHECK(rig.pool().active() == 3);
  CHECK(rig.probe.pollers_desired.Value() == 3);
}

TEST_CASE("controller: a pool that cannot start the minimum fails start with its reason",
          "[unit]") {
  Rig rig(0);
  rig.mapping.scaling.minimum_pollers = 2;
  rig.pool().limit = 1;
  rig.pool().spawn_error = "no thread left";
  CHECK_THROWS_WITH(rig.controller().start(Runner::kNone), "no thread left");
}

TEST_CASE("controller: a fatal probe twice in a row disables the mapping and scales its pool "
          "to zero, without shutting it down",
          "[unit]") {
  Rig rig(0);
  rig.controller().start(Runner::kNone);
  rig.lag().script = {fakes::probeFailed("topic t does not exist", true),
                      fakes::probeOk(fakes::lagSample(64, 0)),
                      fakes::probeFailed("topic t does not exist", true),
                      fakes::probeFailed("topic t does not exist", true)};
  rig.tick();
  rig.tick();
  rig.tick();
  CHECK_FALSE(rig.controller().disabled());
  rig.tick();
  REQUIRE(rig.controller().disabled());
  CHECK(rig.controller().snapshot().disabled_reason == "topic t does not exist");
  CHECK(rig.probe.state_disabled.Value() == 1);
  CHECK(rig.probe.state_enabled.Value() == 0);
  // The next evaluation retires the pollers, and no later one spawns any.
  rig.tick();
  CHECK(rig.pool().active() == 0);
  CHECK(rig.pool().asked.back() == 0);
  const auto asked = rig.pool().asked.size();
  rig.tick();
  rig.tick();
  CHECK(rig.pool().asked.size() == asked);
  CHECK(rig.pool().shutdowns.empty());
  CHECK(rig.lag().probes == 7); // the lag is still probed and published
}

TEST_CASE("controller: a worker's fatal report disables the mapping", "[unit]") {
  Rig rig(0);
  rig.controller().start(Runner::kNone);
  REQUIRE(rig.sink != nullptr);
  rig.sink->reportFatal("the function answered 404");
  CHECK(rig.controller().disabled());
  CHECK(rig.controller().ready()); // a disabled mapping does not make kesm unready
  rig.tick();
  CHECK(rig.pool().active() == 0);
}

TEST_CASE("controller: stop shuts the pool down within the grace period plus 10 s", "[unit]") {
  Rig rig(0);
  rig.controller().start(Runner::kNone);
  CHECK(rig.controller().stop());
  REQUIRE(rig.pool().shutdowns.size() == 1);
  CHECK(rig.pool().shutdowns[0] == rig.mapping.scaling.grace_period + 10s);
  CHECK(rig.controller().stop()); // once
  CHECK(rig.pool().shutdowns.size() == 1);
}

TEST_CASE("controller: a failed probe holds the count and marks the lag stale", "[unit]") {
  Rig rig(0, 8);
  rig.controller().start(Runner::kNone);
  rig.lag().script = {fakes::probeOk(fakes::lagSample(8, 5000))};
  rig.tick();
  const int scaled = rig.pool().active();
  REQUIRE(scaled > 1); // the backlog scaled it up
  CHECK_FALSE(rig.controller().snapshot().lag_stale);
  CHECK(rig.controller().ready());
  rig.lag().steady = fakes::probeFailed("timed out", false);
  rig.tick();
  CHECK(rig.pool().active() == scaled);
  auto snap = rig.controller().snapshot();
  CHECK(snap.lag_stale);
  REQUIRE(snap.lag); // the last good sample stays for /status
  CHECK(snap.lag->total == 8 * 5000);
  CHECK(rig.probe.lag_stale.Value() == 1);
  CHECK(rig.probe.lag_probe_failures.Value() == 1);
  CHECK_FALSE(rig.controller().ready());
}

TEST_CASE("controller: the lag of each partition is published with its mapping and topic",
          "[unit]") {
  Rig rig(0, 2);
  rig.controller().start(Runner::kNone);
  rig.lag().script = {fakes::probeOk(fakes::lagSample(2, 7))};
  rig.tick();
  CHECK(rig.registry.offsetLag("orders", "t", 1).Value() == 7);
  CHECK(rig.probe.lag_total.Value() == 14);
  CHECK(rig.probe.lag_max.Value() == 7);
}

TEST_CASE("controller: a stopped controller withdraws its partition series and zeroes the "
          "lag, desired and state gauges, as a standby shows them",
          "[unit]") {
  Rig rig(0, 2);
  rig.controller().start(Runner::kNone);
  rig.lag().script = {fakes::probeOk(fakes::lagSample(2, 7))};
  rig.tick();
  REQUIRE(rig.registry.serialize().find("kesm_offset_lag{mapping=\"orders\"") != std::string::npos);
  REQUIRE(rig.probe.pollers_desired.Value() >= 1);
  rig.controller().stop();
  const std::string exposition = rig.registry.serialize();
  CHECK(exposition.find("kesm_offset_lag{") == std::string::npos);
  CHECK(exposition.find("kesm_partition_stalled_seconds{") == std::string::npos);
  CHECK(rig.probe.lag_total.Value() == 0);
  CHECK(rig.probe.lag_max.Value() == 0);
  CHECK(rig.probe.lag_stale.Value() == 0);
  CHECK(rig.probe.pollers_desired.Value() == 0);
  CHECK(rig.probe.state_enabled.Value() == 0);
  CHECK(rig.probe.state_disabled.Value() == 0);
  CHECK(rig.probe.pollers_min.Value() == 1); // the configuration stays
}
