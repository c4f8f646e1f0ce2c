// Leader election over a Lease: who leads, when a standby may take over, when a leader must
// stop, against a fake API server with real optimistic concurrency (tests/fakes/lease_store.h).

#include "k8s/leader_elector.h"
#include "tests/fakes/lease_store.h"
#include "tests/fakes/scaler.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::k8s;
using std::chrono::milliseconds;

namespace {

const ElectionTimings kTimings{milliseconds(15000), milliseconds(10000), milliseconds(2000)};

// One replica: its own clock (so replicas' clocks can differ) and its own client.
struct Replica {
  Replica(fakes::FakeLeaseServer& server, std::string id, ElectionTimings t = kTimings)
      : client(server), elector(client, std::move(id), t, clock) {}
  fakes::FakeLeaseClient client;
  fakes::FakeClock clock;
  LeaderElector elector;
};

void advance(std::initializer_list<Replica*> replicas, milliseconds d) {
  for (auto* r : replicas) {
    r->clock.advance(d);
  }
}

} // namespace

TEST_CASE("elector: the first replica creates the Lease and leads, the second stands by",
          "[unit]") {
  fakes::FakeLeaseServer server;
  Replica a(server, "a");
  Replica b(server, "b");
  CHECK(a.elector.step() == Role::kLeader);
  CHECK(b.elector.step() == Role::kStandby);
  REQUIRE(server.lease);
  CHECK(server.lease->holder == "a");
  CHECK(server.lease->lease_duration_seconds == 15);
  CHECK(server.lease->lease_transitions == 0);
  CHECK(b.elector.status().holder == "a");
  CHECK(b.elector.status().last_error.empty());
  CHECK(a.elector.status().transitions == 1);
  CHECK(a.elector.status().lease == "ns/kesm");
}

TEST_CASE("elector: a standby never takes over while the leader renews", "[unit]") {
  fakes::FakeLeaseServer server;
  Replica a(server, "a");
  Replica b(server, "b");
  REQUIRE(a.elector.step() == Role::kLeader);
  const std::string acquired = server.lease->acquire_time;
  for (int i = 0; i < 100; ++i) {
    advance({&a, &b}, kTimings.retry_period);
    CHECK(a.elector.step() == Role::kLeader);
    CHECK(b.elector.step() == Role::kStandby);
  }
  CHECK(server.lease->holder == "a");
  CHECK(server.lease->acquire_time == acquired); // a renewal keeps the acquire time
  CHECK(a.elector.status().transitions == 1);
}

TEST_CASE("elector: a standby takes over a Lease left unrenewed for the lease duration, on its "
          "own clock",
          "[unit]") {
  fakes::FakeLeaseServer server;
  Replica a(server, "a");
  Replica b(server, "b");
  REQUIRE(a.elector.step() == Role::kLeader);
  // b first sees the Lease 5 s later: its wait counts from then, whatever renewTime says.
  b.clock.advance(milliseconds(5000));
  REQUIRE(b.elector.step() == Role::kStandby);
  // a is killed: no more renewals.
  b.clock.advance(kTimings.lease_duration - milliseconds(1));
  CHECK(b.elector.step() == Role::kStandby);
  b.clock.advance(milliseconds(1));
  CHECK(b.elector.step() == Role::kLeader);
  CHECK(server.lease->holder == "b");
  CHECK(server.lease->lease_transitions == 1);
  CHECK(server.lease->acquire_time == server.lease->renew_time);
}

TEST_CASE("elector: a leader cut off from the API server stops at the renew deadline, before "
          "a standby may take over, and leads again when it is back",
          "[unit]") {
  fakes::FakeLeaseServer server;
  Replica a(server, "a");
  REQUIRE(a.elector.step() == Role::kLeader);
  const auto renewed_at = a.clock.now();
  CHECK(a.elector.status().valid_until == renewed_at + kTimings.renew_deadline);
  server.down = true;
  milliseconds elapsed{0};
  while (elapsed + kTimings.retry_period < kTimings.renew_deadline) {
    a.clock.advance(kTimings.retry_period);
    elapsed += kTimings.retry_period;
    CHECK(a.elector.step() == Role::kLeader);
  }
  a.clock.advance(kTimings.renew_deadline - elapsed);
  CHECK(a.elector.step() == Role::kStandby);
  CHECK(a.clock.now() - renewed_at < kTimings.lease_duration);
  CHECK(a.elector.status().last_error.find("connection refused") != std::string::npos);
  CHECK(a.elector.status().lease_errors > 0);
  CHECK_FALSE(a.elector.status().valid_until);
  server.down = false;
  a.clock.advance(kTimings.retry_period);
  CHECK(a.elector.step() == Role::kLeader); // still its own holder: no wait
  CHECK(a.elector.status().last_error.empty());
  CHECK(a.elector.status().transitions == 2);
}

TEST_CASE("elector: two replicas racing for a free Lease, exactly one wins", "[unit]") {
  fakes::FakeLeaseServer server;
  server.lease = LeaseRecord{"", 1, "", "", 3, "7"}; // released earlier
  server.version = 7;
  Replica a(server, "a");
  Replica b(server, "b");
  // Both read version 7, then both write: the second write carries a stale version.
  auto a_read = server.get();
  auto b_read = server.get();
  REQUIRE(a_read.lease->resource_version == b_read.lease->resource_version);
  CHECK(a.elector.step() == Role::kLeader);
  CHECK(b.elector.step() == Role::kStandby);
  CHECK(server.lease->holder == "a");
  CHECK(server.lease->lease_transitions == 4);
}

TEST_CASE("elector: a conflicting write never makes a leader", "[unit]") {
  fakes::FakeLeaseServer server;
  server.lease = LeaseRecord{"", 1, "", "", 0, "1"}; // free
  server.version = 1;
  // Someone else wrote between a's read and its write: simulate by a store that bumps the
  // version on every get.
  struct Racing final : public LeaseStore {
    explicit Racing(fakes::FakeLeaseServer& s) : s_(s) {}
    LeaseResult get() override {
      auto r = s_.get();
      s_.version++;
      s_.lease->resource_version = std::to_string(s_.version);
      return r;
    }
    LeaseResult create(const LeaseRecord& r) override { return s_.create(r); }
    LeaseResult update(const LeaseRecord& r) override { return s_.update(r); }
    std::string describe() const override { return "ns/kesm"; }
    fakes::FakeLeaseServer& s_;
  } racing(server);
  fakes::FakeClock clock;
  LeaderElector b(racing, "b", kTimings, clock);
  CHECK(b.step() == Role::kStandby);
  CHECK(b.status().last_error.find("409") != std::string::npos);
}

TEST_CASE("elector: a released Lease is taken at the standby's next try", "[unit]") {
  fakes::FakeLeaseServer server;
  Replica a(server, "a");
  Replica b(server, "b");
  REQUIRE(a.elector.step() == Role::kLeader);
  REQUIRE(b.elector.step() == Role::kStandby);
  a.elector.release();
  CHECK(a.elector.status().role == Role::kStandby);
  CHECK(server.lease->holder.empty());
  advance({&a, &b}, kTimings.retry_period);
  CHECK(b.elector.step() == Role::kLeader);
  CHECK(server.lease->holder == "b");
  // release by a standby writes nothing
  const int writes = server.writes;
  a.elector.release();
  CHECK(server.writes == writes);
}

TEST_CASE("elector: a leader that finds another holder steps down at once", "[unit]") {
  fakes::FakeLeaseServer server;
  Replica a(server, "a");
  Replica b(server, "b");
  REQUIRE(a.elector.step() == Role::kLeader);
  REQUIRE(b.elector.step() == Role::kStandby);
  // a stalls (a long GC pause, a frozen VM) past the lease duration; b takes over.
  b.clock.advance(kTimings.lease_duration);
  REQUIRE(b.elector.step() == Role::kLeader);
  // a wakes within its own renew deadline (its clock was frozen too).
  a.clock.advance(milliseconds(1));
  CHECK(a.elector.step() == Role::kStandby);
  CHECK(a.elector.status().holder == "b");
  CHECK(server.lease->holder == "b");
}

TEST_CASE("elector: a refused call is an error, not leadership", "[unit]") {
  struct Refusing final : public LeaseStore {
    LeaseResult get() override { return {LeaseOutcome::kForbidden, std::nullopt, "403 forbidden"}; }
    LeaseResult create(const LeaseRecord&) override { return get(); }
    LeaseResult update(const LeaseRecord&) override { return get(); }
    std::string describe() const override { return "ns/kesm"; }
  } refusing;
  fakes::FakeClock clock;
  LeaderElector e(refusing, "a", kTimings, clock);
  CHECK(e.step() == Role::kStandby);
  CHECK(e.status().last_error == "get: 403 forbidden");
  CHECK(e.status().lease_errors == 1);
}
