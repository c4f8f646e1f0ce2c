// What the controller learns from poller pods (k8s/pod_status_scraper.h) against a REAL
// kube-apiserver (the ctest fixture kesm_apiserver) and real HTTP: each test makes a fresh
// namespace, a ServiceAccount "controller" whose Role allows only `list` on endpointslices
// (what the chart renders for `kesm controller`), and one EndpointSlice per fake pod, labelled
// kubernetes.io/service-name=kesm-orders, pointing at a small HTTP server on this machine that
// answers /status as `kesm poller` does. The API server refuses loopback endpoint addresses, so
// the servers listen on a non-loopback address of this machine (getifaddrs). No kubelet runs:
// the slices are written by the test, as the EndpointSlice controller would write them.

#include "k8s/api_client.h"
#include "k8s/in_cluster.h"
#include "k8s/pod_status_scraper.h"
#include "net/http.h"
#include "tests/k8s/apiserver_env.h"

#include <arpa/inet.h>
#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ifaddrs.h>
#include <map>
#include <net/if.h>
#include <netinet/in.h>
#include <random>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace kesm;
using namespace kesm::k8s;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;
using SteadyTime = std::chrono::steady_clock;

using namespace kesm::k8s::apitest;

namespace {

constexpr const char* kService = "kesm-orders";

// A non-loopback, non-link-local address of an interface that is up, of `family`; empty when
// there is none.
std::string localAddress(int family) {
  ifaddrs* all = nullptr;
  if (::getifaddrs(&all) != 0) {
    return {};
  }
  std::string found;
  for (ifaddrs* i = all; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != family ||
        (i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0) {
      continue;
    }
    char text[INET6_ADDRSTRLEN] = {};
    if (family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text,
                  sizeof text);
    } else {
      const auto* a6 = &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr;
      if (IN6_IS_ADDR_LINKLOCAL(a6) || IN6_IS_ADDR_LOOPBACK(a6)) {
        continue;
      }
      ::inet_ntop(AF_INET6, a6, text, sizeof text);
    }
    found = text;
  }
  ::freeifaddrs(all);
  return found;
}

std::string ipv4() {
  const std::string a = localAddress(AF_INET);
  INFO("the API server refuses loopback endpoints: this test needs an IPv4 address on a "
       "non-loopback interface that is up");
  REQUIRE_FALSE(a.empty());
  return a;
}

// `kesm poller`'s /status, as app/poller_process.cc writes it.
std::string pollerStatus(std::int64_t count, double seconds, const std::string& state = "Enabled",
                         const std::string& reason = "") {
  std::string s = R"({"mode":"poller","mapping":"orders","instanceId":"x","staticMembership":)"
                  R"(false,"state":")" +
                  state + "\"";
  if (!reason.empty()) {
    s += R"(,"disabledReason":")" + reason + "\"";
  }
  return s +
         R"(,"pollers":[],"events":{"polled":0,"invoked":0,"failedInvoke":0,"committed":0},)"
         R"("invocations":{"count":)" +
         std::to_string(count) + R"(,"seconds":)" + std::to_string(seconds) + "}}";
}

// A pod's HTTP server: answers GET /status with what it was last told.
class FakePod {
public:
  explicit FakePod(const std::string& address, std::string body = pollerStatus(0, 0))
      : body_(std::move(body)),
        server_((address.find(':') != std::string::npos ? "[" + address + "]" : address) + ":0",
                [this](const net::HttpRequest& request) {
                  net::HttpResponse r;
                  std::lock_guard lock(mutex_);
                  reads_++;
                  if (request.target != "/status") {
                    r.status = 404;
                    return r;
                  }
                  r.headers = {{"Content-Type", "application/json"}};
                  r.body = body_;
                  return r;
                }) {}
  void answer(std::string body) {
    std::lock_guard lock(mutex_);
    body_ = std::move(body);
  }
  std::uint16_t port() const { return server_.port(); }
  int reads() {
    std::lock_guard lock(mutex_);
    return reads_;
  }

private:
  std::mutex mutex_;
  std::string body_;
  int reads_ = 0;
  net::HttpServer server_;
};

// A TCP socket listening on address:0 (IPv4); its port in `port`.
int listenOn(const std::string& address, std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  REQUIRE(::inet_pton(AF_INET, address.c_str(), &addr.sin_addr) == 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  port = ntohs(addr.sin_port);
  return fd;
}

// A listening socket that never accepts: connects succeed (the backlog), nothing answers.
class SilentPod {
public:
  explicit SilentPod(const std::string& address) : fd_(listenOn(address, port_)) {}
  ~SilentPod() { ::close(fd_); }
  std::uint16_t port() const { return port_; }

private:
  std::uint16_t port_ = 0;
  int fd_;
};

// Answers every connection with bytes that are not HTTP, then closes it.
class GarbagePod {
public:
  explicit GarbagePod(const std::string& address) : fd_(listenOn(address, port_)) {
    thread_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) {
          return; // shut down
        }
        const char junk[] = "\x16\x03\x01 SSH-2.0-not-http \xff\xfe\r\n\r\n";
        (void)!::write(c, junk, sizeof junk - 1);
        ::close(c);
      }
    });
  }
  ~GarbagePod() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }

private:
  std::uint16_t port_ = 0;
  int fd_;
  std::thread thread_;
};

// Every pod's error of a round, for INFO.
std::string errorsOf(const ScrapeRound& round) {
  std::string out = round.list_error;
  for (const auto& [pod, error] : round.errors) {
    out += "\n" + pod + ": " + error;
  }
  return out;
}

class Cluster {
public:
  Cluster() : env_(apiserverEnv()), ns_("kesm-pods-" + randomSuffix()) {
    admin_ = std::make_unique<ApiClient>(cluster(env_["APISERVER_TOKEN_FILE"]),
                                         ApiClientOptions{.timeout = 10s});
    call("POST", "/api/v1/namespaces",
         R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")" + ns_ + R"("}})");
    char tmpl[] = "/tmp/kesm-pods-sa-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    std::ofstream(dir_ + "/controller.token") << serviceAccount("controller", R"(["list"])");
    std::ofstream(dir_ + "/other.token") << serviceAccount("other", R"(["get"])");
  }
  ~Cluster() { fs::remove_all(dir_); }

  // What the controller's pod would use: its token, the API server's address and CA.
  InCluster controller() { return cluster(dir_ + "/controller.token"); }
  // A token whose Role does not allow `list` on endpointslices.
  InCluster withoutList() { return cluster(dir_ + "/other.token"); }

  // One slice per pod (each pod has its own port here); returns the slice's name.
  std::string addSlice(const std::string& pod, const std::string& address, std::uint16_t port,
                       const std::string& service = kService, bool ready = true) {
    const bool v6 = address.find(':') != std::string::npos;
    const std::string name = service + "-" + pod;
    call("POST", slicesPath(),
         R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":")" +
             name + R"(","labels":{"kubernetes.io/service-name":")" + service +
             R"("}},"addressType":")" + (v6 ? "IPv6" : "IPv4") +
             R"(","endpoints":[{"addresses":[")" + address + R"("],"conditions":{"ready":)" +
             (ready ? "true" : "false") + R"(},"hostname":")" + pod +
             R"(","targetRef":{"kind":"Pod","namespace":")" + ns_ + R"(","name":")" + pod +
             R"("}}],"ports":[{"name":"http","protocol":"TCP","port":)" + std::to_string(port) +
             "}]}");
    return name;
  }
  void addSliceJson(const std::string& slice) { call("POST", slicesPath(), slice); }
  void deleteSlice(const std::string& name) { call("DELETE", slicesPath() + "/" + name, ""); }

  const std::string& ns() const { return ns_; }

private:
  InCluster cluster(const std::string& token_file) {
    return InCluster{.host = "127.0.0.1",
                     .port = portOf(env_["APISERVER_URL"]),
                     .token_file = token_file,
                     .ca_file = env_["APISERVER_CA_FILE"],
                     .ns = ns_};
  }
  std::string slicesPath() const {
    return "/apis/discovery.k8s.io/v1/namespaces/" + ns_ + "/endpointslices";
  }
  std::string call(const std::string& method, const std::string& path, const std::string& body) {
    const auto result = admin_->request(method, path, body);
    INFO(method << " " << path << ": " << result.error_message << " " << result.response.body);
    REQUIRE(result.transportOk());
    REQUIRE(result.response.status / 100 == 2);
    return result.response.body;
  }
  // A ServiceAccount whose Role allows `verbs` on endpointslices; returns a token of it.
  std::string serviceAccount(const std::string& name, const std::string& verbs) {
    call("POST", "/api/v1/namespaces/" + ns_ + "/serviceaccounts",
         R"({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":")" + name + R"("}})");
    call("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns_ + "/roles",
         R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":")" +
             name +
             R"("},"rules":[{"apiGroups":["discovery.k8s.io"],"resources":["endpointslices"],)"
             R"("verbs":)" +
             verbs + "}]}");
    call("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns_ + "/rolebindings",
         R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":)"
         R"({"name":")" +
             name +
             R"("},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":")" +
             name + R"("},"subjects":[{"kind":"ServiceAccount","name":")" + name +
             R"(","namespace":")" + ns_ + R"("}]})");
    const std::string answer =
        call("POST", "/api/v1/namespaces/" + ns_ + "/serviceaccounts/" + name + "/token",
             R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest",)"
             R"("spec":{"expirationSeconds":3600}})");
    return std::string(json::parse(answer).at("status").at("token").as_string());
  }

  std::map<std::string, std::string> env_;
  std::string ns_;
  std::unique_ptr<ApiClient> admin_;
  std::string dir_;
};

struct Logs {
  std::mutex mutex;
  std::vector<std::string> lines;
  int containing(const std::string& text) {
    std::lock_guard lock(mutex);
    int n = 0;
    for (const auto& l : lines) {
      n += l.find(text) != std::string::npos;
    }
    return n;
  }
};

PodStatusScraperOptions options(const Cluster& cluster, metrics::PodStatusProbe* probe,
                                Logs& logs) {
  PodStatusScraperOptions o;
  o.mapping = "orders";
  o.ns = cluster.ns();
  o.service = kService;
  o.probe = probe;
  o.log = [&logs](LogLevel, const std::string& line) {
    std::lock_guard lock(logs.mutex);
    logs.lines.push_back(line);
  };
  return o;
}

} // namespace

TEST_CASE("pod status: the scraper lists the Service's slices and sums the pods' /status, "
          "across a restart and a departure",
          "[k8s]") {
  Cluster cluster;
  const std::string ip = ipv4();
  FakePod p0(ip, pollerStatus(10, 1.0));
  FakePod p1(ip, pollerStatus(20, 2.0));
  FakePod p2(ip, pollerStatus(5, 0.5));
  FakePod stranger(ip, pollerStatus(1000, 100)); // another Service's pod: never read
  cluster.addSlice("kesm-orders-0", ip, p0.port());
  cluster.addSlice("kesm-orders-1", ip, p1.port(), kService, false); // not ready: still read
  const std::string slice2 = cluster.addSlice("kesm-orders-2", ip, p2.port());
  cluster.addSlice("kesm-payments-0", ip, stranger.port(), "kesm-payments");

  metrics::Registry registry;
  metrics::PodStatusProbe probe(registry, "orders");
  Logs logs;
  auto scraper = makeApiPodStatusScraper(cluster.controller(), options(cluster, &probe, logs), 5s);
  auto round = scraper->scrapeOnce();
  INFO(errorsOf(round));
  REQUIRE(round.list_ok);
  CHECK(round.endpoints == 3);
  CHECK(round.warnings.empty());
  CHECK(round.outcomes.size() == 3);
  CHECK(round.outcomes.at("kesm-orders-1") == PodReadOutcome::kOk);
  CHECK(scraper->invocationTotals().count == 35);
  CHECK(scraper->invocationTotals().seconds == Approx(3.5));
  CHECK(stranger.reads() == 0);
  CHECK(registry.serialize().find("kesm_pods_seen{mapping=\"orders\"} 3") != std::string::npos);

  // kesm-orders-1 restarts (its counter drops to 4), kesm-orders-0 does 5 more.
  p0.answer(pollerStatus(15, 1.5));
  p1.answer(pollerStatus(4, 0.4));
  scraper->scrapeOnce();
  CHECK(scraper->invocationTotals().count == 44);
  CHECK(scraper->invocationTotals().seconds == Approx(4.4));

  // kesm-orders-2 leaves the Service (scaled down): what it did stays counted.
  cluster.deleteSlice(slice2);
  p0.answer(pollerStatus(16, 1.6));
  round = scraper->scrapeOnce();
  CHECK(round.endpoints == 2);
  CHECK(scraper->invocationTotals().count == 45);
  CHECK(scraper->podsSeen() == 2);
  CHECK(probe.reads("ok").Value() == 8);
  CHECK(probe.list_errors.Value() == 0);
  CHECK(logs.containing("unreadable") == 0);
}

TEST_CASE("pod status: hostile pods (garbage, a huge body, silence, not HTTP) cost one read "
          "timeout, not a stalled round",
          "[k8s]") {
  Cluster cluster;
  const std::string ip = ipv4();
  FakePod good(ip, pollerStatus(7, 0.7));
  FakePod garbage(ip, "this is not JSON {{{");
  FakePod huge(ip, std::string(8 * 1024 * 1024, '['));
  SilentPod silent(ip);
  GarbagePod not_http(ip);
  cluster.addSlice("p-good", ip, good.port());
  cluster.addSlice("p-garbage", ip, garbage.port());
  cluster.addSlice("p-huge", ip, huge.port());
  cluster.addSlice("p-silent", ip, silent.port());
  cluster.addSlice("p-not-http", ip, not_http.port());

  metrics::Registry registry;
  metrics::PodStatusProbe probe(registry, "orders");
  Logs logs;
  auto o = options(cluster, &probe, logs);
  o.read_timeout = 1000ms;
  o.round_timeout = 3000ms;
  auto scraper = makeApiPodStatusScraper(cluster.controller(), o, 5s);
  const auto started = SteadyTime::now();
  const auto round = scraper->scrapeOnce();
  const auto took = SteadyTime::now() - started;
  INFO(errorsOf(round));
  REQUIRE(round.list_ok);
  CHECK(round.outcomes.at("p-good") == PodReadOutcome::kOk);
  CHECK(round.outcomes.at("p-garbage") == PodReadOutcome::kMalformed);
  CHECK(round.outcomes.at("p-huge") == PodReadOutcome::kTooLarge);
  CHECK(round.outcomes.at("p-silent") == PodReadOutcome::kTimeout);
  CHECK(round.outcomes.at("p-not-http") == PodReadOutcome::kIoError);
  // The reads ran side by side: the silent pod's one timeout, plus the list.
  CHECK(took < 2500ms);
  CHECK(took >= 1000ms);
  CHECK(scraper->invocationTotals().count == 7);
  for (const char* outcome : {"ok", "malformed", "too_large", "timeout", "io_error"}) {
    INFO(outcome);
    CHECK(probe.reads(outcome).Value() == 1);
  }
  CHECK(logs.containing("pod p-silent unreadable (timeout)") == 1);
  CHECK(logs.containing("pod p-huge unreadable (too_large)") == 1);
}

TEST_CASE("pod status: a Disabled pod reaches on_fatal once, from the scraper's thread", "[k8s]") {
  Cluster cluster;
  const std::string ip = ipv4();
  FakePod p0(ip, pollerStatus(3, 0.3));
  FakePod p1(ip, pollerStatus(2, 0.2));
  cluster.addSlice("kesm-orders-0", ip, p0.port());
  cluster.addSlice("kesm-orders-1", ip, p1.port());

  Logs logs;
  auto o = options(cluster, nullptr, logs);
  o.interval = 200ms;
  std::mutex mutex;
  std::vector<std::string> fatals;
  o.on_fatal = [&](const std::string& reason) {
    std::lock_guard lock(mutex);
    fatals.push_back(reason);
  };
  auto scraper = makeApiPodStatusScraper(cluster.controller(), o, 5s);
  scraper->start();
  const auto waitFor = [](auto condition) {
    const auto deadline = SteadyTime::now() + 20s;
    while (!condition() && SteadyTime::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    return condition();
  };
  REQUIRE(waitFor([&] { return scraper->invocationTotals().count == 5; }));
  p1.answer(pollerStatus(3, 0.3, "Disabled", "function answered 404: not found"));
  REQUIRE(waitFor([&] {
    std::lock_guard lock(mutex);
    return !fatals.empty();
  }));
  const int reads_then = p1.reads();
  REQUIRE(waitFor([&] { return p1.reads() >= reads_then + 2; })); // two more rounds
  scraper->stop();
  std::lock_guard lock(mutex);
  REQUIRE(fatals.size() == 1);
  CHECK_THAT(fatals[0], Catch::Contains("pod kesm-orders-1 of Service " + cluster.ns() +
                                        "/kesm-orders reports mapping orders Disabled: "
                                        "function answered 404: not found"));
  CHECK(scraper->invocationTotals().count == 6);
}

TEST_CASE("pod status: a 403 on the list, or an API server that is gone, holds the totals and "
          "is logged once",
          "[k8s]") {
  Cluster cluster;
  const std::string ip = ipv4();
  FakePod p0(ip, pollerStatus(3, 0.3));
  cluster.addSlice("kesm-orders-0", ip, p0.port());

  metrics::Registry registry;
  metrics::PodStatusProbe probe(registry, "orders");
  Logs logs;
  auto scraper = makeApiPodStatusScraper(cluster.withoutList(), options(cluster, &probe, logs), 5s);
  for (int i = 0; i < 3; ++i) {
    const auto round = scraper->scrapeOnce();
    CHECK_FALSE(round.list_ok);
    CHECK_THAT(round.list_error, Catch::Contains("HTTP 403 Forbidden") &&
                                     Catch::Contains("cannot list resource \"endpointslices\"") &&
                                     Catch::Contains("needs `list` on `endpointslices` (apiGroup "
                                                     "discovery.k8s.io) in namespace " +
                                                     cluster.ns()));
  }
  CHECK(scraper->invocationTotals().count == 0);
  CHECK(p0.reads() == 0);
  CHECK(probe.list_errors.Value() == 3);
  CHECK(logs.containing("cannot list the pods of Service") == 1);

  // An API server that is gone (port 1 refuses): the round ends with the connect error.
  InCluster gone = cluster.controller();
  gone.port = 1;
  auto lost = makeApiPodStatusScraper(gone, options(cluster, &probe, logs), 2s);
  const auto round = lost->scrapeOnce();
  CHECK_FALSE(round.list_ok);
  CHECK_FALSE(round.list_error.empty());
  CHECK(round.took < 2500ms);
}

TEST_CASE("pod status: an IPv6 pod is read through a bracketed URL", "[k8s]") {
  const std::string ip6 = localAddress(AF_INET6);
  if (ip6.empty()) {
    WARN("no global IPv6 address on this machine: the IPv6 read is not exercised");
    return;
  }
  Cluster cluster;
  FakePod p0(ip6, pollerStatus(9, 0.9));
  cluster.addSlice("kesm-orders-0", ip6, p0.port());
  Logs logs;
  auto scraper = makeApiPodStatusScraper(cluster.controller(), options(cluster, nullptr, logs), 5s);
  const auto round = scraper->scrapeOnce();
  INFO(errorsOf(round));
  REQUIRE(round.list_ok);
  CHECK(round.outcomes.at("kesm-orders-0") == PodReadOutcome::kOk);
  CHECK(scraper->invocationTotals().count == 9);
}

TEST_CASE("pod status: 500 pods in one Service are read in one round within its deadline",
          "[k8s]") {
  // One HTTP server stands for 500 pods: one slice of 500 endpoints (pods p-000 .. p-499, the
  // same address and port), as a StatefulSet of 500 replicas would have in 5 slices.
  Cluster cluster;
  const std::string ip = ipv4();
  FakePod server(ip, pollerStatus(2, 0.25));
  constexpr int kPods = 500;
  std::string endpoints;
  for (int i = 0; i < kPods; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "p-%03d", i);
    endpoints += std::string(endpoints.empty() ? "" : ",") + R"({"addresses":[")" + ip +
                 R"("],"targetRef":{"kind":"Pod","name":")" + name + R"("}})";
  }
  cluster.addSliceJson(R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",)"
                       R"("metadata":{"name":"big","labels":{"kubernetes.io/service-name":")" +
                       std::string(kService) + R"("}},"addressType":"IPv4","endpoints":[)" +
                       endpoints + R"(],"ports":[{"name":"http","port":)" +
                       std::to_string(server.port()) + "}]}");
  Logs logs;
  auto scraper = makeApiPodStatusScraper(cluster.controller(), options(cluster, nullptr, logs), 5s);
  const auto round = scraper->scrapeOnce();
  INFO(errorsOf(round));
  REQUIRE(round.list_ok);
  CHECK(round.endpoints == kPods);
  CHECK(round.errors.empty());
  CHECK(scraper->invocationTotals().count == 2 * kPods);
  CHECK(server.reads() == kPods);
  CHECK(round.took < 10s);
  std::printf("pod status: a round of %d pods (16 reads at a time, a fresh connection each) "
              "took %lld ms\n",
              kPods, static_cast<long long>(round.took.count()));
}
