// The live line of `kesm top`, `kesm run --live` and `kesm demo`: parsed from /status
// documents (fixtures as kesm writes them, and documents rendered by app/status.h itself so
// the reader cannot drift from the writer) and formatted.

#include "app/live_line.h"
#include "app/status.h"
#include "app/top.h"

#include <catch2/catch.hpp>
#include <string>

using namespace kesm;
using namespace kesm::app;

namespace {

// A /status of kesm 0.x with leader election off: one mapping draining a burst.
constexpr const char* kDraining = R"({"mappings":[{"name":"orders","state":"Enabled",
 "topics":["orders"],"consumerGroupId":"kesm-orders",
 "pollers":{"desired":8,"active":8,"running":5,"stopping":1,"minimum":1,"maximum":8,
  "workers":[{"id":"orders-1","state":"running","partitions":2}]},
 "lag":{"stale":false,"total":15700,"max":2000,"partitions":[
  {"topic":"orders","partition":0,"lag":2000,"highWatermark":5000,"committed":3000,
   "stalledSince":null,"stalledSeconds":0}]},
 "events":{"polled":7000,"invoked":6900,"failedInvoke":12,"committed":6800}}]})";

// A mapping disabled by a fatal error, beside one that runs.
constexpr const char* kDisabled = R"({"mappings":[
 {"name":"payments","state":"Disabled","stateReason":"topic 'payments' does not exist",
  "topics":["payments"],"consumerGroupId":"kesm-payments",
  "pollers":{"desired":0,"active":0,"running":0,"stopping":0,"minimum":1,"maximum":4,
   "workers":[]},"lag":{"stale":true},
  "events":{"polled":0,"invoked":0,"failedInvoke":0,"committed":0}},
 {"name":"orders","state":"Enabled","topics":["orders"],"consumerGroupId":"g",
  "pollers":{"desired":1,"active":1,"running":1,"stopping":0,"minimum":1,"maximum":8,
   "workers":[]},"lag":{"stale":false,"total":0,"max":0,"partitions":[]},
  "events":{"polled":10,"invoked":10,"failedInvoke":0,"committed":10}}]})";

// A replica standing by (leader election on).
constexpr const char* kStandby = R"({"leaderElection":{"role":"standby","identity":"kesm-b",
 "lease":"kesm","holder":"kesm-a","termSecondsLeft":null,"transitions":0,"leaseErrors":0,
 "lastError":""},
 "mappings":[{"name":"orders","state":"Standby",
  "stateReason":"standing by: the Lease kesm is held by kesm-a","consumerGroupId":"g",
  "pollers":{"desired":0,"active":0,"running":0,"stopping":0,"minimum":1,"maximum":8,
   "workers":[]},"events":{"polled":0,"invoked":0,"failedInvoke":0,"committed":0}}]})";

// The leader of the same pair.
constexpr const char* kLeader = R"({"leaderElection":{"role":"leader","identity":"kesm-a",
 "lease":"kesm","holder":"kesm-a","termSecondsLeft":12.5,"transitions":1,"leaseErrors":0,
 "lastError":""},
 "mappings":[{"name":"orders","state":"Enabled","consumerGroupId":"g",
  "pollers":{"desired":2,"active":2,"running":2,"stopping":0,"minimum":1,"maximum":8,
   "workers":[]},"lag":{"stale":false,"total":40,"max":30,"partitions":[]},
  "events":{"polled":500,"invoked":500,"failedInvoke":0,"committed":480}}]})";

config::Mapping mappingNamed(const std::string& name, int partitions_topic_count = 1) {
  config::Mapping m;
  m.name = name;
  for (int i = 0; i < partitions_topic_count; ++i) {
    m.source.topics.push_back(name + (i ? std::to_string(i) : ""));
  }
  m.source.consumer_group_id = "kesm-" + name;
  m.scaling.minimum_pollers = 1;
  m.scaling.maximum_pollers = 16;
  return m;
}

} // namespace

TEST_CASE("live line: a mapping draining a burst, from a /status fixture", "[unit]") {
  const auto status = parseLiveStatus(kDraining);
  CHECK(status.role.empty());
  REQUIRE(status.mappings.size() == 1);
  const auto& m = status.mappings[0];
  CHECK(m.name == "orders");
  CHECK(m.state == LiveMapping::State::kEnabled);
  CHECK(m.desired == 8);
  CHECK(m.active == 8);
  CHECK(m.running == 5);
  CHECK(m.stopping == 1);
  CHECK(m.lag_total == 15700);
  CHECK(m.lag_max == 2000);
  CHECK_FALSE(m.lag_stale);
  CHECK(m.committed == 6800);
  CHECK(m.failed == 12);
  CHECK(liveLine(m, 2500.4) == "orders: lag 15700 (max 2000) | pollers desired 8, running 5, 3 "
                               "starting, 1 retiring | 2500 events/s | committed 6800, failed "
                               "records 12");
  // The first sample of `kesm top` has no rate yet.
  CHECK(liveLine(m, std::nullopt).find(" | - events/s | ") != std::string::npos);
}

TEST_CASE("live line: a disabled mapping shows its reason, the others their lag", "[unit]") {
  const auto status = parseLiveStatus(kDisabled);
  REQUIRE(status.mappings.size() == 2);
  CHECK(status.mappings[0].state == LiveMapping::State::kDisabled);
  CHECK(liveLine(status.mappings[0], 0.0) == "payments: DISABLED: topic 'payments' does not exist");
  CHECK(liveLine(status.mappings[1], 0.0) == "orders: lag 0 (max 0) | pollers desired 1, "
                                             "running 1 | 0 events/s | committed 10, failed "
                                             "records 0");
}

TEST_CASE("live line: leader election shows the standby's reason and the leader's role", "[unit]") {
  const auto standby = parseLiveStatus(kStandby);
  CHECK(standby.role == "standby");
  REQUIRE(standby.mappings.size() == 1);
  CHECK(standby.mappings[0].state == LiveMapping::State::kStandby);
  CHECK(liveLine(standby.mappings[0], 0.0) ==
        "orders: standing by: the Lease kesm is held by kesm-a");

  const auto leader = parseLiveStatus(kLeader);
  CHECK(leader.role == "leader");
  CHECK(liveLine(leader.mappings[0], 12.0, leader.role) ==
        "orders: lag 40 (max 30) | pollers desired 2, running 2 | 12 events/s | committed 480, "
        "failed records 0 | leader");
}

TEST_CASE("live line: before the first probe the lag is 0 and STALE", "[unit]") {
  const auto status = parseLiveStatus(
      R"({"mappings":[{"name":"a","state":"Enabled","pollers":{"desired":1,"active":1,
      "running":0,"stopping":0},"lag":{"stale":true},"events":{"committed":0}}]})");
  CHECK(liveLine(status.mappings.at(0), std::nullopt) ==
        "a: lag STALE 0 (max 0) | pollers desired 1, running 0, 1 starting | - events/s | "
        "committed 0, failed records 0");
}

TEST_CASE("live line: what app/status.h writes reads back, many partitions included", "[unit]") {
  const auto wall = std::chrono::system_clock::now();
  const auto steady = Clock::time_point{} + std::chrono::hours(1);

  SECTION("an enabled mapping with 200 partitions over two topics, one stalled") {
    auto mapping = mappingNamed("wide", 2);
    scaler::ControllerSnapshot s;
    s.desired = 6;
    s.pool.active = 5;
    s.pool.running = 4;
    s.pool.stopping = 2;
    s.lag_stale = false;
    scaler::LagSample lag;
    for (int p = 0; p < 200; ++p) {
      scaler::PartitionLag pl;
      pl.tp = TopicPartition{p < 100 ? "wide" : "wide1", Partition(p % 100)};
      pl.high = 1000;
      pl.committed = 1000 - p;
      pl.lag = p;
      lag.partitions.push_back(pl);
      lag.total += p;
      lag.max = std::max<std::int64_t>(lag.max, p);
      s.stalled_since[pl.tp] =
          p == 199 ? std::optional(steady - std::chrono::seconds(90)) : std::nullopt;
    }
    s.lag = lag;
    const std::string json =
        "{\"mappings\":[" +
        mappingStatusJson(mapping, s, {}, EventCounts{5000, 4990, 7, 4900}, steady, wall) + "]}";
    const auto status = parseLiveStatus(json);
    REQUIRE(status.mappings.size() == 1);
    CHECK(liveLine(status.mappings[0], 321.0) ==
          "wide: lag 19900 (max 199) | pollers desired 6, running 4, 1 starting, 2 retiring | "
          "321 events/s | committed 4900, failed records 7");
  }

  SECTION("a disabled mapping") {
    auto mapping = mappingNamed("gone");
    scaler::ControllerSnapshot s;
    s.disabled = true;
    s.disabled_reason = "function answered 403 \"forbidden\"\n(twice)";
    const std::string json =
        "{\"mappings\":[" + mappingStatusJson(mapping, s, {}, EventCounts{}, steady, wall) + "]}";
    const auto status = parseLiveStatus(json);
    CHECK(liveLine(status.mappings.at(0), 0.0) ==
          "gone: DISABLED: function answered 403 \"forbidden\" (twice)");
  }

  SECTION("a standby replica") {
    auto mapping = mappingNamed("quiet");
    k8s::ElectionStatus election;
    election.identity = "kesm-b";
    election.lease = "kesm";
    election.holder = "kesm-a";
    const std::string json =
        "{\"leaderElection\":" + leaderStatusJson(election, false, steady) + ",\"mappings\":[" +
        standbyStatusJson(mapping, "standing by: the Lease kesm is held by kesm-a",
                          EventCounts{1, 1, 0, 1}) +
        "]}";
    const auto status = parseLiveStatus(json);
    CHECK(status.role == "standby");
    CHECK(liveLine(status.mappings.at(0), 0.0) ==
          "quiet: standing by: the Lease kesm is held by kesm-a");
  }
}

TEST_CASE("live line: a hostile name or reason cannot move the cursor or break the line",
          "[unit]") {
  LiveMapping m;
  m.name = "a\x1b[2Jb";
  m.state = LiveMapping::State::kDisabled;
  m.reason = "x\r\ny\x7f";
  CHECK(liveLine(m, 0.0) == "a [2Jb: DISABLED: x  y ");
}

TEST_CASE("live line: events per second from consecutive samples", "[unit]") {
  CHECK(eventsPerSecond(100.0, 300.0, 2.0) == Approx(100.0));
  CHECK_FALSE(eventsPerSecond(std::nullopt, 300.0, 2.0)); // first sample
  CHECK_FALSE(eventsPerSecond(100.0, 300.0, 0.0));        // no time passed
  CHECK_FALSE(eventsPerSecond(500.0, 300.0, 1.0));        // the counter went back: a restart
}

TEST_CASE("live line: documents that are not kesm's /status are refused with a reason", "[unit]") {
  struct Case {
    const char* name;
    const char* body;
    const char* says;
  };
  auto c =
      GENERATE(Case{"an HTML page", "<html>nope</html>", "not JSON"}, Case{"empty", "", "not JSON"},
               Case{"truncated", R"({"mappings":[{"name":"a")", "not JSON"},
               Case{"an array", "[]", "the document is not an object"},
               Case{"no mappings", R"({"status":"ok"})", "no \"mappings\" list"},
               Case{"mappings not a list", R"({"mappings":{}})", "no \"mappings\" list"},
               Case{"a mapping without a name", R"({"mappings":[{"state":"Enabled"}]})",
                    "mappings[0] has no name"},
               Case{"an unknown state", R"({"mappings":[{"name":"a","state":"Odd"}]})",
                    "mappings[0].state is 'Odd'"},
               Case{"lag as text",
                    R"({"mappings":[{"name":"a","state":"Enabled","lag":{"stale":false,
                         "total":"12"}}]})",
                    "mappings[0].lag.total is not a number"},
               Case{"a negative poller count",
                    R"({"mappings":[{"name":"a","state":"Enabled","pollers":{
                         "desired":-1}}]})",
                    "mappings[0].pollers.desired is not a poller count"});
  INFO(c.name);
  try {
    parseLiveStatus(c.body);
    FAIL("accepted");
  } catch (const StatusFormatError& e) {
    CHECK_THAT(e.what(), Catch::Contains(c.says));
  }
}

TEST_CASE("live line: the URL for a config's listen address", "[unit]") {
  CHECK(urlForListen("0.0.0.0:9464") == "http://127.0.0.1:9464");
  CHECK(urlForListen(":9464") == "http://127.0.0.1:9464");
  CHECK(urlForListen("10.1.2.3:8080") == "http://10.1.2.3:8080");
  CHECK(urlForListen("kesm.local:9464") == "http://kesm.local:9464");
  CHECK(urlForListen("[::]:9464") == "http://[::1]:9464");
  CHECK(urlForListen("[fd00::5]:9464") == "http://[fd00::5]:9464");
  CHECK_THROWS_WITH(urlForListen("0.0.0.0:0"), Catch::Contains("give --url"));
  CHECK_THROWS_AS(urlForListen("nocolon"), std::invalid_argument);
  CHECK_THROWS_AS(urlForListen("h:99999"), std::invalid_argument);
}

TEST_CASE("kesm top: the /status URL below the one given", "[unit]") {
  CHECK(statusUrl("http://127.0.0.1:9464") == "http://127.0.0.1:9464/status");
  CHECK(statusUrl("http://127.0.0.1:9464/") == "http://127.0.0.1:9464/status");
  CHECK(statusUrl("http://h:9464/status") == "http://h:9464/status");
  CHECK(statusUrl("http://h:9464/status/") == "http://h:9464/status");
  CHECK(statusUrl("http://status") == "http://status/status"); // a host named status
  CHECK(statusUrl("https://proxy/kesm-a/") == "https://proxy/kesm-a/status");
  CHECK(statusUrl("http://[::1]:9464") == "http://[::1]:9464/status");
  CHECK_THROWS_AS(statusUrl("ftp://h"), std::invalid_argument);
  CHECK_THROWS_AS(statusUrl("http://h/?x=1"), std::invalid_argument);
  CHECK_THROWS_AS(statusUrl("127.0.0.1:9464"), std::invalid_argument);
}
