// The in-cluster client and the Lease store against a REAL kube-apiserver (the ctest fixture
// kesm_apiserver; $KESM_K8S_DIR/run/env names its URL, CA and admin token). Each test makes a
// fresh namespace, a ServiceAccount with a Role on leases, and a service-account folder as a
// pod would have it, then talks through detectInCluster + makeApiLeaseStore only.

#include "k8s/api_client.h"
#include "k8s/in_cluster.h"
#include "k8s/lease.h"
#include "tests/k8s/apiserver_env.h"
#include "tests/unit/net/tls_peer.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <vector>

using namespace kesm;
using namespace kesm::k8s;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using SteadyTime = std::chrono::steady_clock;

using namespace kesm::k8s::apitest;

namespace {

constexpr const char* kLeaseName = "kesm-leader";

// A namespace with ServiceAccount "kesm" whose Role allows: create leases (any name: create
// cannot be limited by name), get/update the lease kesm-leader only. Set up with the admin
// token through ApiClient itself.
class Cluster {
public:
  Cluster() : env_(apiserverEnv()), ns_("kesm-lease-" + randomSuffix()) {
    InCluster admin_cluster{.host = "127.0.0.1",
                            .port = portOf(env_["APISERVER_URL"]),
                            .token_file = env_["APISERVER_TOKEN_FILE"],
                            .ca_file = env_["APISERVER_CA_FILE"],
                            .ns = ns_};
    admin_ = std::make_unique<ApiClient>(admin_cluster, ApiClientOptions{.timeout = 10s});
    post("/api/v1/namespaces",
         R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")" + ns_ + R"("}})");
    post("/api/v1/namespaces/" + ns_ + "/serviceaccounts",
         R"({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"kesm"}})");
    post("/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns_ + "/roles",
         R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role",
             "metadata":{"name":"kesm-leader-election"},
             "rules":[{"apiGroups":["coordination.k8s.io"],"resources":["leases"],
                       "verbs":["create"]},
                      {"apiGroups":["coordination.k8s.io"],"resources":["leases"],
                       "resourceNames":["kesm-leader"],"verbs":["get","update"]}]})");
    post("/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns_ + "/rolebindings",
         R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",
             "metadata":{"name":"kesm-leader-election"},
             "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role",
                        "name":"kesm-leader-election"},
             "subjects":[{"kind":"ServiceAccount","name":"kesm","namespace":")" +
             ns_ + R"("}]})");
    const std::string answer =
        post("/api/v1/namespaces/" + ns_ + "/serviceaccounts/kesm/token",
             R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest",
                 "spec":{"expirationSeconds":3600}})");
    token_ = std::string(boost::json::parse(answer).at("status").at("token").as_string());

    char tmpl[] = "/tmp/kesm-sa-XXXXXX";
    sa_dir_ = ::mkdtemp(tmpl);
    std::ofstream(sa_dir_ + "/token") << token_;
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
    CHECK(cluster->ns == ns_);
    return *cluster;
  }

  const std::string& ns() const { return ns_; }
  const std::string& token() const { return token_; }
  const std::string& saDir() const { return sa_dir_; }

private:
  std::string post(const std::string& path, const std::string& body) {
    const auto result = admin_->request("POST", path, body);
    INFO("POST " << path << ": " << result.error_message << " " << result.response.body);
    REQUIRE(result.transportOk());
    REQUIRE(result.response.status / 100 == 2);
    return result.response.body;
  }

  std::map<std::string, std::string> env_;
  std::string ns_;
  std::unique_ptr<ApiClient> admin_;
  std::string token_;
  std::string sa_dir_;
};

LeaseRecord holding(const std::string& holder) {
  const auto now = formatMicroTime(std::chrono::system_clock::now());
  return LeaseRecord{.holder = holder,
                     .lease_duration_seconds = 15,
                     .acquire_time = now,
                     .renew_time = now,
                     .lease_transitions = 0,
                     .resource_version = ""};
}

} // namespace

TEST_CASE("lease store: get, create, update and their conflicts on kube-apiserver", "[k8s]") {
  Cluster cluster;
  const InCluster in = cluster.detect();
  auto store = makeApiLeaseStore(in, in.ns, kLeaseName, 5s);
  CHECK(store->describe() == cluster.ns() + "/" + kLeaseName);

  auto got = store->get();
  INFO(got.message);
  CHECK(got.outcome == LeaseOutcome::kNotFound);

  const auto start = SteadyTime::now();
  auto created = store->create(holding("kesm-0"));
  INFO(created.message);
  REQUIRE(created.outcome == LeaseOutcome::kOk);
  REQUIRE(created.lease);
  CHECK_FALSE(created.lease->resource_version.empty());
  CHECK(created.lease->holder == "kesm-0");
  CHECK(created.lease->lease_duration_seconds == 15);
  WARN("create took "
       << std::chrono::duration_cast<std::chrono::milliseconds>(SteadyTime::now() - start).count()
       << " ms");

  auto again = store->create(holding("kesm-1"));
  INFO(again.message);
  CHECK(again.outcome == LeaseOutcome::kConflict);
  CHECK_THAT(again.message, Catch::Contains("409 AlreadyExists"));

  got = store->get();
  REQUIRE(got.outcome == LeaseOutcome::kOk);
  CHECK(got.lease->resource_version == created.lease->resource_version);
  CHECK(got.lease->renew_time == created.lease->renew_time);

  LeaseRecord renewed = *got.lease;
  renewed.renew_time = formatMicroTime(std::chrono::system_clock::now());
  auto updated = store->update(renewed);
  INFO(updated.message);
  REQUIRE(updated.outcome == LeaseOutcome::kOk);
  CHECK(updated.lease->resource_version != created.lease->resource_version);
  CHECK(updated.lease->renew_time == renewed.renew_time);

  // Another replica's view: the resourceVersion it read before our update.
  LeaseRecord stale = *created.lease;
  stale.holder = "kesm-1";
  stale.lease_transitions = 1;
  auto refused = store->update(stale);
  INFO(refused.message);
  CHECK(refused.outcome == LeaseOutcome::kConflict);
  CHECK(store->get().lease->holder == "kesm-0");

  // The Role allows get/update on kesm-leader only.
  auto other = makeApiLeaseStore(in, in.ns, "not-allowed", 5s);
  auto forbidden = other->get();
  INFO(forbidden.message);
  CHECK(forbidden.outcome == LeaseOutcome::kForbidden);
  CHECK_THAT(forbidden.message, Catch::Contains("403 Forbidden"));
}

TEST_CASE("lease store: one keep-alive connection for many requests", "[k8s]") {
  Cluster cluster;
  const InCluster in = cluster.detect();
  ApiClient client(in, ApiClientOptions{.timeout = 5s});
  const std::string path =
      "/apis/coordination.k8s.io/v1/namespaces/" + in.ns + "/leases/" + kLeaseName;
  const auto start = SteadyTime::now();
  constexpr int kRequests = 20;
  for (int i = 0; i < kRequests; ++i) {
    const auto result = client.request("GET", path);
    REQUIRE(result.transportOk());
    CHECK(result.response.status == 404);
  }
  const auto per_request =
      std::chrono::duration_cast<std::chrono::microseconds>(SteadyTime::now() - start) / kRequests;
  CHECK(client.connectionsOpened() == 1);
  WARN("GET on a kept-alive TLS connection: " << per_request.count() << " us per request");

  // For comparison: a new client, hence a new TCP connection and TLS handshake, each time.
  const auto fresh_start = SteadyTime::now();
  constexpr int kFresh = 5;
  for (int i = 0; i < kFresh; ++i) {
    ApiClient fresh(in, ApiClientOptions{.timeout = 5s});
    REQUIRE(fresh.request("GET", path).transportOk());
    CHECK(fresh.connectionsOpened() == 1);
  }
  const auto per_fresh =
      std::chrono::duration_cast<std::chrono::microseconds>(SteadyTime::now() - fresh_start) /
      kFresh;
  WARN("GET on a new TLS connection: " << per_fresh.count() << " us per request");
}

TEST_CASE("lease store: a rotated token is used at the next call, without a restart", "[k8s]") {
  Cluster cluster;
  // Start with a token the API server does not know.
  writeAtomic(cluster.saDir() + "/token", "not-a-valid-token");
  const InCluster in = cluster.detect();
  auto store = makeApiLeaseStore(in, in.ns, kLeaseName, 5s);
  auto refused = store->get();
  INFO(refused.message);
  CHECK(refused.outcome == LeaseOutcome::kForbidden);
  CHECK_THAT(refused.message, Catch::Contains("401"));

  writeAtomic(cluster.saDir() + "/token", cluster.token());
  auto got = store->get();
  INFO(got.message);
  CHECK(got.outcome == LeaseOutcome::kNotFound);
  CHECK(store->create(holding("kesm-0")).outcome == LeaseOutcome::kOk);

  // A rewrite that stat cannot see (same inode, size and mtime): the 401 makes the client
  // re-read the file and retry once with the new token, inside the same call.
  const std::string path = cluster.saDir() + "/token";
  writeAtomic(path, std::string(cluster.token().size(), 'x'));
  CHECK(store->get().outcome == LeaseOutcome::kForbidden);
  const auto mtime = fs::last_write_time(path);
  std::ofstream(path, std::ios::trunc) << cluster.token();
  fs::last_write_time(path, mtime);
  auto retried = store->get();
  INFO(retried.message);
  CHECK(retried.outcome == LeaseOutcome::kOk);
}

TEST_CASE("lease store: an API server certificate from another CA is kUnavailable, TLS", "[k8s]") {
  Cluster cluster;
  test::TestPki pki;
  fs::copy_file(pki.path("other-ca.pem"), cluster.saDir() + "/ca.crt",
                fs::copy_options::overwrite_existing);
  const InCluster in = cluster.detect();
  auto store = makeApiLeaseStore(in, in.ns, kLeaseName, 5s);
  auto result = store->get();
  CHECK(result.outcome == LeaseOutcome::kUnavailable);
  CHECK_THAT(result.message,
             Catch::Contains("TLS handshake") && Catch::Contains("certificate verify failed"));
}

TEST_CASE("lease store: an API server address that never answers is kUnavailable in time",
          "[k8s]") {
  Cluster cluster;
  test::SilentListener silent;
  const InCluster in = cluster.detect(silent.port());
  auto store = makeApiLeaseStore(in, in.ns, kLeaseName, 1s);
  for (const auto& [name, call] : std::vector<std::pair<std::string, std::function<LeaseResult()>>>{
           {"get", [&] { return store->get(); }},
           {"create", [&] { return store->create(holding("kesm-0")); }},
           {"update", [&] { return store->update(holding("kesm-0")); }}}) {
    const auto start = SteadyTime::now();
    const auto result = call();
    const auto elapsed = SteadyTime::now() - start;
    INFO(name << ": " << result.message);
    CHECK(result.outcome == LeaseOutcome::kUnavailable);
    CHECK_THAT(result.message, Catch::Contains("timed out"));
    // The client's deadline is whole milliseconds: it may end a fraction of one early.
    CHECK(elapsed >= 990ms);
    CHECK(elapsed < 2s);
  }
}
