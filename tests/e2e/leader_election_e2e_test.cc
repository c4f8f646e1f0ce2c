// Leader election on a real Kubernetes API server (tests/k8s/apiserver.sh) and a real Kafka
// broker: kesm replicas given what the Helm chart gives a pod (a service account token, its
// CA and namespace files, KUBERNETES_SERVICE_HOST/PORT, POD_NAME), one config, one Lease.
// There is no kubelet: the test starts the replicas as processes.

#include "config/config.h"
#include "e2e_harness.h"
#include "kafka/kafka.h"
#include "kubelet.h"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

using Steady = std::chrono::steady_clock;

constexpr int kPartitions = 4;
// Short timings, so a test sees a failover in seconds: 4 s lease, 3 s renew deadline.
const std::string kElection = "leaderElection:\n"
                              "  enabled: true\n"
                              "  leaseDuration: 4s\n"
                              "  renewDeadline: 3s\n"
                              "  retryPeriod: 500ms\n";
constexpr auto kLeaseDuration = std::chrono::seconds(4);
constexpr auto kRenewDeadline = std::chrono::seconds(3);

double secondsSince(Steady::time_point t) {
  return std::chrono::duration<double>(Steady::now() - t).count();
}

std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

// The API server the ctest fixture started ($KESM_K8S_DIR/run/env), used as its admin.
struct ApiServer {
  std::string url, ca_file, admin_token, dir;
  int port = 0;

  static ApiServer shared() {
    const ApiServerInfo info = sharedApiServer(); // throws when the fixture did not run
    ApiServer a;
    a.url = info.url;
    a.ca_file = info.ca_file;
    a.admin_token = info.admin_token;
    a.dir = std::getenv("KESM_K8S_DIR");
    a.port = info.port;
    return a;
  }

  // An admin call; returns the body, the HTTP status in `status`.
  std::string call(const std::string& method, const std::string& path, const std::string& body,
                   int& status) const {
    const std::string body_file = writeTempFile("k8s-body.json", body);
    int rc = 0;
    std::string out =
        runCommand("curl -sS --max-time 10 --cacert " + shellQuote(ca_file) + " -H " +
                       shellQuote("Authorization: Bearer " + admin_token) +
                       " -H 'Content-Type: application/json' -X " + method +
                       (body.empty() ? "" : " --data-binary @" + shellQuote(body_file)) +
                       " -w '\\n%{http_code}' " + shellQuote(url + path),
                   rc);
    auto nl = out.rfind('\n');
    status = nl == std::string::npos ? 0 : std::atoi(out.c_str() + nl + 1);
    return nl == std::string::npos ? out : out.substr(0, nl);
  }
  std::string mustCall(const std::string& method, const std::string& path,
                       const std::string& body) const {
    int status = 0;
    std::string out = call(method, path, body, status);
    INFO(method << " " << path << " -> " << status << ": " << out);
    REQUIRE(status / 100 == 2);
    return out;
  }

  // The pid of kube-apiserver (tests/k8s/apiserver.sh status).
  pid_t apiserverPid() const {
    int rc = 0;
    std::string out = runCommand(std::string(KESM_K8S_SH) + " status --dir " + shellQuote(dir), rc);
    auto at = out.find("apiserver pid ");
    REQUIRE(at != std::string::npos);
    return static_cast<pid_t>(std::atoi(out.c_str() + at + 14));
  }
};

// A namespace with the ServiceAccount, Role and RoleBinding the chart makes for leader
// election, and a folder laid out as the pod's service-account mount.
struct PodIdentity {
  std::string ns, sa_dir;
  std::vector<std::string> env(const ApiServer& api, const std::string& pod) const {
    return {"KUBERNETES_SERVICE_HOST=127.0.0.1",
            "KUBERNETES_SERVICE_PORT=" + std::to_string(api.port),
            "KESM_SERVICE_ACCOUNT_DIR=" + sa_dir, "POD_NAME=" + pod};
  }
};

PodIdentity makePodIdentity(const ApiServer& api, const std::string& lease) {
  PodIdentity p;
  p.ns = uniqueName("kesm-le");
  std::transform(p.ns.begin(), p.ns.end(), p.ns.begin(), [](char c) {
    return c == '_' || c == '.' ? '-' : static_cast<char>(std::tolower(c));
  });
  api.mustCall("POST", "/api/v1/namespaces",
               R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")" + p.ns + R"("}})");
  const std::string nsp = "/api/v1/namespaces/" + p.ns;
  api.mustCall("POST", nsp + "/serviceaccounts",
               R"({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"kesm"}})");
  const std::string rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/" + p.ns;
  api.mustCall("POST", rbac + "/roles",
               R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role",)"
               R"("metadata":{"name":"kesm-leader"},"rules":[)"
               R"({"apiGroups":["coordination.k8s.io"],"resources":["leases"],"verbs":["create"]},)"
               R"({"apiGroups":["coordination.k8s.io"],"resources":["leases"],)"
               R"("resourceNames":[")" +
                   lease + R"("],"verbs":["get","update"]}]})");
  api.mustCall(
      "POST", rbac + "/rolebindings",
      R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",)"
      R"("metadata":{"name":"kesm-leader"},)"
      R"("roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"kesm-leader"},)"
      R"("subjects":[{"kind":"ServiceAccount","name":"kesm","namespace":")" +
          p.ns + R"("}]})");
  auto answer = api.mustCall(
      "POST", nsp + "/serviceaccounts/kesm/token",
      R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}})");
  const std::string token =
      json::value_to<std::string>(json::parse(answer).at("status").at("token"));
  p.sa_dir = fs::temp_directory_path() / uniqueName("kesm-sa");
  fs::create_directories(p.sa_dir);
  std::ofstream(p.sa_dir + "/token") << token;
  std::ofstream(p.sa_dir + "/namespace") << p.ns;
  fs::copy_file(api.ca_file, p.sa_dir + "/ca.crt");
  return p;
}

// What one replica's /status says.
struct ReplicaView {
  bool answered = false;
  std::string role; // leader, standby
  int active = 0;   // pollers counted toward the desired number
};

ReplicaView view(std::uint16_t port) {
  ReplicaView v;
  auto got = httpGet(port, "/status");
  if (got.status != 200) {
    return v;
  }
  v.answered = true;
  auto doc = json::parse(got.body).as_object();
  if (auto* le = doc.if_contains("leaderElection")) {
    v.role = json::value_to<std::string>(le->at("role"));
  }
  for (const auto& m : doc.at("mappings").as_array()) {
    v.active += static_cast<int>(m.at("pollers").at("active").to_number<double>());
  }
  return v;
}

struct Replica {
  std::uint16_t port;
  std::string log;
  std::unique_ptr<KesmProcess> process;
};

Replica startReplica(const ApiServer& api, const PodIdentity& pod, const std::string& name,
                     const MappingYaml& mapping) {
  Replica r;
  r.port = freePort();
  const std::string yaml = kElection + e2eConfigYaml(r.port, {mapping});
  r.log = writeTempFile("e2e-le-" + name + ".log", "");
  r.process = std::make_unique<KesmProcess>(
      std::vector<std::string>{"run", "--verbose", "--config",
                               writeTempFile("e2e-le-" + name + ".yaml", yaml)},
      r.log, pod.env(api, name));
  return r;
}

} // namespace

TEST_CASE("Two replicas, one Lease: one leads, never more pollers than partitions, a kill -9 of "
          "the leader is taken over by the standby, nothing lost",
          "[e2e][k8s]") {
  const ApiServer api = ApiServer::shared();
  const std::string topic = uniqueName("le-failover");
  const std::string bootstrap = sharedBroker();
  createTopic(bootstrap, topic, kPartitions);
  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  // 100 ms per batch of 20, one batch per poller: the burst needs more than one poller.
  fn.latency = 100ms;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  auto mapping = e2eMapping(topic, bootstrap, topic, function.url(), 1, 8);
  mapping.librdkafka.erase("debug");
  mapping.batching.set("batchSize", 20);
  mapping.scaling.set("maxConcurrentBatches", 1);
  const auto pod = makePodIdentity(api, "kesm");

  Replica a = startReplica(api, pod, "kesm-a", mapping);
  DumpLogOnFailure dump_a(a.log);
  REQUIRE(waitUntil(60s, [&] { return view(a.port).role == "leader"; }));
  Replica b = startReplica(api, pod, "kesm-b", mapping);
  DumpLogOnFailure dump_b(b.log);
  REQUIRE(waitUntil(60s, [&] { return view(b.port).role == "standby"; }));
  CHECK(httpGet(b.port, "/readyz").status == 200); // a standby is ready: it does its job
  CHECK(httpGet(b.port, "/status").body.find("\"state\":\"Standby\"") != std::string::npos);

  // A burst: the leader scales to the partition count; the standby runs nothing.
  constexpr int kFirst = 1500;
  produceNumbered(bootstrap, topic, kPartitions, kFirst);
  int most = 0;
  bool standby_ran = false;
  REQUIRE(waitUntil(
      120s,
      [&] {
        auto va = view(a.port), vb = view(b.port);
        most = std::max(most, va.active + vb.active);
        standby_ran = standby_ran || vb.active > 0;
        return deliveries.distinct() == std::size_t{kPartitions} * kFirst;
      },
      200ms));
  CHECK(most <= kPartitions);
  CHECK(most >= 2); // it did scale out
  CHECK_FALSE(standby_ran);

  // kill -9 of the leader in the middle of a second burst: the Lease is not released, the
  // standby waits out the lease duration seen on its own clock, then takes over.
  constexpr int kSecond = 1500;
  produceNumbered(bootstrap, topic, kPartitions, kSecond);
  REQUIRE(
      waitUntil(60s, [&] { return deliveries.distinct() > std::size_t{kPartitions} * kFirst; }));
  const auto killed_at = Steady::now();
  a.process->signal(SIGKILL);
  REQUIRE(a.process->wait(10s) >= 0);
  const std::size_t seen_at_kill = deliveries.total();
  double took_over_s = -1, first_delivery_s = -1;
  REQUIRE(waitUntil(
      60s,
      [&] {
        if (took_over_s < 0 && view(b.port).role == "leader") {
          took_over_s = secondsSince(killed_at);
        }
        if (first_delivery_s < 0 && took_over_s >= 0 && deliveries.total() > seen_at_kill) {
          first_delivery_s = secondsSince(killed_at);
        }
        return first_delivery_s >= 0;
      },
      50ms));
  // Reported for docs/kubernetes.md: kill to standby leading, kill to its first delivery.
  WARN("failover: standby leads " << took_over_s << " s after kill -9, first delivery after "
                                  << first_delivery_s << " s");
  // The lease duration plus one retry period (with its jitter) and one evaluation interval.
  CHECK(took_over_s <= std::chrono::duration<double>(kLeaseDuration).count() + 0.6 + 1.0 + 1.0);
  // Not before the Lease could have expired: a second leader never overlaps the first.
  CHECK(took_over_s >= std::chrono::duration<double>(kLeaseDuration).count() - 1.0);

  const std::size_t sent = std::size_t{kPartitions} * (kFirst + kSecond);
  REQUIRE(waitUntil(
      180s, [&] { return deliveries.distinct() == sent; }, 200ms));
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(deliveries.missing(p, kFirst + kSecond).empty());
  }
  CHECK(deliveries.orderViolation() == "");
  b.process->signal(SIGTERM);
  CHECK(b.process->wait(60s) == 0);
  // A graceful stop gives the Lease up.
  auto lease = json::parse(api.mustCall(
      "GET", "/apis/coordination.k8s.io/v1/namespaces/" + pod.ns + "/leases/kesm", ""));
  CHECK(json::value_to<std::string>(lease.at("spec").as_object().contains("holderIdentity")
                                        ? lease.at("spec").at("holderIdentity")
                                        : json::value("")) == "");
}

TEST_CASE("The API server stops answering: the leader runs until its renew deadline, then stops "
          "its pollers, and leads again when the API server is back",
          "[e2e][k8s]") {
  const ApiServer api = ApiServer::shared();
  const std::string topic = uniqueName("le-outage");
  const std::string bootstrap = sharedBroker();
  createTopic(bootstrap, topic, kPartitions);
  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.latency = 20ms;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  auto mapping = e2eMapping(topic, bootstrap, topic, function.url(), 2, 4);
  mapping.librdkafka.erase("debug");
  const auto pod = makePodIdentity(api, "kesm");
  Replica a = startReplica(api, pod, "kesm-a", mapping);
  DumpLogOnFailure dump(a.log);
  REQUIRE(waitUntil(60s, [&] {
    auto v = view(a.port);
    return v.role == "leader" && v.active >= 2;
  }));

  // SIGSTOP: every Lease call now times out, the way a partitioned API server looks.
  const pid_t apiserver = api.apiserverPid();
  REQUIRE(::kill(apiserver, SIGSTOP) == 0);
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{apiserver};
  const auto stopped_at = Steady::now();
  double pollers_gone_s = -1;
  bool ran_until_deadline = true;
  REQUIRE(waitUntil(
      30s,
      [&] {
        auto v = view(a.port);
        const double t = secondsSince(stopped_at);
        // The last renew was at most one retry period (500 ms) before the stop.
        if (t < std::chrono::duration<double>(kRenewDeadline).count() - 0.6 && v.active == 0) {
          ran_until_deadline = false;
        }
        if (v.role == "standby" && v.active == 0) {
          pollers_gone_s = t;
          return true;
        }
        return false;
      },
      100ms));
  WARN("API server stopped: pollers gone after " << pollers_gone_s << " s");
  CHECK(ran_until_deadline);
  // Gone before a standby could take the Lease: the lease duration since the last renew.
  CHECK(pollers_gone_s <= std::chrono::duration<double>(kLeaseDuration).count());
  CHECK(a.process->running());

  // Records produced while nobody leads are delivered once it leads again.
  produceNumbered(bootstrap, topic, kPartitions, 500);
  std::this_thread::sleep_for(1s); // the outage goes on: nothing may be delivered meanwhile
  CHECK(deliveries.total() == 0);
  REQUIRE(::kill(apiserver, SIGCONT) == 0);
  REQUIRE(waitUntil(60s, [&] { return view(a.port).role == "leader"; }));
  REQUIRE(waitUntil(
      120s, [&] { return deliveries.distinct() == std::size_t{kPartitions} * 500; }, 200ms));
  for (int p = 0; p < kPartitions; ++p) {
    CHECK(deliveries.missing(p, 500).empty());
  }
  a.process->signal(SIGTERM);
  CHECK(a.process->wait(60s) == 0);
}
