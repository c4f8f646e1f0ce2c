// Pods mode end to end (docs/kubernetes.md, "Pods mode, proven"): `kesm controller` as a
// process with what its pod gets (service-account files, KUBERNETES_SERVICE_HOST/PORT, a
// Lease), the real API server, a FakeKubelet (kubelet.h) that keeps `kesm poller` processes
// equal to the StatefulSet's spec.replicas, and the real broker. Each test: a burst on a
// 4-partition topic; the controller raises replicas, pods start and drain the lag, replicas
// come back to the minimum; everything is delivered in per-partition order. Then the
// controller killed with kill -9 and restarted mid-burst, the leader killed and a standby
// replica taking over, and the API server refusing the scale write for a while.

#include "e2e_harness.h"
#include "kubelet.h"

#include <algorithm>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <csignal>
#include <fstream>
#include <functional>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <unistd.h>

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;
namespace json = boost::json;
using Steady = std::chrono::steady_clock;

namespace {

constexpr int kPartitions = 4;
constexpr int kMinPods = 1;
constexpr int kMaxPods = kPartitions; // pollersPerPod 1: never more pollers than partitions
constexpr const char* kSts = "pollers";
constexpr const char* kMapping = "m";
// From "pod created" to its process starting: the image pull and scheduling of a real pod,
// kept short so the tests stay short (the simulator models 5-30 s, docs/benchmarks.md).
constexpr auto kPodStart = 2s;
// 100 ms per batch of 20, one batch in flight per poller: 200 records/s per poller.
constexpr auto kFunctionLatency = 100ms;

const std::string kElection = "leaderElection:\n"
                              "  enabled: true\n"
                              "  leaseDuration: 4s\n"
                              "  renewDeadline: 3s\n"
                              "  retryPeriod: 500ms\n";

const std::string kLeaseRules =
    R"([{"apiGroups":["coordination.k8s.io"],"resources":["leases"],"verbs":["create"]},)"
    R"({"apiGroups":["coordination.k8s.io"],"resources":["leases"],"resourceNames":["kesm"],)"
    R"("verbs":["get","update"]}])";
std::string scaleRules(const std::string& verbs) {
  return R"([{"apiGroups":["apps"],"resources":["statefulsets/scale"],"resourceNames":[")" +
         std::string(kSts) + R"("],"verbs":)" + verbs + "}]";
}
const std::string kSliceRules =
    R"([{"apiGroups":["discovery.k8s.io"],"resources":["endpointslices"],"verbs":["list"]}])";

double seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A sample that is absent counts as 0 (a counter not incremented yet).
double metricOr0(std::uint16_t port, const std::string& name,
                 const std::map<std::string, std::string>& labels) {
  const double v = metric(httpGet(port, "/metrics").body, name, labels);
  return std::isnan(v) ? 0 : v;
}

// What a process used so far, from /proc: its peak resident set and its CPU time.
struct ProcessUse {
  double peak_rss_mib = -1;
  double cpu_seconds = -1;
};
ProcessUse processUse(pid_t pid) {
  ProcessUse use;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) {
      use.peak_rss_mib = std::stod(line.substr(6)) / 1024; // kB
    }
  }
  // utime and stime: fields 14 and 15, counted after the ")" that ends the command name.
  const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i >= 14) {
      ticks += std::stod(field);
    }
  }
  use.cpu_seconds = ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  return use;
}

// Everything one test needs: namespace and RBAC, topic, function, config, kubelet, controller.
class PodsMode {
public:
  explicit PodsMode(const std::string& name)
      : api_(sharedApiServer()), admin_(api_), ns_(makeTestNamespace(admin_, api_, name)),
        bootstrap_(sharedBroker()), topic_(uniqueName(name)), function_(functionOptions()) {
    grantRole(admin_, ns_.ns, "kesm-leader", kLeaseRules);
    grantRole(admin_, ns_.ns, "kesm-scale", scaleRules(R"(["get","update"])"));
    grantRole(admin_, ns_.ns, "kesm-endpoints", kSliceRules);
    createHeadlessService(admin_, ns_.ns, kSts);
    createStatefulSet(admin_, ns_.ns, kSts, kSts, kMinPods);
    createTopic(bootstrap_, topic_, kPartitions);

    auto m = e2eMapping(kMapping, bootstrap_, topic_, function_.url(), kMinPods, kMaxPods);
    m.librdkafka.erase("debug");
    m.source.set("consumerGroupId", topic_);
    m.batching.set("batchSize", 20);
    m.scaling.set("maxConcurrentBatches", 1);
    m.extra_lines = std::string("    pods:\n      statefulSet: ") + kSts +
                    "\n      service: " + kSts +
                    "\n      pollersPerPod: 1\n      statusInterval: 1s\n";
    mapping_ = m;
    controller_port_ = freePort();
    config_ =
        writeTempFile("pods-" + topic_ + ".yaml", kElection + e2eConfigYaml(controller_port_, {m}));
    origin_ = Steady::now();
    kubelet_ = std::make_unique<FakeKubelet>(
        api_, FakeKubeletOptions{.ns = ns_.ns,
                                 .stateful_set = kSts,
                                 .service = kSts,
                                 .poller_args = {"--config", config_, "--mapping", kMapping},
                                 .start_delay = kPodStart,
                                 .log_prefix = "pods-" + topic_});
    controller_log_ = writeTempFile("pods-" + topic_ + "-controller.log", "");
  }

  ~PodsMode() {
    for (auto* c : {controller_.get(), standby_.get()}) {
      if (c != nullptr) {
        c->signal(SIGTERM);
        c->wait(30s);
      }
    }
  }

  // A second replica of the controller (the pod kesm-controller-1): the same mapping, its
  // own port, competing for the same Lease.
  void startStandby() {
    standby_port_ = freePort();
    const std::string config = writeTempFile("pods-" + topic_ + "-1.yaml",
                                             kElection + e2eConfigYaml(standby_port_, {mapping_}));
    standby_log_ = writeTempFile("pods-" + topic_ + "-controller-1.log", "");
    standby_ = std::make_unique<KesmProcess>(
        std::vector<std::string>{"controller", "--verbose", "--config", config}, standby_log_,
        ns_.podEnv("kesm-controller-1"));
  }
  std::string standbyRole() { return role(standby_port_); }
  const std::string& standbyLog() const { return standby_log_; }
  std::uint16_t standbyPort() const { return standby_port_; }

  void startController() {
    controller_ = std::make_unique<KesmProcess>(
        std::vector<std::string>{"controller", "--verbose", "--config", config_}, controller_log_,
        ns_.podEnv("kesm-controller-0"));
  }
  bool controllerLeads() { return role(controller_port_) == "leader"; }
  ChildProcess& controller() { return *controller_; }

  int specReplicas() {
    const auto sts = json::parse(
        admin_.mustCall("GET", "/apis/apps/v1/namespaces/" + ns_.ns + "/statefulsets/" + kSts));
    const auto* r = sts.at("spec").as_object().if_contains("replicas");
    return r == nullptr ? 0 : r->to_number<int>();
  }

  FakeKubelet& kubelet() { return *kubelet_; }
  K8sAdmin& admin() { return admin_; }
  Deliveries& deliveries() { return deliveries_; }
  const std::string& ns() const { return ns_.ns; }
  const std::string& topic() const { return topic_; }
  const std::string& bootstrap() const { return bootstrap_; }
  const std::string& controllerLog() const { return controller_log_; }
  std::uint16_t controllerPort() const { return controller_port_; }
  Steady::time_point origin() const { return origin_; }

private:
  // "leader", "standby", or "" while the process does not answer.
  static std::string role(std::uint16_t port) {
    const std::string body = httpGet(port, "/status").body;
    for (const char* r : {"leader", "standby"}) {
      if (body.find(std::string("\"role\":\"") + r + "\"") != std::string::npos) {
        return r;
      }
    }
    return "";
  }

  samplefn::SampleFunctionOptions functionOptions() {
    samplefn::SampleFunctionOptions fn;
    fn.latency = kFunctionLatency;
    fn.on_batch = [this](const std::vector<samplefn::ReceivedRecord>& b) { deliveries_.add(b); };
    return fn;
  }

  ApiServerInfo api_;
  K8sAdmin admin_;
  TestNamespace ns_;
  std::string bootstrap_;
  std::string topic_;
  Deliveries deliveries_; // before function_: its handler adds here
  samplefn::SampleFunction function_;
  std::uint16_t controller_port_ = 0;
  std::string config_;
  std::string controller_log_;
  Steady::time_point origin_;
  std::unique_ptr<FakeKubelet> kubelet_;
  std::unique_ptr<KesmProcess> controller_;
  MappingYaml mapping_;
  std::uint16_t standby_port_ = 0;
  std::string standby_log_;
  std::unique_ptr<KesmProcess> standby_;
};

// The burst's milestones from the kubelet's timeline, in seconds after `burst`.
struct Milestones {
  int peak = 0;        // the most replicas asked for
  double raised = -1;  // spec.replicas first above the minimum
  double running = -1; // as many pods ready as the peak asked for
  double scaled = -1;  // spec.replicas back at the minimum
  double gone = -1;    // the last pod above the minimum stopped
};

Milestones milestones(const std::vector<TimelineEntry>& timeline, Steady::time_point burst) {
  Milestones m;
  for (const auto& e : timeline) {
    if (e.at >= burst && e.event == KubeletEvent::kReplicas) {
      m.peak = std::max(m.peak, e.value);
    }
  }
  std::set<int> ready;
  bool peaked = false;
  for (const auto& e : timeline) {
    if (e.event == KubeletEvent::kReady) {
      ready.insert(e.ordinal);
    } else if (e.event == KubeletEvent::kUnready || e.event == KubeletEvent::kStopped ||
               e.event == KubeletEvent::kCrashed) {
      ready.erase(e.ordinal);
    }
    if (e.at < burst) {
      continue;
    }
    const double t = seconds(e.at - burst);
    if (e.event == KubeletEvent::kReplicas && e.value > kMinPods && m.raised < 0) {
      m.raised = t;
    }
    if (e.event == KubeletEvent::kReplicas && e.value == m.peak) {
      peaked = true;
    }
    if (peaked && m.running < 0 && static_cast<int>(ready.size()) >= m.peak) {
      m.running = t;
    }
    if (peaked && e.event == KubeletEvent::kReplicas && e.value == kMinPods && m.scaled < 0) {
      m.scaled = t;
    }
    if (m.scaled >= 0 && e.event == KubeletEvent::kStopped && e.ordinal >= kMinPods) {
      m.gone = t;
    }
  }
  return m;
}

std::string describe(const Milestones& m, double drained) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << "burst -> replicas raised " << m.raised << " s, -> "
      << m.peak << " pods ready " << m.running << " s, -> drained " << drained
      << " s, -> replicas back to " << kMinPods << " " << m.scaled << " s (pods gone " << m.gone
      << " s)";
  return out.str();
}

// Waits until every record of the burst(s) was delivered; the seconds it took from `from`.
double waitDrained(PodsMode& rig, std::size_t total, Steady::time_point from,
                   std::chrono::seconds timeout) {
  double drained = -1;
  REQUIRE(waitUntil(
      timeout,
      [&] {
        if (rig.deliveries().distinct() == total) {
          drained = seconds(Steady::now() - from);
          return true;
        }
        return false;
      },
      100ms));
  return drained;
}

void checkEverythingDelivered(PodsMode& rig, int per_partition) {
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(rig.deliveries().missing(p, per_partition).empty());
  }
  CHECK(rig.deliveries().orderViolation() == "");
  // The group's committed offsets reached the end: no lag left.
  for (const auto& [p, row] : kafkaToolOffsets(sharedBrokerDir(), rig.topic(), rig.topic())) {
    INFO("partition " << p);
    CHECK(row.lag == 0);
  }
}

void checkNeverMoreThanPartitions(PodsMode& rig) {
  const auto seen = rig.kubelet().replicasSeen();
  CHECK(*std::max_element(seen.begin(), seen.end()) <= kMaxPods);
  CHECK(rig.kubelet().mostAlive() <= kPartitions); // processes, terminating ones included
  CHECK_FALSE(rig.kubelet().missedGeneration());   // so `seen` is every value written
}

std::string sequence(const std::vector<int>& values) {
  std::ostringstream out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    out << (i == 0 ? "" : " ") << values[i];
  }
  return out.str();
}

// A burst; the leading controller SIGKILLed once it scaled out; then `after_kill` and a new
// leader (`leads`: a restart, or a standby). Checks that the pods drain on meanwhile, that no
// value of spec.replicas below the count at the kill is written from the kill until 5 s after
// the new leader leads (its first evaluations: a leader seeded from the minimum would write it
// then, stopping pods mid-burst), the scale back to the minimum, and that nothing is lost.
void killLeaderMidBurst(PodsMode& rig, const std::function<void()>& after_kill,
                        const std::function<bool()>& leads_now, const std::string& new_leader) {
  constexpr int kBurst = 4000;
  const auto burst = Steady::now(); // the controller sees lag while the records are produced
  produceNumbered(rig.bootstrap(), rig.topic(), kPartitions, kBurst);
  // Mid-burst: scaled out and the new pods consuming.
  REQUIRE(waitUntil(90s, [&] { return rig.specReplicas() >= 2 && rig.kubelet().ready() >= 2; }));
  REQUIRE(rig.deliveries().distinct() < std::size_t{kPartitions} * kBurst / 2);
  rig.controller().signal(SIGKILL);
  REQUIRE(rig.controller().wait(10s) >= 0);
  const auto killed = Steady::now();
  const int at_kill = rig.specReplicas();
  const std::size_t delivered_at_kill = rig.deliveries().distinct();

  after_kill();
  REQUIRE(waitUntil(60s, leads_now));
  const auto leads = Steady::now();
  CHECK(rig.deliveries().distinct() > delivered_at_kill); // the pods kept draining

  const double drained =
      waitDrained(rig, std::size_t{kPartitions} * kBurst, burst, std::chrono::seconds(240));
  REQUIRE(waitUntil(
      120s, [&] { return rig.specReplicas() == kMinPods && rig.kubelet().alive() == kMinPods; }));

  REQUIRE(Steady::now() > leads + 5s);
  std::vector<int> around;
  for (const auto& e : rig.kubelet().timeline()) {
    if (e.event == KubeletEvent::kReplicas && e.at >= killed && e.at <= leads + 5s) {
      around.push_back(e.value);
    }
  }
  const auto m = milestones(rig.kubelet().timeline(), burst);
  WARN("kill -9 of the leading controller at "
       << seconds(killed - burst) << " s into the burst with " << at_kill << " replicas, "
       << new_leader << " leading after " << seconds(leads - killed) << " s; replicas "
       << sequence(rig.kubelet().replicasSeen()) << ", around the takeover: " << sequence(around)
       << "; " << describe(m, drained) << "\n"
       << rig.kubelet().report(burst));
  for (int v : around) {
    CHECK(v >= at_kill); // no drop at the takeover
  }
  checkNeverMoreThanPartitions(rig);
  checkEverythingDelivered(rig, kBurst);
  CHECK(rig.kubelet().errors().empty());
}

} // namespace

TEST_CASE("pods mode: a burst raises the StatefulSet's replicas, the pods drain it, replicas "
          "come back to the minimum, everything delivered in order, never more pollers than "
          "partitions",
          "[e2e][k8s]") {
  PodsMode rig("pods-burst");
  DumpKubeletOnFailure dump_kubelet(rig.kubelet(), rig.origin());
  DumpLogOnFailure dump_controller(rig.controllerLog());
  REQUIRE(waitUntil(60s, [&] { return rig.kubelet().ready() == kMinPods; }));
  rig.startController();
  REQUIRE(waitUntil(60s, [&] { return rig.controllerLeads(); }));
  // Seeded from spec.replicas: the controller leaves the running mapping alone.
  CHECK(rig.specReplicas() == kMinPods);

  constexpr int kBurst = 3000;      // 60 s for one poller, 15 s for four
  const auto burst = Steady::now(); // the controller sees lag while the records are produced
  produceNumbered(rig.bootstrap(), rig.topic(), kPartitions, kBurst);
  const double drained =
      waitDrained(rig, std::size_t{kPartitions} * kBurst, burst, std::chrono::seconds(240));
  REQUIRE(waitUntil(
      120s, [&] { return rig.specReplicas() == kMinPods && rig.kubelet().alive() == kMinPods; }));

  const auto m = milestones(rig.kubelet().timeline(), burst);
  // The chart's controller.resources: requests 50m / 64Mi, limits 500m / 256Mi.
  const ProcessUse use = processUse(rig.controller().pid());
  const double lived = seconds(Steady::now() - rig.origin());
  WARN("pods mode burst of " << kPartitions * kBurst << " records, pod start " << seconds(kPodStart)
                             << " s: " << describe(m, drained) << "; replicas "
                             << sequence(rig.kubelet().replicasSeen())
                             << "; the controller: peak RSS " << use.peak_rss_mib << " MiB, CPU "
                             << use.cpu_seconds << " s in " << lived << " s\n"
                             << rig.kubelet().report(burst));
  CHECK(use.peak_rss_mib > 0);
  CHECK(use.peak_rss_mib < 256); // the memory limit: above it the pod is OOM-killed
  CHECK(m.peak >= 2);            // it did scale out
  CHECK(m.raised >= 0);
  CHECK(m.running >= m.raised + seconds(kPodStart));
  CHECK(m.scaled >= 0);
  checkNeverMoreThanPartitions(rig);
  checkEverythingDelivered(rig, kBurst);
  CHECK(rig.kubelet().errors().empty());
  CHECK(metricOr0(rig.controllerPort(), "kesm_scale_writes_total",
                  {{"mapping", kMapping}, {"outcome", "ok"}}) >= 2);
  // The channel: the controller listed the pods through their EndpointSlices and read their
  // /status (the invocation times the decision sizes by).
  CHECK(metricOr0(rig.controllerPort(), "kesm_pod_status_reads_total",
                  {{"mapping", kMapping}, {"outcome", "ok"}}) >= 2);
  CHECK(metricOr0(rig.controllerPort(), "kesm_pod_status_list_errors_total",
                  {{"mapping", kMapping}}) == 0);
  CHECK(metricOr0(rig.controllerPort(), "kesm_pods_seen", {{"mapping", kMapping}}) >= 1);
}

TEST_CASE("pods mode: the controller killed with kill -9 mid-burst and restarted leaves "
          "spec.replicas as it was, nothing lost",
          "[e2e][k8s]") {
  PodsMode rig("pods-kill");
  DumpKubeletOnFailure dump_kubelet(rig.kubelet(), rig.origin());
  DumpLogOnFailure dump_controller(rig.controllerLog());
  REQUIRE(waitUntil(60s, [&] { return rig.kubelet().ready() == kMinPods; }));
  rig.startController();
  REQUIRE(waitUntil(60s, [&] { return rig.controllerLeads(); }));
  // The same pod's container restarted (same POD_NAME): it holds the Lease again at once.
  killLeaderMidBurst(
      rig, [&] { rig.startController(); }, [&] { return rig.controllerLeads(); },
      "the controller restarted");
}

TEST_CASE("pods mode: the leading controller killed with kill -9 mid-burst, the standby replica "
          "takes the Lease, keeps spec.replicas, scales back down, nothing lost",
          "[e2e][k8s]") {
  PodsMode rig("pods-failover");
  DumpKubeletOnFailure dump_kubelet(rig.kubelet(), rig.origin());
  DumpLogOnFailure dump_controller(rig.controllerLog());
  REQUIRE(waitUntil(60s, [&] { return rig.kubelet().ready() == kMinPods; }));
  rig.startController();
  REQUIRE(waitUntil(60s, [&] { return rig.controllerLeads(); }));
  rig.startStandby();
  DumpLogOnFailure dump_standby(rig.standbyLog());
  REQUIRE(waitUntil(60s, [&] { return rig.standbyRole() == "standby"; }));
  const std::map<std::string, std::string> ok{{"mapping", kMapping}, {"outcome", "ok"}};
  CHECK(metricOr0(rig.standbyPort(), "kesm_scale_writes_total", ok) == 0); // a standby writes none
  // The Lease expires (leaseDuration 4 s) and the standby takes it.
  killLeaderMidBurst(
      rig, [] {}, [&] { return rig.standbyRole() == "leader"; }, "the standby");
  // The pods came back to the minimum by the new leader's own write.
  CHECK(metricOr0(rig.standbyPort(), "kesm_scale_writes_total", ok) >= 1);
}

TEST_CASE("pods mode: the API server refusing the scale write (403) holds the count and logs it, "
          "the pods keep draining, and the held count is written once allowed",
          "[e2e][k8s]") {
  PodsMode rig("pods-403");
  DumpKubeletOnFailure dump_kubelet(rig.kubelet(), rig.origin());
  DumpLogOnFailure dump_controller(rig.controllerLog());
  REQUIRE(waitUntil(60s, [&] { return rig.kubelet().ready() == kMinPods; }));
  rig.startController();
  REQUIRE(waitUntil(60s, [&] { return rig.controllerLeads(); }));

  // The Role keeps `get` and loses `update` on statefulsets/scale.
  replaceRole(rig.admin(), rig.ns(), "kesm-scale", scaleRules(R"(["get"])"));
  const std::map<std::string, std::string> forbidden{{"mapping", kMapping},
                                                     {"outcome", "forbidden"}};
  const std::map<std::string, std::string> pending{{"mapping", kMapping}};
  constexpr int kBurst = 3000;
  const auto burst = Steady::now(); // the controller sees lag while the records are produced
  produceNumbered(rig.bootstrap(), rig.topic(), kPartitions, kBurst);
  REQUIRE(waitUntil(60s, [&] {
    return metricOr0(rig.controllerPort(), "kesm_scale_writes_total", forbidden) >= 2 &&
           metricOr0(rig.controllerPort(), "kesm_scale_write_pending", pending) == 1;
  }));
  const auto refused = Steady::now();
  // Held for at least five evaluations, and the one pod keeps draining meanwhile.
  const std::size_t before = rig.deliveries().distinct();
  REQUIRE(waitUntil(30s, [&] {
    return metricOr0(rig.controllerPort(), "kesm_scale_writes_total", forbidden) >= 5 &&
           rig.deliveries().distinct() >= before + 1000;
  }));
  CHECK(rig.specReplicas() == kMinPods);
  CHECK(metricOr0(rig.controllerPort(), "kesm_scale_write_pending", pending) == 1);
  CHECK_THAT(slurp(rig.controllerLog()), Catch::Contains("403"));

  replaceRole(rig.admin(), rig.ns(), "kesm-scale", scaleRules(R"(["get","update"])"));
  const auto restored = Steady::now();
  REQUIRE(waitUntil(30s, [&] { return rig.specReplicas() > kMinPods; }));
  const double written_after = seconds(Steady::now() - restored);
  REQUIRE(waitUntil(10s, [&] {
    return metricOr0(rig.controllerPort(), "kesm_scale_write_pending", pending) == 0;
  }));

  const double drained =
      waitDrained(rig, std::size_t{kPartitions} * kBurst, burst, std::chrono::seconds(240));
  REQUIRE(waitUntil(
      120s, [&] { return rig.specReplicas() == kMinPods && rig.kubelet().alive() == kMinPods; }));
  const auto m = milestones(rig.kubelet().timeline(), burst);
  WARN("scale writes refused from "
       << seconds(refused - burst) << " s to " << seconds(restored - burst)
       << " s into the burst; held count written " << written_after
       << " s after the Role was restored; " << describe(m, drained) << "\n"
       << rig.kubelet().report(burst));
  CHECK(m.raised >= seconds(restored - burst)); // nothing above the minimum before
  checkNeverMoreThanPartitions(rig);
  checkEverythingDelivered(rig, kBurst);
  CHECK(rig.kubelet().errors().empty());
}
