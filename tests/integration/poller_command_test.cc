// `kesm poller` (pods mode) as real processes against the mock cluster: two processes of one
// mapping share its partitions and deliver every record in per-partition order, answer
// /readyz, /metrics and /status, and on SIGTERM commit, leave and exit 0; usage errors exit 2.

#include "harness.h"
#include "k8s/pod_status.h"
#include "kafka/kafka.h"
#include "net/http.h"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

using namespace kesm;
using namespace kesm::test;

namespace {

// A loopback port nothing listens on: bound, then closed.
std::uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// GET `target` on 127.0.0.1:port: {status, body}; status 0 when nothing answered.
std::pair<int, std::string> get(std::uint16_t port, const std::string& target) {
  net::HttpClient client(net::parseHttpUrl("http://127.0.0.1:" + std::to_string(port) + "/"));
  auto r = client.request("GET", target, "", {}, std::chrono::milliseconds(2000));
  if (!r.transportOk()) {
    return {0, ""};
  }
  return {r.response.status, r.response.body};
}

// /status as `kesm controller` reads it (k8s/pod_status.h): the process's invocation totals.
std::pair<double, double> statusInvocations(const std::string& status) {
  std::string error;
  const auto decoded = k8s::decodePollerStatus(status, error);
  INFO(error);
  REQUIRE(decoded);
  REQUIRE(decoded->invocations);
  return {static_cast<double>(decoded->invocations->count), decoded->invocations->seconds};
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A poller process of mapping `mapping` on `port`.
std::vector<std::string> pollerArgs(const std::string& config, const std::string& mapping,
                                    std::uint16_t port, const std::string& id) {
  return {"poller",
          "--config",
          config,
          "--mapping",
          mapping,
          "--listen",
          "127.0.0.1:" + std::to_string(port),
          "--instance-id",
          id};
}

} // namespace

TEST_CASE("kesm poller: two processes share the partitions, deliver all in order, SIGTERM "
          "commits and exits 0",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  constexpr int kPartitions = 4;
  constexpr int kPerPartition = 500;
  cluster.createTopic("pods", kPartitions);

  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.latency = std::chrono::milliseconds(5);
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);

  auto mapping = testMapping("pods", cluster.bootstrapServers(), "pods", function.url(), 1, 4);
  mapping.batching.set("batchSize", 50);
  ConfigYaml yaml;
  yaml.mappings.push_back(mapping);
  const std::string config_path = writeTempFile("poller-cmd.yaml", yaml.str());
  auto config = config::parseConfig(yaml.str(), "test.yaml", kafka::checkSetting);

  const std::uint16_t port_a = freePort();
  const std::uint16_t port_b = freePort();
  const std::string log_a = writeTempFile("poller-cmd-a.log", "");
  const std::string log_b = writeTempFile("poller-cmd-b.log", "");
  KesmProcess a(pollerArgs(config_path, "pods", port_a, "pods-0"), log_a);
  REQUIRE(waitUntil(60s, [&] { return get(port_a, "/readyz").first == 200; }));
  KesmProcess b(pollerArgs(config_path, "pods", port_b, "pods-1"), log_b);
  // Ready means joined: b had its first assignment, so the group now has both members.
  REQUIRE(waitUntil(60s, [&] { return get(port_b, "/readyz").first == 200; }));
  CHECK(get(port_a, "/healthz").first == 200);

  produceNumbered(cluster.bootstrapServers(), "pods", kPartitions, kPerPartition);
  const bool drained = waitUntil(
      120s,
      [&] {
        auto committed = committedOffsets(config.mappings[0]);
        for (const auto& [p, c] : committed) {
          if (c < kPerPartition) {
            return false;
          }
        }
        return committed.size() == kPartitions;
      },
      500ms);
  INFO(readFile(log_a) << readFile(log_b));
  REQUIRE(drained);

  // Both processes did part of the work, and say so on /metrics and /status.
  const auto metrics_a = get(port_a, "/metrics");
  const auto metrics_b = get(port_b, "/metrics");
  REQUIRE(metrics_a.first == 200);
  REQUIRE(metrics_b.first == 200);
  const std::string polled = "kesm_events_polled_total{mapping=\"pods\"}";
  const double polled_a = metricValue(metrics_a.second, polled);
  const double polled_b = metricValue(metrics_b.second, polled);
  CHECK(polled_a > 0);
  CHECK(polled_b > 0);
  CHECK(polled_a + polled_b >= kPartitions * kPerPartition);
  CHECK(metricValue(metrics_a.second, "kesm_pollers{mapping=\"pods\",state=\"running\"}") ==
        1); // published every second: long since the drain
  CHECK(metricValue(metrics_a.second, "kesm_pollers{mapping=\"pods\",state=\"desired\"}") == 1);
  CHECK(metricValue(metrics_a.second, "kesm_mapping_state{mapping=\"pods\",state=\"Enabled\"}") ==
        1);
  CHECK(metrics_a.second.find("process_resident_memory_bytes") != std::string::npos);
  CHECK(metrics_a.second.find("kesm_build_info{") != std::string::npos);
  const auto status = get(port_b, "/status");
  REQUIRE(status.first == 200);
  CHECK(status.second.find("\"mode\":\"poller\"") != std::string::npos);
  CHECK(status.second.find("\"clientId\":\"kesm-pods-pods-1\"") != std::string::npos);
  CHECK(status.second.find("\"state\":\"running\"") != std::string::npos);
  // "invocations" counts the finished attempts the histogram observed (nothing runs after
  // the drain): what `kesm controller` reads instead of the in-process tally.
  for (const auto port : {port_a, port_b}) {
    const auto [count, seconds] = statusInvocations(get(port, "/status").second);
    const auto metrics = get(port, "/metrics").second;
    INFO("port " << port);
    CHECK(count > 0);
    CHECK(count ==
          metricValue(metrics, "kesm_invocation_duration_seconds_count{mapping=\"pods\"}"));
    CHECK(seconds ==
          Approx(metricValue(metrics, "kesm_invocation_duration_seconds_sum{mapping=\"pods\"}"))
              .epsilon(1e-6));
    CHECK(seconds >= count * 0.005); // the function takes 5 ms an invocation
  }

  a.signal(SIGTERM);
  b.signal(SIGTERM);
  CHECK(a.wait(30s) == 0);
  CHECK(b.wait(30s) == 0);
  for (const auto& [p, c] : committedOffsets(config.mappings[0])) {
    INFO("partition " << p);
    CHECK(c == kPerPartition); // the high watermark: everything committed
  }
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(deliveries.missing(p, kPerPartition).empty());
  }
  CHECK(deliveries.orderViolation() == "");
  const std::string logs = readFile(log_a);
  CHECK(logs.find("stopped") != std::string::npos);
}

TEST_CASE("kesm poller: a fatal function error disables the pod's pollers, reported, not a "
          "crash",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("gone", 1);
  samplefn::SampleFunctionOptions fn;
  fn.decide = [](const std::vector<samplefn::ReceivedRecord>&) {
    return samplefn::Verdict::kFailHttp404;
  };
  samplefn::SampleFunction function(fn);
  ConfigYaml yaml;
  yaml.mappings.push_back(
      testMapping("gone", cluster.bootstrapServers(), "gone", function.url(), 1, 1));
  const std::string config_path = writeTempFile("poller-fatal.yaml", yaml.str());
  produceNumbered(cluster.bootstrapServers(), "gone", 1, 10);
  const std::uint16_t port = freePort();
  const std::string log = writeTempFile("poller-fatal.log", "");
  KesmProcess p(pollerArgs(config_path, "gone", port, "gone-0"), log);
  const std::string disabled = "kesm_mapping_state{mapping=\"gone\",state=\"Disabled\"}";
  REQUIRE(waitUntil(60s, [&] { return metricValue(get(port, "/metrics").second, disabled) == 1; }));
  // The pollers stop; the process stays, ready, and says why on /status.
  REQUIRE(waitUntil(30s, [&] {
    return metricValue(get(port, "/metrics").second,
                       "kesm_pollers{mapping=\"gone\",state=\"running\"}") == 0 &&
           get(port, "/status").second.find("\"state\":\"stopped\"") != std::string::npos;
  }));
  const auto status = get(port, "/status").second;
  CHECK(status.find("\"state\":\"Disabled\"") != std::string::npos);
  CHECK(status.find("404") != std::string::npos);
  CHECK(statusInvocations(status).first >= 1); // the attempt answered 404 counts
  std::string error;
  const auto decoded = k8s::decodePollerStatus(status, error);
  REQUIRE(decoded);
  CHECK(decoded->disabled); // what reaches the controller's on_fatal
  CHECK_THAT(decoded->disabled_reason, Catch::Contains("404"));
  CHECK(get(port, "/readyz").first == 200);
  CHECK(p.running());
  p.signal(SIGTERM);
  CHECK(p.wait(30s) == 0);
}

TEST_CASE("kesm poller: a bad --mapping or --pollers is a usage error (exit 2)", "[integration]") {
  ConfigYaml yaml;
  yaml.mappings.push_back(
      testMapping("orders", "127.0.0.1:1", "orders", "http://127.0.0.1:1/", 1, 1));
  const std::string config_path = writeTempFile("poller-usage.yaml", yaml.str());
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases{
      {{"--mapping", "nope"}, "--mapping: no mapping named 'nope'"},
      {{"--mapping", "orders", "--pollers", "0"},
       "--pollers: expected a whole number from 1 to 64"},
      {{"--mapping", "orders", "--pollers", "65"},
       "--pollers: expected a whole number from 1 to 64"},
      {{"--mapping", "orders", "--pollers", "two"}, "got 'two'"},
      {{"--mapping", "orders", "--membership", "sticky"}, "--membership: expected static or"},
      {{"--mapping", "orders", "--membership", "static", "--instance-id", "a b"},
       "--instance-id (or POD_NAME)"},
      {{}, "--mapping NAME are required"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args{"poller", "--config", config_path};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const std::string log = writeTempFile("poller-usage.log", "");
    KesmProcess p(args, log);
    INFO(c.message);
    CHECK(p.wait(30s) == 2);
    const auto out = readFile(log);
    INFO(out);
    CHECK(out.find(c.message) != std::string::npos);
  }
}

TEST_CASE("kesm poller: --pollers above the partition count is ready, static ids ID-0..ID-2",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("few", 2);
  samplefn::SampleFunction function(samplefn::SampleFunctionOptions{});
  ConfigYaml yaml;
  yaml.mappings.push_back(
      testMapping("few", cluster.bootstrapServers(), "few", function.url(), 1, 3));
  const std::string config_path = writeTempFile("poller-few.yaml", yaml.str());
  const std::uint16_t port = freePort();
  const std::string log = writeTempFile("poller-few.log", "");
  auto args = pollerArgs(config_path, "few", port, "few-0");
  args.insert(args.end(), {"--pollers", "3", "--membership", "static"});
  KesmProcess p(args, log);
  // One poller owns no partition: it still joined, so the pod is ready (else a StatefulSet
  // rollout waits for it forever).
  const bool ready = waitUntil(60s, [&] { return get(port, "/readyz").first == 200; });
  INFO(readFile(log));
  REQUIRE(ready);
  // The gauges follow within a second (the supervisor publishes them).
  CHECK(waitUntil(5s, [&] {
    return metricValue(get(port, "/metrics").second,
                       "kesm_pollers{mapping=\"few\",state=\"running\"}") == 3;
  }));
  CHECK(metricValue(get(port, "/metrics").second,
                    "kesm_pollers{mapping=\"few\",state=\"desired\"}") == 3);
  const auto status = get(port, "/status").second;
  for (const char* id : {"few-0-0", "few-0-1", "few-0-2"}) {
    CHECK(status.find(std::string("\"groupInstanceId\":\"") + id + "\"") != std::string::npos);
  }
  CHECK(status.find("\"staticMembership\":true") != std::string::npos);
  p.signal(SIGTERM);
  CHECK(p.wait(30s) == 0);
}
