// The pods pool (k8s/statefulset_pool.h) over a fake scale client: when it writes, what it
// holds and retries, what it logs, what shutdown leaves; and a real Controller over it (its
// first decision starts from the replicas that run). The real API server's side is in
// tests/k8s/statefulset_scale_test.cc.

#include "k8s/statefulset_pool.h"
#include "scaler/controller.h"
#include "tests/fakes/scale_client.h"
#include "tests/fakes/scaler.h"

#include <algorithm>
#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::k8s;
using namespace std::chrono_literals;
using fakes::FakeScaleClient;

namespace {

struct Line {
  LogLevel level;
  std::string text;
};

struct PoolRig {
  FakeScaleClient::Server server;
  metrics::Registry registry;
  metrics::ScaleProbe probe{registry, "orders"};
  std::vector<Line> lines;
  std::unique_ptr<StatefulSetPool> pool;

  explicit PoolRig(int spec = 0, int pods = 0, int max_replicas = 100) {
    server.spec = spec;
    server.pods = pods;
    pool = std::make_unique<StatefulSetPool>(
        std::make_unique<FakeScaleClient>(server),
        StatefulSetPoolOptions{.mapping = "orders",
                               .max_replicas = max_replicas,
                               .probe = &probe,
                               .log = [this](LogLevel level, const std::string& text) {
                                 lines.push_back({level, text});
                               }});
  }

  int count(LogLevel level) const {
    return static_cast<int>(
        std::count_if(lines.begin(), lines.end(), [&](const Line& l) { return l.level == level; }));
  }
  int sets() const {
    return static_cast<int>(
        std::count_if(server.calls.begin(), server.calls.end(),
                      [](const std::string& c) { return c.rfind("set", 0) == 0; }));
  }
  double writes(const char* outcome) { return probe.writes(outcome).Value(); }
};

} // namespace

TEST_CASE("pods pool: seed reads the replicas that run and writes nothing", "[unit]") {
  PoolRig rig(6, 6);
  const auto seeded = rig.pool->seed();
  CHECK(seeded.ok());
  CHECK(seeded.active == 6);
  CHECK(rig.server.calls == std::vector<std::string>{"get"});
  const auto s = rig.pool->status();
  CHECK(s.active == 6);
  CHECK(s.running == 6);
  CHECK(s.spawn_error.empty());
}

TEST_CASE("pods pool: a failed seed says why and reports nothing running", "[unit]") {
  PoolRig rig(6, 6);
  rig.server.get_failures = {ScaleOutcome::kForbidden};
  const auto seeded = rig.pool->seed();
  CHECK_FALSE(seeded.ok());
  CHECK_THAT(seeded.error, Catch::Contains("could not be read") && Catch::Contains("forbidden"));
  CHECK(seeded.active == 0);
  CHECK(rig.count(LogLevel::kWarn) == 1);
  CHECK(rig.probe.reads("forbidden").Value() == 1);
}

TEST_CASE("pods pool: a changed count is written once, an unchanged one only re-reads", "[unit]") {
  PoolRig rig(1, 1);
  REQUIRE(rig.pool->seed().ok());
  auto r = rig.pool->scaleTo(3);
  CHECK(r.ok());
  CHECK(r.active == 3);
  CHECK(rig.server.spec == 3);
  r = rig.pool->scaleTo(3);
  r = rig.pool->scaleTo(3);
  CHECK(r.ok());
  CHECK(rig.sets() == 1);
  CHECK(rig.server.calls == std::vector<std::string>{"get", "set 3", "get", "get"});
  CHECK(rig.writes("ok") == 1);
  CHECK(rig.probe.reads("ok").Value() == 3);
  CHECK(rig.probe.write_pending.Value() == 0);
}

TEST_CASE("pods pool: a failed write holds the count and is retried at the next scaleTo, even "
          "with the same decision, logged once per episode",
          "[unit]") {
  PoolRig rig(1, 1);
  REQUIRE(rig.pool->seed().ok());
  rig.server.set_failures = {ScaleOutcome::kForbidden, ScaleOutcome::kForbidden,
                             ScaleOutcome::kTimeout};
  auto r = rig.pool->scaleTo(4);
  CHECK_FALSE(r.ok());
  CHECK(r.active == 1); // what runs: the pods were left alone
  CHECK_THAT(r.error, Catch::Contains("forbidden"));
  CHECK(rig.pool->status().spawn_error == r.error);
  CHECK(rig.pool->pendingWrite() == 4);
  CHECK(rig.probe.write_pending.Value() == 1);
  CHECK(rig.count(LogLevel::kError) == 1);
  CHECK_THAT(rig.lines.back().text, Catch::Contains("holding at 1 replica(s), cannot set 4 "
                                                    "(forbidden)"));

  r = rig.pool->scaleTo(4); // the same decision: still written again
  CHECK_FALSE(r.ok());
  CHECK(rig.count(LogLevel::kError) == 1); // same episode, same reason: not logged again
  r = rig.pool->scaleTo(4);
  CHECK_FALSE(r.ok());
  CHECK(rig.count(LogLevel::kError) == 2); // the reason changed: timeout
  CHECK_THAT(rig.lines.back().text, Catch::Contains("(timeout)"));

  r = rig.pool->scaleTo(4);
  CHECK(r.ok());
  CHECK(r.active == 4);
  CHECK(rig.server.spec == 4);
  CHECK(rig.sets() == 4);
  CHECK_FALSE(rig.pool->pendingWrite());
  CHECK(rig.pool->status().spawn_error.empty());
  CHECK(rig.probe.write_pending.Value() == 0);
  CHECK_THAT(rig.lines.back().text, Catch::Contains("set to 4 after 3 failed write(s)"));
  CHECK(rig.writes("forbidden") == 2);
  CHECK(rig.writes("timeout") == 1);
  CHECK(rig.writes("ok") == 1);
}

TEST_CASE("pods pool: a held count is never lost when the decision changes meanwhile", "[unit]") {
  PoolRig rig(2, 2);
  REQUIRE(rig.pool->seed().ok());
  rig.server.set_failures = {ScaleOutcome::kServerError};
  CHECK_FALSE(rig.pool->scaleTo(6).ok());
  CHECK(rig.pool->scaleTo(5).ok()); // the newest decision is what gets written
  CHECK(rig.server.spec == 5);
  CHECK(rig.server.calls == std::vector<std::string>{"get", "set 6", "set 5"});
}

TEST_CASE("pods pool: a count changed outside kesm is set back and logged", "[unit]") {
  PoolRig rig(3, 3);
  REQUIRE(rig.pool->seed().ok());
  rig.server.spec = 9; // kubectl scale --replicas=9
  const auto r = rig.pool->scaleTo(3);
  CHECK(r.ok());
  CHECK(rig.server.spec == 3);
  CHECK(rig.server.calls == std::vector<std::string>{"get", "get", "set 3"});
  REQUIRE(rig.count(LogLevel::kWarn) == 1);
  const auto warn = std::find_if(rig.lines.begin(), rig.lines.end(),
                                 [](const Line& l) { return l.level == LogLevel::kWarn; });
  CHECK_THAT(warn->text, Catch::Contains("changed outside kesm: 3 -> 9"));
}

TEST_CASE("pods pool: never writes before it has read the count", "[unit]") {
  PoolRig rig(5, 5);
  rig.server.get_failures = {ScaleOutcome::kUnreachable, ScaleOutcome::kUnreachable};
  auto r = rig.pool->scaleTo(1);
  CHECK_FALSE(r.ok());
  CHECK(r.active == 0);
  r = rig.pool->scaleTo(1);
  CHECK_FALSE(r.ok());
  CHECK(rig.sets() == 0);
  CHECK(rig.server.spec == 5);
  CHECK(rig.pool->pendingWrite() == 1);
  CHECK(rig.count(LogLevel::kWarn) == 1);  // the read failure, once
  CHECK(rig.count(LogLevel::kError) == 1); // the held count, once
  CHECK(rig.writes("unreachable") == 0);   // nothing was sent to be refused
  CHECK(rig.probe.reads("unreachable").Value() == 2);
  r = rig.pool->scaleTo(1);
  CHECK(r.ok());
  CHECK(rig.server.spec == 1);
}

TEST_CASE("pods pool: a count out of range is refused before sending", "[unit]") {
  PoolRig rig(1, 1, /*max_replicas=*/10);
  REQUIRE(rig.pool->seed().ok());
  for (int bad : {-1, 11}) {
    INFO(bad);
    const auto r = rig.pool->scaleTo(bad);
    CHECK_FALSE(r.ok());
    CHECK_THAT(r.error, Catch::Contains("refused before sending: from 0 to 10"));
  }
  CHECK(rig.sets() == 0);
  CHECK(rig.writes("invalid") == 2);
  CHECK_FALSE(rig.pool->pendingWrite()); // not held: nothing valid to write
  CHECK(rig.probe.write_pending.Value() == 0);
  CHECK(rig.pool->scaleTo(10).ok());
}

TEST_CASE("pods pool: a missing StatefulSet is not_found, nothing runs, and it is written once "
          "it exists",
          "[unit]") {
  PoolRig rig(2, 2);
  rig.server.exists = false;
  CHECK_FALSE(rig.pool->seed().ok());
  auto r = rig.pool->scaleTo(2);
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.error, Catch::Contains("not_found"));
  CHECK(rig.pool->status().active == 0);
  rig.server.exists = true;
  r = rig.pool->scaleTo(3);
  CHECK(r.ok());
  CHECK(rig.server.spec == 3);
}

TEST_CASE("pods pool: shutdown returns at once and leaves the replicas alone", "[unit]") {
  PoolRig rig(4, 4);
  REQUIRE(rig.pool->seed().ok());
  const auto calls = rig.server.calls.size();
  const auto start = std::chrono::steady_clock::now();
  CHECK(rig.pool->shutdown(40s));
  CHECK(std::chrono::steady_clock::now() - start < 1s);
  CHECK(rig.server.calls.size() == calls);
  const auto r = rig.pool->scaleTo(0); // a late call writes nothing either
  CHECK_FALSE(r.ok());
  CHECK(r.active == 4);
  CHECK(rig.server.spec == 4);
  CHECK(rig.server.calls.size() == calls);
  CHECK_THAT(rig.lines.back().text, Catch::Contains("keeps its 4 replica(s)"));
}

TEST_CASE("pods pool: status derives the pods from spec and status replicas", "[unit]") {
  struct Case {
    int spec;
    int pods;
    int running;
    int stopping;
    std::vector<scaler::WorkerState> states;
  };
  using W = scaler::WorkerState;
  auto c = GENERATE(Case{3, 1, 1, 0, {W::kRunning, W::kStarting, W::kStarting}},
                    Case{1, 3, 1, 2, {W::kRunning, W::kStopping, W::kStopping}},
                    Case{2, 2, 2, 0, {W::kRunning, W::kRunning}}, Case{0, 0, 0, 0, {}});
  PoolRig rig(c.spec, c.pods);
  REQUIRE(rig.pool->seed().ok());
  const auto s = rig.pool->status();
  CHECK(s.active == c.spec);
  CHECK(s.running == c.running);
  CHECK(s.stopping == c.stopping);
  REQUIRE(s.pollers.size() == c.states.size());
  for (std::size_t i = 0; i < c.states.size(); ++i) {
    CHECK(s.pollers[i].id == "pollers-" + std::to_string(i));
    CHECK(s.pollers[i].state == c.states[i]);
  }
}

// The real controller over this pool: what `kesm controller` will do, minus the API server.
TEST_CASE("pods pool: a controller started over 8 running replicas keeps them, and a write it "
          "could not make is made once the API server accepts it",
          "[unit]") {
  FakeScaleClient::Server server;
  server.spec = 8;
  server.pods = 8;
  config::Mapping mapping;
  mapping.name = "orders";
  mapping.source.topics = {"t"};
  mapping.scaling.minimum_pollers = 1;
  mapping.scaling.maximum_pollers = 16;
  fakes::FakeClock clock;
  metrics::Registry registry;
  metrics::MappingProbe probe{registry, "orders"};
  auto* lag = new fakes::FakeLagSource();
  lag->steady = fakes::probeOk(fakes::lagSample(16, 0));
  StatefulSetPool* pool = nullptr;
  scaler::ControllerParts parts;
  parts.make_pool = [&](scaler::FatalSink&) {
    auto p = std::make_unique<StatefulSetPool>(
        std::make_unique<FakeScaleClient>(server),
        StatefulSetPoolOptions{.mapping = "orders", .max_replicas = 16, .log = [](auto, auto&) {}});
    REQUIRE(p->seed().ok()); // what the lead's wiring must do before start
    pool = p.get();
    return std::unique_ptr<scaler::WorkerPool>(std::move(p));
  };
  parts.lag_source = std::unique_ptr<scaler::LagSource>(lag);
  parts.invocations = std::make_shared<fakes::FakeInvocationStats>();
  parts.clock = &clock;
  parts.registry = &registry;
  parts.probe = &probe;
  scaler::Controller controller(mapping, std::move(parts));
  controller.start(scaler::Runner::kNone);
  auto tick = [&] {
    clock.advance(mapping.scaling.evaluation_interval);
    controller.evaluate();
  };
  CHECK(server.spec == 8); // rule 7: no resize by itself
  CHECK(controller.snapshot().desired == 8);
  tick();
  CHECK(server.spec == 8); // held for the stabilization window
  // Past the window it steps down; the API server refuses the first two writes.
  server.set_failures = {ScaleOutcome::kForbidden, ScaleOutcome::kForbidden};
  for (int i = 0; i < 20 && server.set_failures.size() == 2; ++i) {
    tick();
  }
  REQUIRE(server.set_failures.size() == 1); // the first write was refused
  CHECK(server.spec == 8);
  const int held = controller.snapshot().desired;
  CHECK(held < 8);
  CHECK_FALSE(controller.snapshot().pool.spawn_error.empty());
  tick(); // refused again; the controller's decision may go on moving
  CHECK(server.spec == 8);
  tick(); // accepted: the newest decision is written
  CHECK(server.spec == controller.snapshot().desired);
  CHECK(server.spec < 8);
  CHECK(controller.snapshot().pool.spawn_error.empty());
  const auto sets_before_stop = server.calls.size();
  const int spec_at_stop = server.spec;
  CHECK(controller.stop());
  CHECK(server.spec == spec_at_stop); // stopping the controller leaves the pods
  CHECK(server.calls.size() == sets_before_stop);
  CHECK(pool != nullptr);
}

TEST_CASE("pods pool: with 4 pollers per pod it writes ceil(pollers / 4) replicas and counts "
          "pollers",
          "[unit]") {
  FakeScaleClient::Server server;
  server.spec = 2;
  server.pods = 3; // one pod still stopping
  StatefulSetPool pool(
      std::make_unique<FakeScaleClient>(server),
      StatefulSetPoolOptions{
          .mapping = "orders", .max_replicas = 5, .pollers_per_pod = 4, .log = [](auto, auto&) {}});
  CHECK(pool.seed().active == 8);
  auto s = pool.status();
  CHECK(s.active == 8);
  CHECK(s.running == 8);
  CHECK(s.stopping == 4);
  CHECK(s.pollers.size() == 3); // one entry per pod
  CHECK(pool.scaleTo(9).active == 12);
  CHECK(server.spec == 3);
  CHECK(pool.scaleTo(12).ok());
  CHECK(server.spec == 3); // 12 pollers still fit 3 pods: nothing written
  CHECK(pool.scaleTo(1).active == 4);
  CHECK(server.spec == 1);
  CHECK(pool.scaleTo(0).active == 0);
  CHECK(server.spec == 0);
  // max_replicas counts pods: 20 pollers are 5 pods, 21 would be 6.
  CHECK(pool.scaleTo(20).ok());
  CHECK(server.spec == 5);
  CHECK_FALSE(pool.scaleTo(21).ok());
  CHECK(server.spec == 5);
}

TEST_CASE("pods pool: a controller whose first write is refused starts all the same, holds and "
          "is ready on the lag alone",
          "[unit]") {
  FakeScaleClient::Server server; // a new StatefulSet at 0: the minimum must be written
  config::Mapping mapping;
  mapping.name = "orders";
  mapping.source.topics = {"t"};
  mapping.scaling.minimum_pollers = 2;
  mapping.scaling.maximum_pollers = 4;
  fakes::FakeClock clock;
  metrics::Registry registry;
  metrics::MappingProbe probe{registry, "orders"};
  auto* lag = new fakes::FakeLagSource();
  lag->steady = fakes::probeOk(fakes::lagSample(4, 0));
  server.set_failures = {ScaleOutcome::kForbidden};
  scaler::ControllerParts parts;
  parts.make_pool = [&](scaler::FatalSink&) {
    auto p = std::make_unique<StatefulSetPool>(
        std::make_unique<FakeScaleClient>(server),
        StatefulSetPoolOptions{.mapping = "orders", .max_replicas = 4, .log = [](auto, auto&) {}});
    REQUIRE(p->seed().ok());
    return std::unique_ptr<scaler::WorkerPool>(std::move(p));
  };
  parts.lag_source = std::unique_ptr<scaler::LagSource>(lag);
  parts.invocations = std::make_shared<fakes::FakeInvocationStats>();
  parts.clock = &clock;
  parts.registry = &registry;
  parts.probe = &probe;
  parts.remote_workers = true;
  scaler::Controller controller(mapping, std::move(parts));
  REQUIRE_NOTHROW(controller.start(scaler::Runner::kNone)); // threads would throw here
  CHECK(server.spec == 0);
  CHECK_FALSE(controller.snapshot().pool.spawn_error.empty());
  clock.advance(mapping.scaling.evaluation_interval);
  controller.evaluate();
  CHECK(server.spec == 2);   // the held minimum, written at the next evaluation
  CHECK(controller.ready()); // no pod has started (status.replicas 0), the lag is known
  CHECK(controller.snapshot().pool.running == 0);
}
