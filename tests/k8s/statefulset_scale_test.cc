// The scale client and the pods pool against a REAL kube-apiserver (the ctest fixture
// kesm_apiserver; $KESM_K8S_DIR/run/env names its URL, CA and admin token). Each test makes a
// fresh namespace with a StatefulSet "pollers" (apps/v1, minimal valid spec: no kubelet runs
// it, the object just exists) and two ServiceAccounts with a Role each:
//   scaler: get, update on statefulsets/scale of "pollers" only (what the chart will render),
//   reader: get on statefulsets/scale of "pollers" only,
// then talks through detectInCluster + makeApiScaleClient with their tokens, as a pod would.

#include "k8s/api_client.h"
#include "k8s/in_cluster.h"
#include "k8s/statefulset_pool.h"
#include "k8s/statefulset_scale.h"
#include "tests/k8s/apiserver_env.h"
#include "tests/unit/net/tls_peer.h"

#include <arpa/inet.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <random>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

using namespace kesm;
using namespace kesm::k8s;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;
using SteadyTime = std::chrono::steady_clock;

using namespace kesm::k8s::apitest;

namespace {

constexpr const char* kStatefulSet = "pollers";

// A loopback port nothing listens on (bound, then closed): connects are refused.
std::uint16_t closedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string role(const std::string& name, const std::string& verbs) {
  return R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":")" +
         name +
         R"("},"rules":[{"apiGroups":["apps"],"resources":["statefulsets/scale"],
             "resourceNames":["pollers"],"verbs":)" +
         verbs + "}]}";
}

class Cluster {
public:
  Cluster() : env_(apiserverEnv()), ns_("kesm-scale-" + randomSuffix()) {
    InCluster admin_cluster{.host = "127.0.0.1",
                            .port = portOf(env_["APISERVER_URL"]),
                            .token_file = env_["APISERVER_TOKEN_FILE"],
                            .ca_file = env_["APISERVER_CA_FILE"],
                            .ns = ns_};
    admin_ = std::make_unique<ApiClient>(admin_cluster, ApiClientOptions{.timeout = 10s});
    call("POST", "/api/v1/namespaces",
         R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")" + ns_ + R"("}})");
    createStatefulSet(kStatefulSet, 1);
    createStatefulSet("other", 1);
    scaler_token_ = serviceAccount("scaler", role("scaler", R"(["get","update"])"));
    reader_token_ = serviceAccount("reader", role("reader", R"(["get"])"));

    char tmpl[] = "/tmp/kesm-sa-XXXXXX";
    sa_dir_ = ::mkdtemp(tmpl);
    std::ofstream(sa_dir_ + "/token") << scaler_token_;
    fs::copy_file(env_["APISERVER_CA_FILE"], sa_dir_ + "/ca.crt");
    std::ofstream(sa_dir_ + "/namespace") << ns_ << "\n";
  }
  ~Cluster() {
    fs::remove_all(sa_dir_);
    ::unsetenv("KUBERNETES_SERVICE_HOST");
    ::unsetenv("KUBERNETES_SERVICE_PORT");
    ::unsetenv("KESM_SERVICE_ACCOUNT_DIR");
  }

  // What a pod would see, through the real environment.
  InCluster detect(std::uint16_t port = 0) {
    ::setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    ::setenv("KUBERNETES_SERVICE_PORT",
             std::to_string(port != 0 ? port : portOf(env_["APISERVER_URL"])).c_str(), 1);
    ::setenv("KESM_SERVICE_ACCOUNT_DIR", sa_dir_.c_str(), 1);
    std::string why;
    auto cluster = detectInCluster(
        [](const std::string& name) -> std::optional<std::string> {
          const char* v = std::getenv(name.c_str());
          return v == nullptr ? std::nullopt : std::optional<std::string>(v);
        },
        why);
    INFO(why);
    REQUIRE(cluster);
    return *cluster;
  }

  void useToken(const std::string& token) { writeAtomic(sa_dir_ + "/token", token); }

  // The StatefulSet as the admin reads it.
  json::value statefulSet(const std::string& name = kStatefulSet) {
    return json::parse(call("GET", path(name), {}));
  }
  int specReplicas(const std::string& name = kStatefulSet) {
    const json::value sts = statefulSet(name);
    const auto* replicas = sts.at("spec").as_object().if_contains("replicas");
    return replicas == nullptr ? 0 : static_cast<int>(replicas->as_int64());
  }
  // Someone else scales it, as `kubectl scale` would (no resourceVersion).
  void adminScale(int replicas, const std::string& name = kStatefulSet) {
    call("PUT", path(name) + "/scale",
         R"({"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":")" + name +
             R"(","namespace":")" + ns_ + R"("},"spec":{"replicas":)" + std::to_string(replicas) +
             "}}");
  }
  void adminDelete(const std::string& name = kStatefulSet) { call("DELETE", path(name), {}); }
  // What the StatefulSet controller would do as pods appear: only the status moves.
  void adminSetStatusReplicas(int replicas) {
    json::value sts = statefulSet();
    sts.as_object()["status"] = json::object{{"replicas", replicas}, {"availableReplicas", 0}};
    call("PUT", path(kStatefulSet) + "/status", json::serialize(sts));
  }

  const std::string& ns() const { return ns_; }
  const std::string& scalerToken() const { return scaler_token_; }
  const std::string& readerToken() const { return reader_token_; }

private:
  std::string path(const std::string& name) const {
    return "/apis/apps/v1/namespaces/" + ns_ + "/statefulsets/" + name;
  }

  std::string call(const std::string& method, const std::string& path, const std::string& body) {
    const auto result = admin_->request(method, path, body);
    INFO(method << " " << path << ": " << result.error_message << " " << result.response.body);
    REQUIRE(result.transportOk());
    REQUIRE(result.response.status / 100 == 2);
    return result.response.body;
  }

  void createStatefulSet(const std::string& name, int replicas) {
    call("POST", "/apis/apps/v1/namespaces/" + ns_ + "/statefulsets",
         R"({"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":")" + name +
             R"("},"spec":{"replicas":)" + std::to_string(replicas) + R"(,"serviceName":")" + name +
             R"(","selector":{"matchLabels":{"app":")" + name +
             R"("}},"template":{"metadata":{"labels":{"app":")" + name +
             R"("}},"spec":{"containers":[{"name":"kesm","image":"kesm:0.1.0",
             "args":["poller","--mapping","orders"]}]}}}})");
  }

  // A ServiceAccount bound to the Role given; returns a token of it (TokenRequest API).
  std::string serviceAccount(const std::string& name, const std::string& role_json) {
    call("POST", "/api/v1/namespaces/" + ns_ + "/serviceaccounts",
         R"({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":")" + name + R"("}})");
    call("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns_ + "/roles", role_json);
    call("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns_ + "/rolebindings",
         R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",
             "metadata":{"name":")" +
             name + R"("},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role",
             "name":")" +
             name + R"("},"subjects":[{"kind":"ServiceAccount","name":")" + name +
             R"(","namespace":")" + ns_ + R"("}]})");
    const std::string answer =
        call("POST", "/api/v1/namespaces/" + ns_ + "/serviceaccounts/" + name + "/token",
             R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest",
                 "spec":{"expirationSeconds":3600}})");
    return std::string(json::parse(answer).at("status").at("token").as_string());
  }

  std::map<std::string, std::string> env_;
  std::string ns_;
  std::unique_ptr<ApiClient> admin_;
  std::string scaler_token_;
  std::string reader_token_;
  std::string sa_dir_;
};

template <class F> long long millisOf(F&& f) {
  const auto start = SteadyTime::now();
  f();
  return std::chrono::duration_cast<std::chrono::microseconds>(SteadyTime::now() - start).count() /
         1000;
}

} // namespace

TEST_CASE("statefulset scale: get and set replicas, read back by another client", "[k8s]") {
  Cluster cluster;
  const InCluster in = cluster.detect();
  auto client = makeApiScaleClient(in, in.ns, kStatefulSet, 5s);
  CHECK(client->describe() == cluster.ns() + "/pollers");

  auto got = client->get();
  INFO(got.message);
  REQUIRE(got.ok());
  CHECK(got.scale->spec_replicas == 1);
  CHECK(got.scale->status_replicas == 0); // no controller-manager: no pod is ever made
  CHECK(got.scale->selector == "app=pollers");

  ScaleCallResult set;
  const auto put_ms = millisOf([&] { set = client->set(3); });
  INFO(set.message);
  REQUIRE(set.ok());
  CHECK(set.scale->spec_replicas == 3);
  CHECK_FALSE(set.conflict_retried);
  CHECK(set.scale->resource_version != got.scale->resource_version);
  CHECK(cluster.specReplicas() == 3);

  // Zero is a count like any other (the server omits it in the answer).
  REQUIRE(client->set(0).ok());
  CHECK(cluster.specReplicas() == 0);
  auto fresh = makeApiScaleClient(in, in.ns, kStatefulSet, 5s);
  ScaleCallResult reread;
  const auto get_ms = millisOf([&] { reread = fresh->get(); });
  REQUIRE(reread.ok());
  CHECK(reread.scale->spec_replicas == 0);
  REQUIRE(client->set(2).ok());
  CHECK(cluster.specReplicas() == 2);
  WARN("scale GET (new connection) " << get_ms << " ms, PUT " << put_ms << " ms");
}

TEST_CASE("statefulset scale: a missing StatefulSet is not_found, for get and set, a name "
          "outside the Role is forbidden before that",
          "[k8s]") {
  Cluster cluster;
  const InCluster in = cluster.detect();
  auto client = makeApiScaleClient(in, in.ns, kStatefulSet, 5s);
  REQUIRE(client->get().ok());
  cluster.adminDelete();
  for (auto result : {client->get(), client->set(2)}) {
    INFO(result.message);
    CHECK(result.outcome == ScaleOutcome::kNotFound);
    CHECK_THAT(result.message, Catch::Contains("404 NotFound") &&
                                   Catch::Contains("no StatefulSet 'pollers' in namespace"));
  }
  // RBAC decides before the object is looked up: a name the Role does not list is 403.
  auto other = makeApiScaleClient(in, in.ns, "nope", 5s);
  CHECK(other->get().outcome == ScaleOutcome::kForbidden);
}

TEST_CASE("statefulset scale: a negative count is refused before sending, the count is kept",
          "[k8s]") {
  Cluster cluster;
  const InCluster in = cluster.detect();
  auto client = makeApiScaleClient(in, in.ns, kStatefulSet, 5s);
  const auto result = client->set(-1);
  CHECK(result.outcome == ScaleOutcome::kInvalid);
  CHECK_THAT(result.message, Catch::Contains("refused before sending"));
  CHECK(cluster.specReplicas() == 1);
}

// What the server answers to a count the client would never send: the body is rewritten on
// its way out (as by a broken proxy), so the 422 path is the real server's.
class NegatingTransport final : public ApiTransport {
public:
  explicit NegatingTransport(const InCluster& in) : client_(in, ApiClientOptions{.timeout = 5s}) {}
  net::HttpResult request(const std::string& method, const std::string& path,
                          const std::string& body) override {
    std::string sent = body;
    if (const auto at = sent.find("\"replicas\":"); at != std::string::npos) {
      sent.insert(at + 11, "-");
    }
    return client_.request(method, path, sent);
  }
  std::string describe() const override { return client_.describe(); }
  std::string tokenError() const override { return client_.tokenError(); }

private:
  ApiClient client_;
};

TEST_CASE("statefulset scale: the server's own 422 on a negative count is invalid", "[k8s]") {
  Cluster cluster;
  const InCluster in = cluster.detect();
  auto client = makeScaleClient(std::make_unique<NegatingTransport>(in), in.ns, kStatefulSet);
  const auto result = client->set(3);
  INFO(result.message);
  CHECK(result.outcome == ScaleOutcome::kInvalid);
  CHECK_THAT(result.message, Catch::Contains("HTTP 422 Invalid") &&
                                 Catch::Contains("spec.replicas: Invalid value: -3"));
  CHECK(cluster.specReplicas() == 1);
}

TEST_CASE("statefulset scale: a stale resourceVersion is a 409, re-read and written once more",
          "[k8s]") {
  Cluster cluster;
  const InCluster in = cluster.detect();
  auto client = makeApiScaleClient(in, in.ns, kStatefulSet, 5s);
  REQUIRE(client->get().ok());

  SECTION("someone else scaled it meanwhile: written over, and said") {
    cluster.adminScale(7);
    const auto result = client->set(4);
    INFO(result.message);
    REQUIRE(result.ok());
    CHECK(result.conflict_retried);
    REQUIRE(result.changed_elsewhere);
    CHECK(*result.changed_elsewhere == 7);
    CHECK(cluster.specReplicas() == 4);
  }
  SECTION("only its status moved (pods appearing): written, nothing to report") {
    cluster.adminSetStatusReplicas(1);
    const auto result = client->set(4);
    INFO(result.message);
    REQUIRE(result.ok());
    CHECK(result.conflict_retried);
    CHECK_FALSE(result.changed_elsewhere);
    CHECK(result.scale->status_replicas == 1);
    CHECK(cluster.specReplicas() == 4);
  }
}

TEST_CASE("statefulset scale: RBAC get+update on the one StatefulSet's scale is enough, and "
          "nothing more is allowed",
          "[k8s]") {
  Cluster cluster;
  const InCluster in = cluster.detect();
  auto client = makeApiScaleClient(in, in.ns, kStatefulSet, 5s);
  REQUIRE(client->get().ok());
  REQUIRE(client->set(5).ok());
  CHECK(cluster.specReplicas() == 5);

  // Another StatefulSet in the same namespace: refused, get and update alike.
  auto other = makeApiScaleClient(in, in.ns, "other", 5s);
  const auto other_get = other->get();
  CHECK(other_get.outcome == ScaleOutcome::kForbidden);
  CHECK_THAT(other_get.message, Catch::Contains("may not 'get' statefulsets/scale"));
  // The StatefulSet itself (not its scale): refused.
  ApiClient raw(in, ApiClientOptions{.timeout = 5s});
  const auto sts =
      raw.request("GET", "/apis/apps/v1/namespaces/" + in.ns + "/statefulsets/pollers");
  REQUIRE(sts.transportOk());
  CHECK(sts.response.status == 403);
  CHECK(cluster.specReplicas("other") == 1);
}

TEST_CASE("statefulset scale: a token allowed only get is forbidden to set, with the rule to add",
          "[k8s]") {
  Cluster cluster;
  cluster.useToken(cluster.readerToken());
  const InCluster in = cluster.detect();
  auto client = makeApiScaleClient(in, in.ns, kStatefulSet, 5s);
  REQUIRE(client->get().ok());
  const auto result = client->set(3);
  INFO(result.message);
  CHECK(result.outcome == ScaleOutcome::kForbidden);
  CHECK_THAT(result.message,
             Catch::Contains("PUT statefulsets/pollers/scale in " + cluster.ns()) &&
                 Catch::Contains("HTTP 403 Forbidden") &&
                 Catch::Contains("cannot update resource \"statefulsets/scale\"") &&
                 Catch::Contains("may not 'update' statefulsets/scale (API group apps) of "
                                 "'pollers' in namespace '" +
                                 cluster.ns() + "'") &&
                 Catch::Contains("verbs: [get, update]"));
  CHECK(cluster.specReplicas() == 1);
}

TEST_CASE("statefulset scale: an unknown token is unauthorized, a rotated one works at the next "
          "call",
          "[k8s]") {
  Cluster cluster;
  cluster.useToken("not-a-valid-token");
  const InCluster in = cluster.detect();
  auto client = makeApiScaleClient(in, in.ns, kStatefulSet, 5s);
  const auto refused = client->get();
  INFO(refused.message);
  CHECK(refused.outcome == ScaleOutcome::kUnauthorized);
  CHECK_THAT(refused.message, Catch::Contains("HTTP 401") && Catch::Contains("token"));
  cluster.useToken(cluster.scalerToken());
  CHECK(client->set(2).ok());
  CHECK(cluster.specReplicas() == 2);
}

TEST_CASE("statefulset scale: an API server that never answers is a timeout, one that refuses "
          "connections unreachable",
          "[k8s]") {
  Cluster cluster;
  {
    test::SilentListener silent;
    const InCluster in = cluster.detect(silent.port());
    auto client = makeApiScaleClient(in, in.ns, kStatefulSet, 1s);
    const auto start = SteadyTime::now();
    const auto result = client->get();
    const auto elapsed = SteadyTime::now() - start;
    INFO(result.message);
    CHECK(result.outcome == ScaleOutcome::kTimeout);
    CHECK(elapsed >= 990ms);
    CHECK(elapsed < 2s);
  }
  const InCluster in = cluster.detect(closedPort());
  auto client = makeApiScaleClient(in, in.ns, kStatefulSet, 1s);
  const auto result = client->set(3);
  INFO(result.message);
  CHECK(result.outcome == ScaleOutcome::kUnreachable);
}

// A controller-like loop over the pool: what `kesm controller` will do at each evaluation.
TEST_CASE("statefulset pool: scaleTo 3, a 403 held and retried, scaleTo 1, the replicas are "
          "right at the end and shutdown leaves them",
          "[k8s]") {
  Cluster cluster;
  const InCluster in = cluster.detect();
  metrics::Registry registry;
  metrics::ScaleProbe probe(registry, "orders");
  std::vector<std::string> errors;
  StatefulSetPool pool(makeApiScaleClient(in, in.ns, kStatefulSet, 5s),
                       StatefulSetPoolOptions{.mapping = "orders",
                                              .max_replicas = 10,
                                              .probe = &probe,
                                              .log = [&](LogLevel level, const std::string& line) {
                                                if (level == LogLevel::kError) {
                                                  errors.push_back(line);
                                                }
                                                log(level, "pool", line);
                                              }});
  const auto seeded = pool.seed();
  INFO(seeded.error);
  REQUIRE(seeded.ok());
  CHECK(seeded.active == 1);

  auto r = pool.scaleTo(3);
  INFO(r.error);
  REQUIRE(r.ok());
  CHECK(cluster.specReplicas() == 3);
  CHECK(pool.scaleTo(3).ok()); // unchanged: a read, no write
  CHECK(probe.writes("ok").Value() == 1);

  // The Role loses update (its token swapped for the reader's): the count is held.
  cluster.useToken(cluster.readerToken());
  r = pool.scaleTo(1);
  CHECK_FALSE(r.ok());
  CHECK(r.active == 3);
  CHECK_THAT(r.error, Catch::Contains("403") && Catch::Contains("may not 'update'"));
  r = pool.scaleTo(1);
  CHECK_FALSE(r.ok());
  CHECK(cluster.specReplicas() == 3); // the pods were left alone
  CHECK(pool.pendingWrite() == 1);
  CHECK(pool.status().spawn_error == r.error);
  CHECK(errors.size() == 1); // once per episode
  CHECK(probe.writes("forbidden").Value() == 2);
  CHECK(probe.write_pending.Value() == 1);

  // Rights back: the same decision is written at the next evaluation.
  cluster.useToken(cluster.scalerToken());
  r = pool.scaleTo(1);
  REQUIRE(r.ok());
  CHECK(r.active == 1);
  CHECK(cluster.specReplicas() == 1);
  CHECK_FALSE(pool.pendingWrite());
  CHECK(pool.status().spawn_error.empty());
  CHECK(probe.write_pending.Value() == 0);

  // The StatefulSet controller's view arrives in status(): one pod made of one asked.
  cluster.adminSetStatusReplicas(1);
  CHECK(pool.scaleTo(1).ok());
  CHECK(pool.status().running == 1);

  CHECK(pool.shutdown(30s));
  CHECK(cluster.specReplicas() == 1);
  CHECK_FALSE(pool.scaleTo(0).ok());
  CHECK(cluster.specReplicas() == 1);
}
