// The FakeKubelet (kubelet.h) on its own, against the real API server and the real broker:
// the StatefulSet is scaled by hand (`kubectl scale`'s PUT of the Scale) and the `kesm poller`
// processes, the StatefulSet's status and the EndpointSlices must follow. The pods-mode
// end-to-end test relies on exactly this.

#include "e2e_harness.h"
#include "kubelet.h"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <csignal>

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;
namespace json = boost::json;
using Steady = std::chrono::steady_clock;

namespace {

constexpr const char* kSts = "pollers";

json::object statefulSet(K8sAdmin& admin, const std::string& ns) {
  return json::parse(
             admin.mustCall("GET", "/apis/apps/v1/namespaces/" + ns + "/statefulsets/" + kSts))
      .as_object();
}

std::int64_t field(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v == nullptr ? 0 : v->to_number<std::int64_t>();
}

// The EndpointSlices of the Service, as the controller lists them.
json::array slices(K8sAdmin& admin, const std::string& ns) {
  return json::parse(admin.mustCall("GET", "/apis/discovery.k8s.io/v1/namespaces/" + ns +
                                               "/endpointslices?labelSelector=kubernetes.io%"
                                               "2Fservice-name%3D" +
                                               kSts))
      .at("items")
      .as_array();
}

std::vector<TimelineEntry> only(const std::vector<TimelineEntry>& timeline, KubeletEvent event) {
  std::vector<TimelineEntry> out;
  std::copy_if(timeline.begin(), timeline.end(), std::back_inserter(out),
               [&](const TimelineEntry& e) { return e.event == event; });
  return out;
}

} // namespace

TEST_CASE("FakeKubelet: kesm poller processes follow spec.replicas (lowest ordinal started first "
          "after the start delay, highest SIGTERMed first), with the StatefulSet status and one "
          "EndpointSlice per pod",
          "[e2e][k8s]") {
  const ApiServerInfo api = sharedApiServer();
  K8sAdmin admin(api);
  const TestNamespace ns = makeTestNamespace(admin, api, "kubelet");
  createHeadlessService(admin, ns.ns, kSts);
  createStatefulSet(admin, ns.ns, kSts, kSts, 0);

  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("kubelet");
  createTopic(bootstrap, topic, 4);
  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& b) { deliveries.add(b); };
  samplefn::SampleFunction function(fn);
  auto mapping = e2eMapping("m", bootstrap, topic, function.url());
  mapping.librdkafka.erase("debug");
  const std::string config =
      writeTempFile("kubelet-" + topic + ".yaml", e2eConfigYaml(freePort(), {mapping}));

  constexpr auto kStartDelay = 1s;
  FakeKubelet kubelet(api, FakeKubeletOptions{.ns = ns.ns,
                                              .stateful_set = kSts,
                                              .service = kSts,
                                              .poller_args = {"--config", config, "--mapping", "m"},
                                              .start_delay = kStartDelay});
  const auto origin = Steady::now();
  DumpKubeletOnFailure dump(kubelet, origin);
  // Its first read of the StatefulSet (0 replicas) comes before the scale.
  REQUIRE(waitUntil(10s, [&] { return !kubelet.replicasSeen().empty(); }));

  adminScale(admin, ns.ns, kSts, 3);
  REQUIRE(waitUntil(60s, [&] {
    const auto sts = statefulSet(admin, ns.ns);
    return kubelet.ready() == 3 && field(sts.at("status").as_object(), "readyReplicas") == 3 &&
           slices(admin, ns.ns).size() == 3;
  }));

  const auto timeline = kubelet.timeline();
  const auto created = only(timeline, KubeletEvent::kCreated);
  const auto started = only(timeline, KubeletEvent::kStarted);
  REQUIRE(created.size() == 3);
  REQUIRE(started.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(created[i].ordinal == i); // lowest first
    CHECK(started[i].ordinal == i);
    CHECK(started[i].at - created[i].at >= kStartDelay);
  }

  // Each process is the pod it plays: POD_NAME is its instance id.
  const auto ports = kubelet.ports();
  REQUIRE(ports.size() == 3);
  for (const auto& [ordinal, port] : ports) {
    const auto status = json::parse(httpGetAt(kubelet.address(), port, "/status").body).as_object();
    CHECK(json::value_to<std::string>(status.at("instanceId")) ==
          std::string(kSts) + "-" + std::to_string(ordinal));
  }

  // The status the StatefulSet controller would write.
  const auto sts = statefulSet(admin, ns.ns);
  const auto& status = sts.at("status").as_object();
  CHECK(field(status, "replicas") == 3);
  CHECK(field(status, "readyReplicas") == 3);
  CHECK(field(status, "currentReplicas") == 3);
  CHECK(field(status, "updatedReplicas") == 3);
  CHECK(field(status, "availableReplicas") == 3);
  CHECK(field(status, "observedGeneration") == field(sts.at("metadata").as_object(), "generation"));

  // One slice per pod: its address, readiness, pod and port.
  for (const auto& item : slices(admin, ns.ns)) {
    const auto& slice = item.as_object();
    const std::string name = json::value_to<std::string>(slice.at("metadata").at("name"));
    INFO(json::serialize(slice));
    const int ordinal = std::stoi(name.substr(std::string(kSts).size() + 1));
    CHECK(json::value_to<std::string>(slice.at("addressType")) == "IPv4");
    const auto& endpoint = slice.at("endpoints").as_array().at(0).as_object();
    CHECK(json::value_to<std::string>(endpoint.at("addresses").at(0)) == kubelet.address());
    CHECK(endpoint.at("conditions").at("ready").as_bool());
    CHECK(json::value_to<std::string>(endpoint.at("targetRef").at("kind")) == "Pod");
    CHECK(json::value_to<std::string>(endpoint.at("targetRef").at("name")) == name);
    const auto& port = slice.at("ports").as_array().at(0).as_object();
    CHECK(json::value_to<std::string>(port.at("name")) == "http");
    CHECK(port.at("port").to_number<int>() == ports.at(ordinal));
  }

  // They are pollers: records produced are delivered.
  produceNumbered(bootstrap, topic, 4, 50);
  REQUIRE(waitUntil(60s, [&] { return deliveries.distinct() == 200; }));

  // Down to 1: ordinals 2 then 1 get SIGTERM, exit 0, their slices go.
  adminScale(admin, ns.ns, kSts, 1);
  REQUIRE(waitUntil(60s, [&] {
    const auto s = statefulSet(admin, ns.ns);
    return kubelet.alive() == 1 && slices(admin, ns.ns).size() == 1 &&
           field(s.at("status").as_object(), "replicas") == 1;
  }));
  const auto after = kubelet.timeline();
  const auto terminated = only(after, KubeletEvent::kTerminating);
  REQUIRE(terminated.size() == 2);
  CHECK(terminated[0].ordinal == 2); // highest first
  CHECK(terminated[1].ordinal == 1);
  const auto stopped = only(after, KubeletEvent::kStopped);
  REQUIRE(stopped.size() == 2);
  for (const auto& s : stopped) {
    CHECK(s.value == 0); // a clean SIGTERM exit
  }
  CHECK(only(after, KubeletEvent::kKilled).empty());
  CHECK(only(after, KubeletEvent::kCrashed).empty());
  CHECK(json::value_to<std::string>(slices(admin, ns.ns).at(0).at("metadata").at("name")) ==
        std::string(kSts) + "-0");
  CHECK(kubelet.replicasSeen() == std::vector<int>{0, 3, 1});
  CHECK_FALSE(kubelet.missedGeneration());
  CHECK(kubelet.mostAlive() == 3);
  CHECK(kubelet.errors().empty());
  kubelet.stop();
  WARN("kubelet timeline:\n" << kubelet.report(origin));
}

TEST_CASE("FakeKubelet: a pod that ignores SIGTERM is SIGKILLed after the grace period, a pod "
          "that dies is started again",
          "[e2e][k8s]") {
  const ApiServerInfo api = sharedApiServer();
  K8sAdmin admin(api);
  const TestNamespace ns = makeTestNamespace(admin, api, "kubelet-kill");
  createHeadlessService(admin, ns.ns, kSts);
  createStatefulSet(admin, ns.ns, kSts, kSts, 2);
  constexpr auto kGrace = 1500ms;
  FakeKubelet kubelet(
      api,
      FakeKubeletOptions{
          .ns = ns.ns,
          .stateful_set = kSts,
          .service = kSts,
          .command =
              [](const std::string&, std::uint16_t) {
                // An ignored signal stays ignored across exec.
                return std::vector<std::string>{"/bin/sh", "-c", "trap '' TERM; exec sleep 600"};
              },
          .grace_period = kGrace,
          .log_prefix = "kubelet-kill"});
  const auto origin = Steady::now();
  DumpKubeletOnFailure dump(kubelet, origin);
  REQUIRE(waitUntil(30s, [&] { return kubelet.alive() == 2 && slices(admin, ns.ns).size() == 2; }));
  // Never ready (nothing answers /readyz): listed, not ready.
  for (const auto& item : slices(admin, ns.ns)) {
    CHECK_FALSE(item.at("endpoints").at(0).at("conditions").at("ready").as_bool());
  }

  const pid_t first = kubelet.pids().at(0);
  REQUIRE(::kill(first, SIGKILL) == 0);
  REQUIRE(waitUntil(30s, [&] {
    const auto pids = kubelet.pids();
    return pids.count(0) == 1 && pids.at(0) != first;
  }));
  const auto crashed = only(kubelet.timeline(), KubeletEvent::kCrashed);
  REQUIRE(crashed.size() == 1);
  CHECK(crashed[0].ordinal == 0);
  CHECK(crashed[0].value == 128 + SIGKILL);

  adminScale(admin, ns.ns, kSts, 0);
  REQUIRE(waitUntil(30s, [&] { return kubelet.alive() == 0 && slices(admin, ns.ns).empty(); }));
  const auto timeline = kubelet.timeline();
  const auto terminated = only(timeline, KubeletEvent::kTerminating);
  const auto killed = only(timeline, KubeletEvent::kKilled);
  REQUIRE(terminated.size() == 2);
  REQUIRE(killed.size() == 2);
  CHECK(terminated[0].ordinal == 1);
  CHECK(terminated[1].ordinal == 0);
  for (const auto& k : killed) {
    const auto sigterm = std::find_if(terminated.begin(), terminated.end(),
                                      [&](const auto& t) { return t.ordinal == k.ordinal; });
    CHECK(k.at - sigterm->at >= kGrace);
  }
  const auto sts = statefulSet(admin, ns.ns);
  CHECK(field(sts.at("status").as_object(), "replicas") == 0);
  CHECK(kubelet.errors().empty());
  kubelet.stop();
  WARN("kubelet timeline:\n" << kubelet.report(origin));
}
