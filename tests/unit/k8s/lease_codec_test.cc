// The Lease JSON, MicroTime and the status mapping of k8s/lease_codec.h: pure functions.

#include "k8s/lease_codec.h"

#include <catch2/catch.hpp>

using namespace kesm::k8s;
using namespace std::chrono;

TEST_CASE("lease: MicroTime is RFC 3339 UTC with six fraction digits", "[unit]") {
  struct Case {
    system_clock::time_point t;
    std::string text;
  };
  auto c = GENERATE(
      Case{.t = system_clock::time_point{}, .text = "1970-01-01T00:00:00.000000Z"},
      Case{.t = system_clock::time_point{seconds(1'796'142'000) + microseconds(123'456)},
           .text = "2026-12-01T16:20:00.123456Z"},
      Case{.t = system_clock::time_point{seconds(951'782'400) + nanoseconds(999'999'999)},
           .text = "2000-02-29T00:00:00.999999Z"}, // truncated, never rounded up a second
      Case{.t = system_clock::time_point{-microseconds(1)}, .text = "1969-12-31T23:59:59.999999Z"});
  CHECK(formatMicroTime(c.t) == c.text);
}

TEST_CASE("lease: encode then decode keeps every field", "[unit]") {
  LeaseRecord in{.holder = "kesm-0",
                 .lease_duration_seconds = 15,
                 .acquire_time = "2026-12-01T16:20:00.000000Z",
                 .renew_time = "2026-12-01T16:20:05.500000Z",
                 .lease_transitions = 3,
                 .resource_version = "1234"};
  const std::string body = encodeLease("ns1", "kesm-leader", in);
  CHECK_THAT(body, Catch::Contains(R"("apiVersion":"coordination.k8s.io/v1")") &&
                       Catch::Contains(R"("kind":"Lease")") &&
                       Catch::Contains(R"("name":"kesm-leader")") &&
                       Catch::Contains(R"("namespace":"ns1")") &&
                       Catch::Contains(R"("resourceVersion":"1234")"));
  std::string error;
  const auto out = decodeLease(body, error);
  REQUIRE(out);
  CHECK(out->holder == in.holder);
  CHECK(out->lease_duration_seconds == 15);
  CHECK(out->acquire_time == in.acquire_time);
  CHECK(out->renew_time == in.renew_time);
  CHECK(out->lease_transitions == 3);
  CHECK(out->resource_version == "1234");
}

TEST_CASE("lease: unset times, duration and resourceVersion are left out", "[unit]") {
  const std::string body = encodeLease("ns", "n", LeaseRecord{});
  CHECK_THAT(body, !Catch::Contains("resourceVersion") && !Catch::Contains("acquireTime") &&
                       !Catch::Contains("renewTime") && !Catch::Contains("leaseDurationSeconds"));
  // An empty holder is sent: that is how a Lease is released.
  CHECK_THAT(body, Catch::Contains(R"("holderIdentity":"")"));
}

TEST_CASE("lease: decode reads what the API server answers", "[unit]") {
  // As kube-apiserver answered a POST (trimmed managedFields).
  const std::string body = R"({"kind":"Lease","apiVersion":"coordination.k8s.io/v1",
    "metadata":{"name":"kesm-leader","namespace":"kesm-proof","uid":"9c1e",
      "resourceVersion":"215","creationTimestamp":"2026-12-01T16:20:00Z"},
    "spec":{"holderIdentity":"kesm-0","leaseDurationSeconds":15,
      "acquireTime":"2026-12-01T16:20:00.000000Z","renewTime":"2026-12-01T16:20:00.000000Z",
      "leaseTransitions":0}})";
  std::string error;
  const auto lease = decodeLease(body, error);
  REQUIRE(lease);
  CHECK(lease->resource_version == "215");
  CHECK(lease->holder == "kesm-0");
  // A Lease nobody ever held has no holder and no times.
  const auto empty =
      decodeLease(R"({"kind":"Lease","metadata":{"resourceVersion":"7"},"spec":{}})", error);
  REQUIRE(empty);
  CHECK(empty->holder.empty());
  CHECK(empty->lease_duration_seconds == 0);
}

TEST_CASE("lease: decode refuses what is not a Lease, saying why", "[unit]") {
  struct Bad {
    std::string body;
    std::string why;
  };
  auto bad = GENERATE(
      Bad{.body = "", .why = "not JSON"}, Bad{.body = "[1]", .why = "not a JSON object"},
      Bad{.body = R"({"kind":"Status","status":"Failure"})", .why = "not a Lease"},
      Bad{.body = R"({"kind":"Lease"})", .why = "no metadata"},
      Bad{.body = R"({"kind":"Lease","metadata":{}})", .why = "no metadata.resourceVersion"},
      Bad{.body =
              R"({"kind":"Lease","metadata":{"resourceVersion":"1"},"spec":{"holderIdentity":3}})",
          .why = "spec.'holderIdentity' is not a string"},
      Bad{.body =
              R"({"kind":"Lease","metadata":{"resourceVersion":"1"},"spec":{"leaseDurationSeconds":"15"}})",
          .why = "spec.'leaseDurationSeconds' is not a 32-bit integer"},
      Bad{.body =
              R"({"kind":"Lease","metadata":{"resourceVersion":"1"},"spec":{"leaseTransitions":4294967296}})",
          .why = "spec.'leaseTransitions' is not a 32-bit integer"});
  CAPTURE(bad.body);
  std::string error;
  CHECK_FALSE(decodeLease(bad.body, error));
  CHECK_THAT(error, Catch::Contains(bad.why));
}

TEST_CASE("lease: status codes map to outcomes as lease.h says", "[unit]") {
  struct Case {
    int status;
    LeaseOutcome outcome;
  };
  auto c = GENERATE(Case{200, LeaseOutcome::kOk}, Case{201, LeaseOutcome::kOk},
                    Case{404, LeaseOutcome::kNotFound}, Case{409, LeaseOutcome::kConflict},
                    Case{401, LeaseOutcome::kForbidden}, Case{403, LeaseOutcome::kForbidden},
                    Case{429, LeaseOutcome::kUnavailable}, Case{500, LeaseOutcome::kUnavailable},
                    Case{503, LeaseOutcome::kUnavailable}, Case{400, LeaseOutcome::kUnavailable},
                    Case{422, LeaseOutcome::kUnavailable}, Case{302, LeaseOutcome::kUnavailable});
  CAPTURE(c.status);
  CHECK(outcomeForStatus(c.status) == c.outcome);
}

TEST_CASE("lease: a failure reads the Status reason and message", "[unit]") {
  CHECK(describeFailure(409, R"({"kind":"Status","status":"Failure","reason":"AlreadyExists",
          "message":"leases.coordination.k8s.io \"x\" already exists","code":409})") ==
        "HTTP 409 AlreadyExists: leases.coordination.k8s.io \"x\" already exists");
  CHECK(describeFailure(502, "<html>\nbad gateway</html>") ==
        "HTTP 502: <html> bad gateway</html>");
  CHECK(describeFailure(500, "") == "HTTP 500");
}
