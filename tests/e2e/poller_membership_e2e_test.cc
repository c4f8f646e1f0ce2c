// `kesm poller` group membership on the real broker (docs/kubernetes.md, "Static group
// membership"): a static member restarted within session.timeout.ms takes its partitions back
// without a rebalance of the others; a static member that goes for good leaves its partitions
// unowned until its session times out, where a dynamic member hands them over at once.

#include "e2e_harness.h"

#include <catch2/catch.hpp>
#include <csignal>
#include <memory>

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;

namespace {

constexpr int kPartitions = 4;

struct Pod {
  std::uint16_t port = 0;
  std::string log;
  std::unique_ptr<KesmProcess> process;
};

Pod startPod(const std::string& config, const std::string& id, const std::string& membership,
             std::uint16_t port = 0) {
  Pod p;
  p.port = port != 0 ? port : freePort();
  p.log = writeTempFile("e2e-poller-" + id + ".log", "");
  p.process = std::make_unique<KesmProcess>(
      std::vector<std::string>{"poller", "--config", config, "--mapping", "m", "--instance-id", id,
                               "--membership", membership, "--listen",
                               "127.0.0.1:" + std::to_string(p.port)},
      p.log);
  return p;
}

bool ready(const Pod& p) { return httpGet(p.port, "/readyz").status == 200; }

// Partitions owned by the pod's pollers, from /status; 0 when it does not answer.
int owned(const Pod& p) {
  const auto body = httpGet(p.port, "/status").body;
  int total = 0;
  for (std::size_t at = 0; (at = body.find("\"partitions\":", at)) != std::string::npos;) {
    at += 13;
    total += std::stoi(body.substr(at));
  }
  return total;
}

double rebalances(const Pod& p) {
  const auto body = httpGet(p.port, "/metrics").body;
  return metric(body, "kesm_rebalances_total", {{"kind", "assign"}}) +
         metric(body, "kesm_rebalances_total", {{"kind", "revoke"}});
}

std::string configFor(const std::string& topic, const std::string& bootstrap,
                      const std::string& url) {
  auto m = e2eMapping("m", bootstrap, topic, url, 1, 2);
  m.librdkafka.erase("debug");
  m.source.set("consumerGroupId", topic);
  return writeTempFile("e2e-poller-" + topic + ".yaml", e2eConfigYaml(freePort(), {m}));
}

// Two pods of the mapping, both joined and the four partitions shared.
std::pair<Pod, Pod> twoPods(const std::string& config, const std::string& membership) {
  Pod a = startPod(config, "pod-a", membership);
  REQUIRE(waitUntil(60s, [&] { return ready(a); }));
  Pod b = startPod(config, "pod-b", membership);
  REQUIRE(waitUntil(60s, [&] { return ready(b) && owned(a) + owned(b) == kPartitions; }));
  return {std::move(a), std::move(b)};
}

} // namespace

TEST_CASE("kesm poller, static membership: a quick restart takes the partitions back without a "
          "rebalance, a scale-down leaves them unowned for the session timeout",
          "[e2e]") {
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("poller-static");
  createTopic(bootstrap, topic, kPartitions);
  samplefn::SampleFunction function(samplefn::SampleFunctionOptions{});
  const std::string config = configFor(topic, bootstrap, function.url());
  auto pods = twoPods(config, "static");
  Pod& a = pods.first;
  Pod& b = pods.second;
  DumpLogOnFailure dump_a(a.log);
  DumpLogOnFailure dump_b(b.log);
  const double before = rebalances(a);
  const int b_owned = owned(b);
  REQUIRE(b_owned > 0);

  // Restart: the same id back within the 6 s session. Had the group rebalanced, `a` would
  // have revoked before `b` could be assigned again.
  b.process->signal(SIGTERM);
  REQUIRE(b.process->wait(30s) == 0);
  const auto restarted = std::chrono::steady_clock::now();
  Pod b2 = startPod(config, "pod-b", "static", b.port);
  REQUIRE(waitUntil(30s, [&] { return ready(b2) && owned(b2) == b_owned; }));
  const auto took = std::chrono::steady_clock::now() - restarted;
  INFO("restart to ready took "
       << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(took < 5s); // else the session expired first and the check below means nothing
  CHECK(rebalances(a) == before);

  // Scale-down: no LeaveGroup from a static member, so b's partitions wait for its session to
  // time out (6 s) before `a` gets them.
  b2.process->signal(SIGTERM);
  REQUIRE(b2.process->wait(30s) == 0);
  const auto gone = std::chrono::steady_clock::now();
  REQUIRE(waitUntil(
      30s, [&] { return owned(a) == kPartitions; }, 50ms));
  const auto unowned = std::chrono::steady_clock::now() - gone;
  INFO("unowned for " << std::chrono::duration_cast<std::chrono::milliseconds>(unowned).count()
                      << " ms");
  CHECK(unowned > 3s);
  a.process->signal(SIGTERM);
  CHECK(a.process->wait(30s) == 0);
}

TEST_CASE("kesm poller, dynamic membership: a scale-down hands the partitions over at once",
          "[e2e]") {
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("poller-dynamic");
  createTopic(bootstrap, topic, kPartitions);
  samplefn::SampleFunction function(samplefn::SampleFunctionOptions{});
  const std::string config = configFor(topic, bootstrap, function.url());
  auto pods = twoPods(config, "dynamic");
  Pod& a = pods.first;
  Pod& b = pods.second;
  DumpLogOnFailure dump_a(a.log);
  b.process->signal(SIGTERM);
  REQUIRE(b.process->wait(30s) == 0);
  const auto gone = std::chrono::steady_clock::now();
  REQUIRE(waitUntil(
      30s, [&] { return owned(a) == kPartitions; }, 50ms));
  const auto unowned = std::chrono::steady_clock::now() - gone;
  INFO("unowned for " << std::chrono::duration_cast<std::chrono::milliseconds>(unowned).count()
                      << " ms");
  CHECK(unowned < 3s); // a LeaveGroup and one rebalance, not a session timeout
  a.process->signal(SIGTERM);
  CHECK(a.process->wait(30s) == 0);
}
