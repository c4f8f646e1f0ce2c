// Against a real Apache Kafka broker, kesm as a child process and the sample function over
// HTTP: delivery at volume, scaling through real rebalances, and a kill -9 in mid-run. Every
// assertion is on what the function received and on what Kafka itself says of the group.

#include "config/config.h"
#include "e2e_harness.h"
#include "kafka/kafka.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <set>
#include <sstream>

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;

namespace {

using Steady = std::chrono::steady_clock;

double secondsSince(Steady::time_point start) {
  return std::chrono::duration<double>(Steady::now() - start).count();
}

// Records whose value is not the "p<partition>-<offset>" produceNumbered wrote there.
struct ContentCheck {
  std::atomic<int> wrong{0};
  void check(const std::vector<samplefn::ReceivedRecord>& batch) {
    for (const auto& r : batch) {
      auto expected = "p" + std::to_string(r.partition) + "-" + std::to_string(r.offset);
      if (!r.value || *r.value != expected) {
        wrong++;
      }
    }
  }
};

bool allCommitted(const config::Mapping& mapping, int partitions, std::int64_t end) {
  auto committed = committedOffsets(mapping);
  if (static_cast<int>(committed.size()) != partitions) {
    return false;
  }
  return std::all_of(committed.begin(), committed.end(),
                     [&](const auto& entry) { return entry.second == end; });
}

// Kafka's own tool must show every partition committed at its end, with no lag.
void requireToolShowsDrained(const std::string& group, const std::string& topic, int partitions,
                             std::int64_t end) {
  auto rows = kafkaToolOffsets(sharedBrokerDir(), group, topic);
  REQUIRE(static_cast<int>(rows.size()) == partitions);
  for (const auto& [partition, row] : rows) {
    INFO("partition " << partition);
    CHECK(row.committed == end);
    CHECK(row.end == end);
    CHECK(row.lag == 0);
  }
}

} // namespace

TEST_CASE("100,000 records over 12 partitions arrive at least once and in order", "[e2e]") {
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("delivery");
  constexpr int kPartitions = 12;
  constexpr int kPerPartition = 8334; // 100,008 records
  createTopic(bootstrap, topic, kPartitions);
  auto produced_at = Steady::now();
  produceNumbered(bootstrap, topic, kPartitions, kPerPartition);
  const double produce_s = secondsSince(produced_at);

  Deliveries deliveries;
  ContentCheck content;
  samplefn::SampleFunctionOptions fn;
  fn.latency = 5ms;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    content.check(batch);
    deliveries.add(batch);
  };
  samplefn::SampleFunction function(fn);

  const std::string yaml =
      e2eConfigYaml(freePort(), {e2eMapping(topic, bootstrap, topic, function.url(), 4, 4)});
  const auto config = config::parseConfig(yaml, "delivery.yaml", kafka::checkSetting);
  const std::string log_path = writeTempFile("e2e-delivery.log", "");
  DumpLogOnFailure dump(log_path);

  auto started = Steady::now();
  KesmProcess kesm({"run", "--verbose", "--config", writeTempFile("e2e-delivery.yaml", yaml)},
                   log_path);
  const std::size_t sent = std::size_t{kPartitions} * kPerPartition;
  bool drained = waitUntil(
      300s,
      [&] {
        return deliveries.distinct() == sent &&
               allCommitted(config.mappings[0], kPartitions, kPerPartition);
      },
      500ms);
  const double drain_s = secondsSince(started);
  INFO("kesm log: " << log_path);
  REQUIRE(drained);
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);

  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(deliveries.missing(p, kPerPartition).empty());
  }
  CHECK(deliveries.orderViolation() == "");
  CHECK(content.wrong == 0);
  requireToolShowsDrained("kesm-" + topic, topic, kPartitions, kPerPartition);
  WARN("delivery: " << sent << " records sent (produced in " << produce_s << " s), "
                    << deliveries.distinct() << " delivered, "
                    << deliveries.total() - deliveries.distinct() << " duplicates, drained in "
                    << drain_s << " s with 4 pollers");
}

TEST_CASE("A burst scales pollers from 1 to 12 and back through real rebalances, losing nothing",
          "[e2e]") {
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("scale");
  constexpr int kPartitions = 12;
  constexpr int kPerPartition = 5000;
  createTopic(bootstrap, topic, kPartitions);

  Deliveries deliveries;
  ContentCheck content;
  samplefn::SampleFunctionOptions fn;
  // One poller drains 100 records per 200 ms; 60,000 records are ~2 minutes for one poller
  // and ~10 s for twelve, so the controller must ask for all twelve. (With one batch in
  // flight per poller: concurrent batches would let fewer pollers do it.)
  fn.latency = 200ms;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    content.check(batch);
    deliveries.add(batch);
  };
  samplefn::SampleFunction function(fn);

  MappingYaml m = e2eMapping(topic, bootstrap, topic, function.url(), 1, 12);
  m.scaling.set("scaleDownStabilization", "10s").set("maxConcurrentBatches", 1);
  const std::uint16_t port = freePort();
  const std::string yaml = e2eConfigYaml(port, {m});
  const auto config = config::parseConfig(yaml, "scale.yaml", kafka::checkSetting);
  const std::string log_path = writeTempFile("e2e-scale.log", "");
  DumpLogOnFailure dump(log_path);
  KesmProcess kesm({"run", "--verbose", "--config", writeTempFile("e2e-scale.yaml", yaml)},
                   log_path);
  INFO("kesm log: " << log_path);
  const std::map<std::string, std::string> running{{"mapping", topic}, {"state", "running"}};
  const std::map<std::string, std::string> desired{{"mapping", topic}, {"state", "desired"}};
  const std::map<std::string, std::string> stopping{{"mapping", topic}, {"state", "stopping"}};
  REQUIRE(waitUntil(60s, [&] { return httpGet(port, "/readyz").status == 200; }));

  auto burst_at = Steady::now();
  produceNumbered(bootstrap, topic, kPartitions, kPerPartition);

  int max_running = 0, max_desired = 0;
  std::ostringstream timeline;
  auto sample = [&]() {
    auto body = httpGet(port, "/metrics").body;
    int r = static_cast<int>(metric(body, "kesm_pollers", running));
    int d = static_cast<int>(metric(body, "kesm_pollers", desired));
    int s = static_cast<int>(metric(body, "kesm_pollers", stopping));
    max_running = std::max(max_running, r);
    max_desired = std::max(max_desired, d);
    timeline << secondsSince(burst_at) << "s desired " << d << " running " << r << " stopping " << s
             << " lag " << metric(body, "kesm_mapping_offset_lag", {{"mapping", topic}}) << "\n";
    return std::array<int, 3>{d, r, s};
  };
  bool full = waitUntil(
      120s, [&] { return sample()[1] == kPartitions; }, 250ms);
  const double full_s = secondsSince(burst_at);
  INFO("timeline:\n" << timeline.str());
  REQUIRE(full);
  const std::size_t sent = std::size_t{kPartitions} * kPerPartition;
  bool drained = waitUntil(
      240s,
      [&] {
        sample();
        return deliveries.distinct() == sent &&
               allCommitted(config.mappings[0], kPartitions, kPerPartition);
      },
      500ms);
  const double drained_s = secondsSince(burst_at);
  REQUIRE(drained);
  bool down = waitUntil(
      120s,
      [&] {
        auto s = sample();
        return s[0] == 1 && s[1] == 1 && s[2] == 0;
      },
      500ms);
  const double down_s = secondsSince(burst_at);
  INFO("timeline:\n" << timeline.str());
  CHECK(down);
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);

  CHECK(max_desired <= kPartitions);
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(deliveries.missing(p, kPerPartition).empty());
  }
  CHECK(deliveries.orderViolation() == "");
  CHECK(content.wrong == 0);
  requireToolShowsDrained("kesm-" + topic, topic, kPartitions, kPerPartition);
  WARN("scale: " << sent << " records sent, " << deliveries.distinct() << " delivered, "
                 << deliveries.total() - deliveries.distinct() << " duplicates; 12 running after "
                 << full_s << " s, drained after " << drained_s << " s, back to 1 after " << down_s
                 << " s");
}

TEST_CASE("kill -9 in mid-run, then a restart: nothing lost, duplicates only from uncommitted "
          "batches",
          "[e2e]") {
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("kill");
  constexpr int kPartitions = 6;
  constexpr int kPerPartition = 5000;
  createTopic(bootstrap, topic, kPartitions);
  produceNumbered(bootstrap, topic, kPartitions, kPerPartition);

  Deliveries deliveries;
  ContentCheck content;
  std::atomic<int> in_flight{0};
  samplefn::SampleFunctionOptions fn;
  fn.latency = 20ms;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>&) {
    in_flight++;
    return samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    content.check(batch);
    deliveries.add(batch);
    in_flight--;
  };
  samplefn::SampleFunction function(fn);

  const std::string yaml =
      e2eConfigYaml(freePort(), {e2eMapping(topic, bootstrap, topic, function.url(), 3, 3)});
  const auto config = config::parseConfig(yaml, "kill.yaml", kafka::checkSetting);
  const std::string config_path = writeTempFile("e2e-kill.yaml", yaml);
  const std::string log_path = writeTempFile("e2e-kill.log", "");
  DumpLogOnFailure dump(log_path);
  INFO("kesm log: " << log_path);
  auto started = Steady::now();

  std::map<std::int32_t, std::int64_t> delivered_at_kill; // highest offset received
  std::map<std::int32_t, std::int64_t> committed_at_kill;
  {
    KesmProcess kesm({"run", "--verbose", "--config", config_path}, log_path);
    REQUIRE(waitUntil(
        120s, [&] { return deliveries.distinct() >= 10000 && in_flight.load() > 0; }, 2ms));
    kesm.signal(SIGKILL);
    REQUIRE(kesm.wait(10s) == 128 + SIGKILL);
  }
  // Batches the function was still working on when kesm died finish on the function's side.
  REQUIRE(waitUntil(
      10s, [&] { return in_flight.load() == 0; }, 10ms));
  for (const auto& [partition, offsets] : deliveries.perPartition()) {
    delivered_at_kill[partition] = *std::max_element(offsets.begin(), offsets.end());
  }
  committed_at_kill = committedOffsets(config.mappings[0]);
  for (const auto& [partition, committed] : committed_at_kill) {
    INFO("partition " << partition << " committed " << committed);
    // Nothing committed past what the function received.
    CHECK(committed <= delivered_at_kill[partition] + 1);
  }
  const std::size_t before_restart = deliveries.total();
  const std::size_t sent = std::size_t{kPartitions} * kPerPartition;
  CHECK(deliveries.distinct() < sent);

  {
    KesmProcess kesm({"run", "--verbose", "--config", config_path}, log_path);
    bool drained = waitUntil(
        180s,
        [&] {
          return deliveries.distinct() == sent &&
                 allCommitted(config.mappings[0], kPartitions, kPerPartition);
        },
        500ms);
    REQUIRE(drained);
    kesm.signal(SIGTERM);
    CHECK(kesm.wait(30s) == 0);
  }
  const double run_s = secondsSince(started);

  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(deliveries.missing(p, kPerPartition).empty());
  }
  CHECK(deliveries.orderViolation() == "");
  CHECK(content.wrong == 0);
  // Every duplicate lies between the committed offset at the kill and the last record the
  // function had received: a batch in flight or answered but not yet committed.
  std::size_t duplicates = 0;
  for (const auto& [partition, offsets] : deliveries.perPartition()) {
    std::map<std::int64_t, int> seen;
    for (auto o : offsets) {
      seen[o]++;
    }
    const std::int64_t low = committed_at_kill.count(partition) ? committed_at_kill[partition] : 0;
    const std::int64_t high =
        delivered_at_kill.count(partition) ? delivered_at_kill[partition] : -1;
    for (const auto& [offset, count] : seen) {
      if (count > 1) {
        duplicates += static_cast<std::size_t>(count - 1);
        INFO("partition " << partition << " offset " << offset << " delivered " << count
                          << " times; uncommitted window at the kill [" << low << ", " << high
                          << "]");
        CHECK((offset >= std::max<std::int64_t>(low, 0) && offset <= high));
      }
    }
  }
  requireToolShowsDrained("kesm-" + topic, topic, kPartitions, kPerPartition);
  WARN("kill -9: " << sent << " records sent, " << deliveries.distinct() << " delivered, "
                   << duplicates << " duplicates (" << before_restart
                   << " deliveries before the kill), run " << run_s << " s");
}
