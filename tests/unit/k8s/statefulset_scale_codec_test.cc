// The Scale JSON, the status mapping and the operator hints of k8s/statefulset_scale_codec.h:
// pure functions. The bodies are as kube-apiserver v1.37 answered (tests/k8s's server).

#include "k8s/statefulset_scale_codec.h"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::k8s;

TEST_CASE("scale: the path of a StatefulSet's scale subresource", "[unit]") {
  CHECK(scalePath("streaming", "orders-pollers") ==
        "/apis/apps/v1/namespaces/streaming/statefulsets/orders-pollers/scale");
}

TEST_CASE("scale: encode writes an autoscaling/v1 Scale with the resourceVersion read", "[unit]") {
  const auto doc = boost::json::parse(encodeScale("ns1", "pollers", 3, "212"));
  CHECK(doc.at("apiVersion").as_string() == "autoscaling/v1");
  CHECK(doc.at("kind").as_string() == "Scale");
  CHECK(doc.at("metadata").at("name").as_string() == "pollers");
  CHECK(doc.at("metadata").at("namespace").as_string() == "ns1");
  CHECK(doc.at("metadata").at("resourceVersion").as_string() == "212");
  CHECK(doc.at("spec").at("replicas").as_int64() == 3);
  // Zero is sent explicitly: it is the count, not an omitted field.
  const auto zero = boost::json::parse(encodeScale("ns1", "pollers", 0, ""));
  CHECK(zero.at("spec").at("replicas").as_int64() == 0);
  CHECK(zero.at("metadata").as_object().if_contains("resourceVersion") == nullptr);
}

TEST_CASE("scale: decode reads what the API server answers", "[unit]") {
  const std::string body = R"({"kind":"Scale","apiVersion":"autoscaling/v1",
    "metadata":{"name":"pollers","namespace":"probe1","uid":"1ec95b9b",
                "resourceVersion":"213","creationTimestamp":"2026-12-01T20:36:29Z"},
    "spec":{"replicas":3},"status":{"replicas":2,"selector":"app=p"}})";
  std::string error;
  const auto scale = decodeScale(body, error);
  INFO(error);
  REQUIRE(scale);
  CHECK(scale->spec_replicas == 3);
  CHECK(scale->status_replicas == 2);
  CHECK(scale->selector == "app=p");
  CHECK(scale->resource_version == "213");
}

TEST_CASE("scale: a zero spec.replicas is omitted by the server and reads as 0", "[unit]") {
  std::string error;
  const auto scale = decodeScale(R"({"kind":"Scale","metadata":{"resourceVersion":"9"},
    "spec":{},"status":{"replicas":0,"selector":"app=p"}})",
                                 error);
  REQUIRE(scale);
  CHECK(scale->spec_replicas == 0);
  CHECK(scale->status_replicas == 0);
}

TEST_CASE("scale: decode refuses what is not a Scale, naming why", "[unit]") {
  struct Case {
    const char* what;
    std::string body;
    std::string error;
  };
  auto c = GENERATE(
      Case{.what = "not JSON", .body = "<html>", .error = "not JSON"},
      Case{.what = "an array", .body = "[]", .error = "not a JSON object"},
      Case{.what = "a Status", .body = R"({"kind":"Status","code":404})", .error = "not a Scale"},
      Case{.what = "no resourceVersion",
           .body = R"({"kind":"Scale","metadata":{},"spec":{"replicas":1}})",
           .error = "no metadata.resourceVersion"},
      Case{.what = "a negative count",
           .body = R"({"kind":"Scale","metadata":{"resourceVersion":"1"},"spec":{"replicas":-1}})",
           .error = "spec.'replicas' is not a count"},
      Case{
          .what = "a count above int32",
          .body =
              R"({"kind":"Scale","metadata":{"resourceVersion":"1"},"status":{"replicas":3000000000}})",
          .error = "status.'replicas' is not a count"},
      Case{.what = "a string count",
           .body = R"({"kind":"Scale","metadata":{"resourceVersion":"1"},"spec":{"replicas":"3"}})",
           .error = "spec.'replicas' is not a count"},
      Case{.what = "spec not an object",
           .body = R"({"kind":"Scale","metadata":{"resourceVersion":"1"},"spec":3})",
           .error = "spec is not an object"});
  INFO(c.what);
  std::string error;
  CHECK_FALSE(decodeScale(c.body, error));
  CHECK_THAT(error, Catch::Contains(c.error));
}

TEST_CASE("scale: every HTTP status and transport failure has its outcome", "[unit]") {
  struct Case {
    int status;
    ScaleOutcome outcome;
    const char* label;
  };
  auto c = GENERATE(
      Case{200, ScaleOutcome::kOk, "ok"}, Case{201, ScaleOutcome::kOk, "ok"},
      Case{400, ScaleOutcome::kInvalid, "invalid"}, Case{422, ScaleOutcome::kInvalid, "invalid"},
      Case{401, ScaleOutcome::kUnauthorized, "unauthorized"},
      Case{403, ScaleOutcome::kForbidden, "forbidden"},
      Case{404, ScaleOutcome::kNotFound, "not_found"},
      Case{409, ScaleOutcome::kConflict, "conflict"},
      Case{429, ScaleOutcome::kThrottled, "throttled"},
      Case{500, ScaleOutcome::kServerError, "server_error"},
      Case{503, ScaleOutcome::kServerError, "server_error"},
      Case{504, ScaleOutcome::kServerError, "server_error"},
      Case{301, ScaleOutcome::kOther, "other"}, Case{405, ScaleOutcome::kOther, "other"});
  INFO(c.status);
  CHECK(scaleOutcomeForStatus(c.status) == c.outcome);
  CHECK(std::string(toString(c.outcome)) == c.label);

  CHECK(scaleOutcomeForTransport(net::HttpErrorKind::kTimeout) == ScaleOutcome::kTimeout);
  CHECK(scaleOutcomeForTransport(net::HttpErrorKind::kConnect) == ScaleOutcome::kUnreachable);
  CHECK(scaleOutcomeForTransport(net::HttpErrorKind::kTls) == ScaleOutcome::kUnreachable);
  CHECK(scaleOutcomeForTransport(net::HttpErrorKind::kIo) == ScaleOutcome::kUnreachable);
}

TEST_CASE("scale: a 403 names the verb, the resource, the object and the rule to add", "[unit]") {
  const std::string hint = scaleFailureHint(ScaleOutcome::kForbidden, "update", "ns1", "pollers");
  CHECK_THAT(hint, Catch::Contains("may not 'update' statefulsets/scale (API group apps) of "
                                   "'pollers' in namespace 'ns1'") &&
                       Catch::Contains("resourceNames: [pollers], verbs: [get, update]"));
  CHECK_THAT(scaleFailureHint(ScaleOutcome::kNotFound, "get", "ns1", "pollers"),
             Catch::Contains("no StatefulSet 'pollers' in namespace 'ns1'"));
  CHECK_THAT(scaleFailureHint(ScaleOutcome::kUnauthorized, "get", "ns1", "pollers"),
             Catch::Contains("token"));
  CHECK(scaleFailureHint(ScaleOutcome::kTimeout, "get", "ns1", "pollers").empty());
}
