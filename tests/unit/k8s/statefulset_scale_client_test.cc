// The scale client's request sequences (k8s/statefulset_scale.h) over a scripted transport:
// which requests a get() or set() sends, with which resourceVersion, and how each answer is
// classified. The real API server's side is in tests/k8s/statefulset_scale_test.cc.

#include "k8s/statefulset_scale.h"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>
#include <deque>
#include <vector>

using namespace kesm;
using namespace kesm::k8s;

namespace {

struct Sent {
  std::string method;
  std::string path;
  std::string body;
};

// Answers each request with the next scripted result; records what was sent.
class ScriptedTransport final : public ApiTransport {
public:
  ScriptedTransport(std::deque<net::HttpResult>& script, std::vector<Sent>& sent)
      : script_(script), sent_(sent) {}
  net::HttpResult request(const std::string& method, const std::string& path,
                          const std::string& body) override {
    sent_.push_back({method, path, body});
    REQUIRE_FALSE(script_.empty());
    net::HttpResult r = script_.front();
    script_.pop_front();
    return r;
  }
  std::string describe() const override { return "https://api:6443"; }
  std::string tokenError() const override { return token_error; }
  std::string token_error;

private:
  std::deque<net::HttpResult>& script_;
  std::vector<Sent>& sent_;
};

net::HttpResult answer(int status, std::string body) {
  net::HttpResult r;
  r.response.status = status;
  r.response.body = std::move(body);
  return r;
}

net::HttpResult scale(int spec, int pods, const std::string& rv) {
  return answer(200, R"({"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"p",)"
                     R"("namespace":"ns","resourceVersion":")" +
                         rv + R"("},"spec":{"replicas":)" + std::to_string(spec) +
                         R"(},"status":{"replicas":)" + std::to_string(pods) +
                         R"(,"selector":"app=p"}})");
}

net::HttpResult status(int code, const std::string& reason, const std::string& message) {
  return answer(code, R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":")" +
                          message + R"(","reason":")" + reason + R"(","code":)" +
                          std::to_string(code) + "}");
}

net::HttpResult transportError(net::HttpErrorKind kind, std::string message) {
  net::HttpResult r;
  r.error = kind;
  r.error_message = std::move(message);
  return r;
}

std::string rvOf(const Sent& s) {
  return std::string(boost::json::parse(s.body).at("metadata").at("resourceVersion").as_string());
}

struct Rig {
  std::deque<net::HttpResult> script;
  std::vector<Sent> sent;
  ScriptedTransport* transport = nullptr;
  std::unique_ptr<ScaleClient> client;
  Rig() {
    auto t = std::make_unique<ScriptedTransport>(script, sent);
    transport = t.get();
    client = makeScaleClient(std::move(t), "ns", "p");
  }
};

} // namespace

TEST_CASE("scale client: get reads the Scale", "[unit]") {
  Rig rig;
  rig.script = {scale(2, 1, "10")};
  const auto r = rig.client->get();
  INFO(r.message);
  REQUIRE(r.ok());
  CHECK(r.scale->spec_replicas == 2);
  CHECK(r.scale->status_replicas == 1);
  REQUIRE(rig.sent.size() == 1);
  CHECK(rig.sent[0].method == "GET");
  CHECK(rig.sent[0].path == "/apis/apps/v1/namespaces/ns/statefulsets/p/scale");
  CHECK(rig.client->describe() == "ns/p");
}

TEST_CASE("scale client: a first set reads, then PUTs with that resourceVersion, the next "
          "PUT carries the one written",
          "[unit]") {
  Rig rig;
  rig.script = {scale(1, 1, "10"), scale(3, 1, "11"), scale(5, 1, "12")};
  auto r = rig.client->set(3);
  REQUIRE(r.ok());
  CHECK(r.scale->spec_replicas == 3);
  CHECK_FALSE(r.conflict_retried);
  r = rig.client->set(5);
  REQUIRE(r.ok());
  REQUIRE(rig.sent.size() == 3);
  CHECK(rig.sent[0].method == "GET");
  CHECK(rig.sent[1].method == "PUT");
  CHECK(rvOf(rig.sent[1]) == "10");
  CHECK(boost::json::parse(rig.sent[1].body).at("spec").at("replicas").as_int64() == 3);
  CHECK(rig.sent[2].method == "PUT");
  CHECK(rvOf(rig.sent[2]) == "11");
}

TEST_CASE("scale client: a 409 from a status change re-reads and writes once more, silently",
          "[unit]") {
  Rig rig;
  rig.script = {scale(1, 0, "10"), status(409, "Conflict", "the object has been modified"),
                scale(1, 1, "14"), // only status.replicas moved
                scale(3, 1, "15")};
  const auto r = rig.client->set(3);
  INFO(r.message);
  REQUIRE(r.ok());
  CHECK(r.conflict_retried);
  CHECK_FALSE(r.changed_elsewhere);
  REQUIRE(rig.sent.size() == 4);
  CHECK(rvOf(rig.sent[1]) == "10");
  CHECK(rig.sent[2].method == "GET");
  CHECK(rvOf(rig.sent[3]) == "14");
}

TEST_CASE("scale client: a 409 whose re-read shows another writer's count says so", "[unit]") {
  Rig rig;
  rig.script = {scale(1, 0, "10"), status(409, "Conflict", "modified"), scale(7, 0, "14"),
                scale(3, 0, "15")};
  const auto r = rig.client->set(3);
  REQUIRE(r.ok());
  CHECK(r.conflict_retried);
  REQUIRE(r.changed_elsewhere);
  CHECK(*r.changed_elsewhere == 7);
}

TEST_CASE("scale client: two 409s in a row end in kConflict after one retry", "[unit]") {
  Rig rig;
  rig.script = {scale(1, 0, "10"), status(409, "Conflict", "modified"), scale(1, 0, "14"),
                status(409, "Conflict", "modified again")};
  const auto r = rig.client->set(3);
  CHECK(r.outcome == ScaleOutcome::kConflict);
  CHECK(r.conflict_retried);
  CHECK(rig.sent.size() == 4);
  CHECK_THAT(r.message, Catch::Contains("409 Conflict: modified again"));
}

TEST_CASE("scale client: a failed re-read after a 409 is that failure, naming the 409", "[unit]") {
  Rig rig;
  rig.script = {scale(1, 0, "10"), status(409, "Conflict", "modified"),
                transportError(net::HttpErrorKind::kTimeout, "timed out after 1000 ms")};
  const auto r = rig.client->set(3);
  CHECK(r.outcome == ScaleOutcome::kTimeout);
  CHECK_THAT(r.message, Catch::Contains("after a 409") && Catch::Contains("timed out"));
}

TEST_CASE("scale client: a negative count is refused before sending", "[unit]") {
  Rig rig;
  const auto r = rig.client->set(-1);
  CHECK(r.outcome == ScaleOutcome::kInvalid);
  CHECK_THAT(r.message, Catch::Contains("refused before sending"));
  CHECK(rig.sent.empty());
}

TEST_CASE("scale client: a failed first read is the result of set, nothing is written", "[unit]") {
  Rig rig;
  rig.script = {status(404, "NotFound", R"(statefulsets.apps \"p\" not found)")};
  const auto r = rig.client->set(3);
  CHECK(r.outcome == ScaleOutcome::kNotFound);
  CHECK_THAT(r.message, Catch::Contains("GET statefulsets/p/scale in ns") &&
                            Catch::Contains("404 NotFound") &&
                            Catch::Contains("no StatefulSet 'p' in namespace 'ns'"));
  CHECK(rig.sent.size() == 1);
}

TEST_CASE("scale client: each failure of a PUT is classified, with its hint", "[unit]") {
  struct Case {
    const char* what;
    net::HttpResult answer;
    ScaleOutcome outcome;
    std::string text;
  };
  auto c = GENERATE(
      Case{"403",
           status(403, "Forbidden",
                  R"(statefulsets.apps \"p\" is forbidden: User \"system:serviceaccount:ns:kesm\" )"
                  R"(cannot update resource \"statefulsets/scale\")"),
           ScaleOutcome::kForbidden,
           "may not 'update' statefulsets/scale (API group apps) of 'p' in namespace 'ns'"},
      Case{"422",
           status(422, "Invalid",
                  R"(Scale.autoscaling \"p\" is invalid: spec.replicas: Invalid value: -1)"),
           ScaleOutcome::kInvalid, "HTTP 422 Invalid: Scale.autoscaling"},
      Case{"401", status(401, "Unauthorized", "Unauthorized"), ScaleOutcome::kUnauthorized,
           "does not accept the service account token"},
      Case{"404", status(404, "NotFound", "gone"), ScaleOutcome::kNotFound, "no StatefulSet"},
      Case{"429", status(429, "TooManyRequests", "slow down"), ScaleOutcome::kThrottled,
           "HTTP 429"},
      Case{"500", status(500, "InternalError", "etcd"), ScaleOutcome::kServerError, "HTTP 500"},
      Case{"503 not JSON", answer(503, "upstream connect error"), ScaleOutcome::kServerError,
           "HTTP 503: upstream connect error"},
      Case{"200 not a Scale", answer(200, "{}"), ScaleOutcome::kOther, "not a Scale"},
      Case{"timeout", transportError(net::HttpErrorKind::kTimeout, "timed out"),
           ScaleOutcome::kTimeout, "timed out"},
      Case{"refused", transportError(net::HttpErrorKind::kConnect, "connection refused"),
           ScaleOutcome::kUnreachable, "connection refused"},
      Case{"TLS", transportError(net::HttpErrorKind::kTls, "certificate verify failed"),
           ScaleOutcome::kUnreachable, "certificate verify failed"});
  INFO(c.what);
  Rig rig;
  rig.script = {scale(1, 0, "10"), c.answer};
  const auto r = rig.client->set(2);
  INFO(r.message);
  CHECK(r.outcome == c.outcome);
  CHECK_THAT(r.message, Catch::Contains("PUT statefulsets/p/scale in ns at https://api:6443") &&
                            Catch::Contains(c.text));
  CHECK_FALSE(r.scale);
}

TEST_CASE("scale client: a 401 tells why the token file could not be re-read", "[unit]") {
  Rig rig;
  rig.transport->token_error = "cannot stat /sa/token: No such file or directory";
  rig.script = {status(401, "Unauthorized", "Unauthorized")};
  const auto r = rig.client->get();
  CHECK(r.outcome == ScaleOutcome::kUnauthorized);
  CHECK_THAT(r.message, Catch::Contains("(token file: cannot stat /sa/token"));
}
