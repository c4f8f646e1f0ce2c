// The pure half of what the controller learns from poller pods (k8s/pod_status.h): the
// EndpointSliceList and /status codecs and the invocation accumulator.

#include "k8s/pod_status.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::k8s;
using Totals = scaler::InvocationTotals;
using Round = std::map<std::string, std::optional<Totals>>;

namespace {

// A slice of `type` with `ports` (JSON array) and `endpoints` (JSON array), as the
// EndpointSlice controller writes it.
std::string slice(const std::string& name, const std::string& type, const std::string& ports,
                  const std::string& endpoints) {
  return R"({"metadata":{"name":")" + name +
         R"(","labels":{"kubernetes.io/service-name":"kesm-orders"}},"addressType":")" + type +
         R"(","endpoints":)" + endpoints + R"(,"ports":)" + ports + "}";
}

std::string list(const std::string& items) {
  return R"({"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1",)"
         R"("metadata":{"resourceVersion":"42"},"items":[)" +
         items + "]}";
}

std::string endpoint(const std::string& pod, const std::string& address, bool ready = true) {
  return R"({"addresses":[")" + address + R"("],"conditions":{"ready":)" +
         (ready ? "true" : "false") + R"(,"serving":true,"terminating":false},"hostname":")" + pod +
         R"(","targetRef":{"kind":"Pod","namespace":"ns","name":")" + pod +
         R"(","uid":"u"},"nodeName":"n1"})";
}

const std::string kHttpPort = R"([{"name":"http","protocol":"TCP","port":8080}])";

} // namespace

TEST_CASE("pod status: endpointSlicesPath selects the Service's slices", "[unit]") {
  CHECK(endpointSlicesPath("prod", "kesm-orders") ==
        "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices"
        "?labelSelector=kubernetes.io/service-name%3Dkesm-orders");
}

TEST_CASE("pod status: an EndpointSliceList decodes to one endpoint per pod, sorted, "
          "unready ones kept",
          "[unit]") {
  const std::string body =
      list(slice("s-1", "IPv4", kHttpPort,
                 "[" + endpoint("kesm-orders-1", "10.0.0.2", false) + "," +
                     endpoint("kesm-orders-0", "10.0.0.1") + "]") +
           "," +
           // the same pod in a second slice, as during a slice rebalance: read once
           slice("s-2", "IPv4", kHttpPort, "[" + endpoint("kesm-orders-0", "10.0.0.1") + "]"));
  std::string error;
  const auto decoded = decodeEndpointSliceList(body, error);
  REQUIRE(decoded);
  CHECK(decoded->warnings.empty());
  REQUIRE(decoded->endpoints.size() == 2);
  CHECK(decoded->endpoints[0] ==
        PodEndpoint{.pod = "kesm-orders-0", .address = "10.0.0.1", .port = 8080, .ready = true});
  CHECK(decoded->endpoints[1] ==
        PodEndpoint{.pod = "kesm-orders-1", .address = "10.0.0.2", .port = 8080, .ready = false});
}

TEST_CASE("pod status: the port is the one named http, else the only one", "[unit]") {
  struct Row {
    const char* what;
    std::string ports;
    int port; // 0: the slice is skipped with a warning containing `warning`
    std::string warning = {};
  };
  const auto row = GENERATE(values<Row>({
      {.what = "named http among others",
       .ports = R"([{"name":"metrics","port":9000},{"name":"http","port":8080}])",
       .port = 8080},
      {.what = "the only port, unnamed", .ports = R"([{"name":"","port":9090}])", .port = 9090},
      {.what = "the only port, no protocol (TCP)", .ports = R"([{"port":7000}])", .port = 7000},
      {.what = "two ports, none http",
       .ports = R"([{"name":"a","port":1},{"name":"b","port":2}])",
       .port = 0,
       .warning = "2 TCP ports and none named \"http\""},
      {.what = "a UDP http port only",
       .ports = R"([{"name":"http","protocol":"UDP","port":53}])",
       .port = 0,
       .warning = "no TCP port"},
      {.what = "no ports", .ports = "[]", .port = 0, .warning = "no ports"},
      {.what = "ports null", .ports = "null", .port = 0, .warning = "no ports"},
      {.what = "a port without a number (all ports)",
       .ports = R"([{"name":"http"}])",
       .port = 0,
       .warning = "no number in 1-65535"},
      {.what = "port 0",
       .ports = R"([{"name":"http","port":0}])",
       .port = 0,
       .warning = "no number"},
      {.what = "port 70000",
       .ports = R"([{"name":"http","port":70000}])",
       .port = 0,
       .warning = "no number"},
  }));
  INFO(row.what);
  std::string error;
  const auto decoded = decodeEndpointSliceList(
      list(slice("s", "IPv4", row.ports, "[" + endpoint("p-0", "10.0.0.1") + "]")), error);
  REQUIRE(decoded);
  if (row.port != 0) {
    REQUIRE(decoded->endpoints.size() == 1);
    CHECK(decoded->endpoints[0].port == row.port);
    CHECK(decoded->warnings.empty());
  } else {
    CHECK(decoded->endpoints.empty());
    REQUIRE(decoded->warnings.size() == 1);
    CHECK_THAT(decoded->warnings[0], Catch::Contains("slice s: ") && Catch::Contains(row.warning));
  }
}

TEST_CASE("pod status: endpoints without a usable address are skipped, saying why", "[unit]") {
  struct Row {
    const char* what;
    std::string type;
    std::string endpoints;
    std::vector<PodEndpoint> expected = {};
    std::string warning = {}; // empty: none
  };
  const auto row = GENERATE(values<Row>({
      {.what = "no addresses",
       .type = "IPv4",
       .endpoints = R"([{"addresses":[],"targetRef":{"kind":"Pod","name":"p-0"}}])",
       .warning = "endpoint p-0 has no address"},
      {.what = "an address of the wrong family",
       .type = "IPv4",
       .endpoints = "[" + endpoint("p-0", "fd00::1") + "]",
       .warning = "\"fd00::1\" is not an IPv4 address"},
      {.what = "a host name where an IP is due",
       .type = "IPv4",
       .endpoints = "[" + endpoint("p-0", "evil.example") + "]",
       .warning = "is not an IPv4 address"},
      {.what = "an FQDN slice",
       .type = "FQDN",
       .endpoints = "[" + endpoint("p-0", "p-0.example") + "]",
       .warning = "addressType \"FQDN\": only IPv4 and IPv6"},
      {.what = "IPv6",
       .type = "IPv6",
       .endpoints = "[" + endpoint("p-0", "fd00::7") + "]",
       .expected = {{.pod = "p-0", .address = "fd00::7", .port = 8080, .ready = true}}},
      {.what = "no targetRef: the hostname names the pod",
       .type = "IPv4",
       .endpoints = R"([{"addresses":["10.0.0.9"],"hostname":"h-1"}])",
       .expected = {{.pod = "h-1", .address = "10.0.0.9", .port = 8080, .ready = true}}},
      {.what = "neither: the address names it; no conditions: ready",
       .type = "IPv4",
       .endpoints = R"([{"addresses":["10.0.0.9"]}])",
       .expected = {{.pod = "10.0.0.9", .address = "10.0.0.9", .port = 8080, .ready = true}}},
      {.what = "a targetRef to something other than a Pod",
       .type = "IPv4",
       .endpoints = R"([{"addresses":["10.0.0.9"],"targetRef":{"kind":"Node","name":"n"}}])",
       .expected = {{.pod = "10.0.0.9", .address = "10.0.0.9", .port = 8080, .ready = true}}},
      {.what = "ready null is unknown: read as ready",
       .type = "IPv4",
       .endpoints = R"([{"addresses":["10.0.0.9"],"conditions":{"ready":null}}])",
       .expected = {{.pod = "10.0.0.9", .address = "10.0.0.9", .port = 8080, .ready = true}}},
      {.what = "endpoints null: nothing, no warning", .type = "IPv4", .endpoints = "null"},
      {.what = "an endpoint that is not an object",
       .type = "IPv4",
       .endpoints = "[7]",
       .warning = "an endpoint is a number"},
  }));
  INFO(row.what);
  std::string error;
  const auto decoded =
      decodeEndpointSliceList(list(slice("s", row.type, kHttpPort, row.endpoints)), error);
  REQUIRE(decoded);
  CHECK(decoded->endpoints == row.expected);
  if (row.warning.empty()) {
    CHECK(decoded->warnings.empty());
  } else {
    REQUIRE(decoded->warnings.size() == 1);
    CHECK_THAT(decoded->warnings[0], Catch::Contains(row.warning));
  }
}

TEST_CASE("pod status: a body that is no EndpointSliceList is an error, no items are none",
          "[unit]") {
  struct Row {
    std::string body;
    std::string error = {}; // empty: decodes to nothing
  };
  const auto row = GENERATE(values<Row>({
      {.body = "", .error = "not JSON"},
      {.body = "<html>", .error = "not JSON"},
      {.body = "[]", .error = "got an array"},
      {.body = R"({"kind":"PodList","items":[]})",
       .error = "kind EndpointSliceList, got \"PodList\""},
      {.body = R"({"kind":"EndpointSliceList"})", .error = "no \"items\" array"},
      {.body = R"({"kind":"EndpointSliceList","items":{}})", .error = "no \"items\" array"},
      {.body = R"({"kind":"EndpointSliceList","items":null})"},
      {.body = R"({"kind":"EndpointSliceList","items":[]})"},
  }));
  INFO(row.body);
  std::string error;
  const auto decoded = decodeEndpointSliceList(row.body, error);
  if (row.error.empty()) {
    REQUIRE(decoded);
    CHECK(decoded->endpoints.empty());
  } else {
    CHECK_FALSE(decoded);
    CHECK_THAT(error, Catch::Contains(row.error));
  }
}

TEST_CASE("pod status: statusUrl brackets IPv6 addresses", "[unit]") {
  CHECK(statusUrl({.pod = "p", .address = "10.1.2.3", .port = 8080}) ==
        "http://10.1.2.3:8080/status");
  CHECK(statusUrl({.pod = "p", .address = "fd00::7", .port = 80}) == "http://[fd00::7]:80/status");
  CHECK(statusUrl({.pod = "p", .address = "::1", .port = 9}) == "http://[::1]:9/status");
}

TEST_CASE("pod status: a poller's /status decodes", "[unit]") {
  std::string error;
  const auto enabled = decodePollerStatus(
      R"({"mode":"poller","mapping":"orders","instanceId":"kesm-orders-0",)"
      R"("staticMembership":false,"state":"Enabled","pollers":[{"clientId":"c",)"
      R"("groupInstanceId":"","state":"running","partitions":2}],"events":{"polled":5,)"
      R"("invoked":5,"failedInvoke":0,"committed":5},"invocations":{"count":12,)"
      R"("seconds":0.25}})",
      error);
  REQUIRE(enabled);
  CHECK(enabled->mapping == "orders");
  CHECK_FALSE(enabled->disabled);
  REQUIRE(enabled->invocations);
  CHECK(enabled->invocations->count == 12);
  CHECK(enabled->invocations->seconds == 0.25);

  const auto disabled = decodePollerStatus(
      R"({"mode":"poller","mapping":"orders","state":"Disabled","disabledReason":"function )"
      R"(answered 404","invocations":{"count":1,"seconds":3}})",
      error);
  REQUIRE(disabled);
  CHECK(disabled->disabled);
  CHECK(disabled->disabled_reason == "function answered 404");
  CHECK(disabled->invocations->seconds == 3);

  // A poller older than the controller: no invocations, its state still counts.
  const auto older =
      decodePollerStatus(R"({"mode":"poller","mapping":"orders","state":"Enabled"})", error);
  REQUIRE(older);
  CHECK_FALSE(older->invocations);
}

TEST_CASE("pod status: a malformed /status is refused with a clear error", "[unit]") {
  struct Row {
    std::string body;
    std::string error;
  };
  const std::string head = R"({"mode":"poller","mapping":"orders","state":"Enabled",)";
  const auto row = GENERATE_COPY(values<Row>({
      {.body = "", .error = "not JSON"},
      {.body = "HTTP/1.1 garbage \x01\x02", .error = "not JSON"},
      {.body = "42", .error = "expected a JSON object, got a number"},
      {.body = R"({"mode":"run","mapping":"orders","state":"Enabled"})",
       .error = "\"mode\" is \"run\", not \"poller\""},
      {.body = R"({"mapping":"orders","state":"Enabled"})", .error = "no \"mode\" string"},
      {.body = R"({"mode":"poller","state":"Enabled"})", .error = "no \"mapping\" string"},
      {.body = R"({"mode":"poller","mapping":"orders","state":"Sleeping"})",
       .error = "\"state\" is \"Sleeping\", not Enabled or Disabled"},
      {.body = head + R"("invocations":[]})", .error = "\"invocations\" is an array"},
      {.body = head + R"("invocations":{"count":-1,"seconds":0}})",
       .error = "\"invocations.count\" is a number, not an integer"},
      {.body = head + R"("invocations":{"count":1.5,"seconds":0}})",
       .error = "\"invocations.count\" is a number, not an integer"},
      {.body = head + R"("invocations":{"count":"1","seconds":0}})",
       .error = "\"invocations.count\" is a string"},
      {.body = head + R"("invocations":{"count":18446744073709551615,"seconds":0}})",
       .error = "not an integer from 0 to 2^63-1"},
      {.body = head + R"("invocations":{"seconds":0}})",
       .error = "\"invocations.count\" is absent"},
      {.body = head + R"("invocations":{"count":1,"seconds":-0.5}})",
       .error = "\"invocations.seconds\" is a number below 0"},
      {.body = head + R"("invocations":{"count":1}})",
       .error = "\"invocations.seconds\" is absent"},
      {.body = head + R"("invocations":{"count":1,"seconds":1e999}})", .error = ""},
      {.body = std::string(40, '[') + std::string(40, ']'), .error = "not JSON"},
      {.body = std::string(kMaxPollerStatusBytes + 1, ' '),
       .error = "answer of 1048577 bytes, more than the 1048576"},
  }));
  INFO(row.body.substr(0, 100));
  std::string error;
  CHECK_FALSE(decodePollerStatus(row.body, error));
  CHECK_THAT(error, Catch::Contains(row.error));
}

TEST_CASE("pod status: the accumulator sums the pods' increases", "[unit]") {
  InvocationAccumulator acc;
  CHECK(acc.totals().count == 0);
  // First sight counts the whole totals of each pod.
  acc.addRound({{"p-0", Totals{10, 1.0}}, {"p-1", Totals{4, 0.5}}});
  CHECK(acc.totals().count == 14);
  CHECK(acc.totals().seconds == Approx(1.5));
  // Then only the increase.
  acc.addRound({{"p-0", Totals{15, 1.5}}, {"p-1", Totals{4, 0.5}}});
  CHECK(acc.totals().count == 19);
  CHECK(acc.totals().seconds == Approx(2.0));
  CHECK(acc.podsKnown() == 2);
  CHECK(acc.restarts() == 0);
}

TEST_CASE("pod status: a restarted pod's new totals are its increase", "[unit]") {
  InvocationAccumulator acc;
  acc.addRound({{"p-0", Totals{100, 10.0}}});
  // The process restarted and has done 3 invocations since.
  acc.addRound({{"p-0", Totals{3, 0.3}}});
  CHECK(acc.totals().count == 103);
  CHECK(acc.totals().seconds == Approx(10.3));
  CHECK(acc.restarts() == 1);
  // Counting resumes from the new process's totals.
  acc.addRound({{"p-0", Totals{5, 0.5}}});
  CHECK(acc.totals().count == 105);
  CHECK(acc.totals().seconds == Approx(10.5));
  // Seconds below the last with a count above: also a restart (both only grow in a process).
  acc.addRound({{"p-0", Totals{6, 0.1}}});
  CHECK(acc.totals().count == 111);
  CHECK(acc.totals().seconds == Approx(10.6));
  CHECK(acc.restarts() == 2);
}

TEST_CASE("pod status: a pod gone or unread keeps what it contributed, never counted twice",
          "[unit]") {
  InvocationAccumulator acc;
  acc.addRound({{"p-0", Totals{10, 1.0}}, {"p-1", Totals{20, 2.0}}});
  // p-1 times out (listed, unread), then leaves the Service for a while.
  acc.addRound({{"p-0", Totals{11, 1.1}}, {"p-1", std::nullopt}});
  for (int i = 0; i < 50; ++i) {
    acc.addRound({{"p-0", Totals{12, 1.2}}});
  }
  CHECK(acc.totals().count == 32);
  CHECK(acc.totals().seconds == Approx(3.2));
  CHECK(acc.podsKnown() == 2);
  // Back, unrestarted: only its increase counts.
  acc.addRound({{"p-0", Totals{12, 1.2}}, {"p-1", Totals{25, 2.5}}});
  CHECK(acc.totals().count == 37);
  CHECK(acc.totals().seconds == Approx(3.7));
  CHECK(acc.restarts() == 0);
}

TEST_CASE("pod status: past max_known the pods unread longest are forgotten", "[unit]") {
  InvocationAccumulator acc(2);
  acc.addRound({{"a", Totals{1, 0.1}}, {"b", Totals{2, 0.2}}});
  acc.addRound({{"b", Totals{2, 0.2}}});                        // a unread once
  acc.addRound({{"b", Totals{2, 0.2}}, {"c", Totals{4, 0.4}}}); // a unread twice: forgotten
  CHECK(acc.podsKnown() == 2);
  CHECK(acc.totals().count == 7);
  // b is still known: no double count. a is forgotten: it counts as first seen.
  acc.addRound({{"a", Totals{1, 0.1}}, {"b", Totals{3, 0.3}}, {"c", Totals{4, 0.4}}});
  CHECK(acc.totals().count == 9);
  CHECK(acc.podsKnown() == 2);
}

TEST_CASE("pod status: the accumulator's sum never decreases and never overcounts", "[unit]") {
  // Five pods whose processes restart, vanish from the list and time out at random: after
  // every round the sum is at least what it was and at most what the processes did.
  InvocationAccumulator acc;
  std::uint32_t seed = 12345;
  const auto next = [&seed] {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
  };
  std::map<std::string, Totals> process; // the live process of each pod
  std::int64_t done_total = 0;
  Totals before;
  for (int r = 0; r < 500; ++r) {
    Round round;
    for (int p = 0; p < 5; ++p) {
      const std::string pod = "p-" + std::to_string(p);
      auto& proc = process[pod];
      if (next() % 20 == 0) {
        proc = Totals{}; // restart
      }
      const int done = static_cast<int>(next() % 7);
      proc.count += done;
      proc.seconds += 0.01 * done;
      done_total += done;
      const auto fate = next() % 10;
      if (fate == 0) {
        continue; // not listed
      }
      round[pod] = fate == 1 ? std::nullopt : std::optional<Totals>(proc); // 1: unread
    }
    acc.addRound(round);
    const auto now = acc.totals();
    INFO("round " << r);
    REQUIRE(now.count >= before.count);
    REQUIRE(now.seconds >= before.seconds - 1e-9);
    REQUIRE(now.count <= done_total);
    before = now;
  }
  CHECK(acc.restarts() > 0);
  CHECK(acc.totals().count > done_total / 2); // most of it was seen
}
