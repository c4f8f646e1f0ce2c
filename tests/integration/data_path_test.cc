// The data path against librdkafka's mock cluster (real Kafka protocol over loopback) and
// the sample function over real HTTP.

#include "app/runtime.h"
#include "harness.h"
#include "kafka/kafka.h"
#include "net/http.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <set>

using namespace kesm;
using namespace kesm::test;

TEST_CASE("20,000 records over 8 partitions with 3 pollers all arrive in order", "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("orders", 8);
  constexpr int kPartitions = 8;
  constexpr int kPerPartition = 2500;
  produceNumbered(cluster.bootstrapServers(), "orders", kPartitions, kPerPartition);

  Deliveries deliveries;
  std::atomic<int> bad_values{0};
  samplefn::SampleFunctionOptions fn;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    for (const auto& r : batch) {
      std::string expected = "p" + std::to_string(r.partition) + "-" + std::to_string(r.offset);
      if (r.value != expected || r.topic != "orders") {
        bad_values++;
      }
    }
    deliveries.add(batch);
  };
  samplefn::SampleFunction function(fn);

  auto config = config::parseConfig(
      mappingYaml("orders", cluster.bootstrapServers(), "orders", function.url(), 3, 3),
      "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();

  bool all_committed = waitUntil(120s, [&] {
    auto snap = runtime.snapshot().at(0);
    return snap.committed >= kPartitions * kPerPartition;
  });
  auto snap = runtime.snapshot().at(0);
  INFO("committed " << snap.committed << ", delivered " << deliveries.distinct());
  REQUIRE(all_committed);
  CHECK(snap.active == 3);

  // What a Prometheus server would scrape, over real HTTP.
  net::HttpClient scrape(
      net::parseHttpUrl("http://127.0.0.1:" + std::to_string(runtime.metricsPort()) + "/"));
  auto get = [&](const std::string& target) {
    return scrape.request("GET", target, "", {}, 5s).response;
  };
  CHECK(get("/healthz").status == 200);
  CHECK(waitUntil(30s, [&] { return get("/readyz").status == 200; }));
  // The lag gauge follows the next probe after the last commit.
  CHECK(waitUntil(30s, [&] {
    return metricValue(get("/metrics").body, "kesm_mapping_offset_lag{mapping=\"orders\"}") == 0;
  }));
  auto metrics = get("/metrics").body;
  INFO(metrics);
  // Polled and invoked count redeliveries after a rebalance too, so at least every record.
  CHECK(metricValue(metrics, "kesm_events_polled_total{mapping=\"orders\"}") >= 20000);
  CHECK(metricValue(metrics, "kesm_events_invoked_total{mapping=\"orders\"}") >= 20000);
  CHECK(metricValue(metrics, "kesm_events_committed_total{mapping=\"orders\"}") >= 20000);
  CHECK(metricValue(metrics, "kesm_events_failed_invoke_total{mapping=\"orders\"}") == 0);
  CHECK(metricValue(metrics, "kesm_invocations_total{mapping=\"orders\",outcome=\"success\"}") >=
        200);
  CHECK(metricValue(metrics, "kesm_batch_size_records_count{mapping=\"orders\"}") >= 200);
  CHECK(metricValue(metrics, "kesm_invocation_duration_seconds_count{mapping=\"orders\"}") >= 200);
  CHECK(metricValue(metrics, "kesm_pollers{mapping=\"orders\",state=\"running\"}") == 3);
  REQUIRE(runtime.stop());

  CHECK(bad_values.load() == 0);
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(deliveries.missing(p, kPerPartition).empty());
  }
  CHECK(deliveries.orderViolation() == "");
  // Every partition's committed offset is exactly its end: nothing left behind.
  for (const auto& [partition, offset] : committedOffsets(config.mappings[0])) {
    INFO("partition " << partition);
    CHECK(offset == kPerPartition);
  }
}

TEST_CASE("a failing batch is retried whole and nothing is committed past it", "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("payments", 4);
  constexpr int kPartitions = 4;
  constexpr int kPerPartition = 500;
  constexpr int kFailures = 3;
  // The batch that holds this record fails its first kFailures attempts.
  constexpr std::int32_t kPoisonPartition = 2;
  constexpr std::int64_t kPoisonOffset = 250;
  produceNumbered(cluster.bootstrapServers(), "payments", kPartitions, kPerPartition);

  std::mutex mutex;
  std::vector<std::vector<std::pair<std::int32_t, std::int64_t>>> attempts_of_poison;
  std::vector<std::int64_t> committed_at_failure;
  std::optional<config::Mapping> mapping;
  Deliveries deliveries;

  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    bool poison = false;
    std::vector<std::pair<std::int32_t, std::int64_t>> ids;
    for (const auto& r : batch) {
      ids.emplace_back(r.partition, r.offset);
      poison = poison || (r.partition == kPoisonPartition && r.offset == kPoisonOffset);
    }
    if (!poison) {
      return samplefn::Verdict::kSucceed;
    }
    std::lock_guard lock(mutex);
    attempts_of_poison.push_back(ids);
    if (static_cast<int>(attempts_of_poison.size()) <= kFailures) {
      // While this batch has not succeeded, the group's committed offset of the poison
      // partition must not pass the batch's first record of that partition.
      committed_at_failure.push_back(committedOffsets(*mapping).at(kPoisonPartition));
      return samplefn::Verdict::kFailHttp500;
    }
    return samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);

  auto config = config::parseConfig(
      mappingYaml("payments", cluster.bootstrapServers(), "payments", function.url(), 1, 1),
      "test.yaml", kafka::checkSetting);
  mapping = config.mappings[0];
  app::Runtime runtime(config, {});
  runtime.start();

  bool done = waitUntil(
      120s, [&] { return runtime.snapshot().at(0).committed >= kPartitions * kPerPartition; });
  auto snap = runtime.snapshot().at(0);
  REQUIRE(done);
  REQUIRE(runtime.stop());

  std::lock_guard lock(mutex);
  REQUIRE(attempts_of_poison.size() == kFailures + 1);
  // Retried whole: every attempt carried exactly the same records in the same order.
  for (const auto& attempt : attempts_of_poison) {
    CHECK(attempt == attempts_of_poison.front());
  }
  std::int64_t first_of_poison_partition = -1;
  for (const auto& [p, o] : attempts_of_poison.front()) {
    if (p == kPoisonPartition) {
      first_of_poison_partition = o;
      break;
    }
  }
  REQUIRE(first_of_poison_partition > 0);
  // Never two batches of one partition in flight, so while the poison batch fails the group
  // never passes its first record of that partition. Commits are asynchronous: the first
  // failure may come before the previous batch's commit landed, but by the retries (after a
  // backoff) the group sits exactly there — everything before it committed, nothing of it.
  REQUIRE(committed_at_failure.size() == kFailures);
  for (auto committed : committed_at_failure) {
    CHECK(committed <= first_of_poison_partition);
  }
  CHECK(committed_at_failure.back() == first_of_poison_partition);
  CHECK(snap.failed == static_cast<double>(kFailures * attempts_of_poison.front().size()));
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(deliveries.missing(p, kPerPartition).empty());
  }
  CHECK(deliveries.orderViolation() == "");
}

TEST_CASE("a commit the coordinator refuses is sent again without waiting for a rebalance",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("audit", 4);
  constexpr int kPartitions = 4;
  produceNumbered(cluster.bootstrapServers(), "audit", kPartitions, 200);

  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  auto config = config::parseConfig(
      mappingYaml("audit", cluster.bootstrapServers(), "audit", function.url(), 1, 1), "test.yaml",
      kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  auto committedAt = [&](std::int64_t end) {
    auto committed = committedOffsets(config.mappings[0]);
    return committed.size() == kPartitions &&
           std::all_of(committed.begin(), committed.end(),
                       [&](const auto& kv) { return kv.second == end; });
  };
  REQUIRE(waitUntil(
      60s, [&] { return committedAt(200); }, 100ms));

  // The last commits of the next records fail: nothing else happens afterwards (no new
  // records, no rebalance), so only a retry of the commit itself can move the group.
  constexpr std::int16_t kOffsetCommit = 8;
  constexpr int kOffsetMetadataTooLarge = 12;
  cluster.failNextRequests(
      kOffsetCommit, {kOffsetMetadataTooLarge, kOffsetMetadataTooLarge, kOffsetMetadataTooLarge});
  produceNumbered(cluster.bootstrapServers(), "audit", kPartitions, 50);
  bool caught_up = waitUntil(
      60s, [&] { return committedAt(250); }, 100ms);

  net::HttpClient scrape(
      net::parseHttpUrl("http://127.0.0.1:" + std::to_string(runtime.metricsPort()) + "/"));
  auto metrics = scrape.request("GET", "/metrics", "", {}, 5s).response.body;
  auto snap = runtime.snapshot().at(0);
  REQUIRE(runtime.stop());
  CHECK(caught_up);
  INFO(metrics);
  CHECK(metricValue(metrics, "kesm_offset_commits_total{mapping=\"audit\",outcome=\"error\"}") >=
        1);
  // Records count as committed once, when the coordinator accepted them.
  CHECK(snap.committed == kPartitions * 250);
  for (int p = 0; p < kPartitions; ++p) {
    CHECK(deliveries.missing(p, 250).empty());
  }
}

TEST_CASE("SIGTERM during a batch loses nothing: a restart delivers every record",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("events", 4);
  constexpr int kPartitions = 4;
  constexpr int kPerPartition = 1000;
  produceNumbered(cluster.bootstrapServers(), "events", kPartitions, kPerPartition);

  Deliveries deliveries;
  std::atomic<int> in_flight{0};
  samplefn::SampleFunctionOptions fn;
  fn.latency = 300ms; // long enough that SIGTERM lands while a batch is in flight
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>&) {
    in_flight++;
    return samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    deliveries.add(batch);
    in_flight--;
  };
  samplefn::SampleFunction function(fn);

  std::string yaml =
      mappingYaml("events", cluster.bootstrapServers(), "events", function.url(), 2, 2);
  auto config = config::parseConfig(yaml, "test.yaml", kafka::checkSetting);
  std::string config_path = writeTempFile("sigterm.yaml", yaml);
  std::string log_path = writeTempFile("sigterm.log", "");

  {
    KesmProcess kesm({"run", "--config", config_path}, log_path);
    REQUIRE(waitUntil(
        60s, [&] { return deliveries.total() >= 500 && in_flight.load() > 0; }, 5ms));
    kesm.signal(SIGTERM);
    auto started = std::chrono::steady_clock::now();
    int status = kesm.wait(30s);
    auto took = std::chrono::steady_clock::now() - started;
    CHECK(status == 0);
    // The grace period is 10 s; a batch of 300 ms should finish well within it.
    CHECK(took < 10s);
  }
  // Nothing committed that the function did not receive.
  auto after_stop = committedOffsets(config.mappings[0]);
  for (const auto& [partition, committed] : after_stop) {
    for (std::int64_t o = 0; o < committed; ++o) {
      INFO("partition " << partition << " committed " << committed << " offset " << o);
      REQUIRE(deliveries.has(partition, o));
    }
  }
  std::size_t before_restart = deliveries.distinct();
  CHECK(before_restart < static_cast<std::size_t>(kPartitions * kPerPartition));

  {
    KesmProcess kesm({"run", "--config", config_path}, log_path);
    bool drained = waitUntil(
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
    CHECK(drained);
    kesm.signal(SIGTERM);
    CHECK(kesm.wait(30s) == 0);
  }
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(deliveries.missing(p, kPerPartition).empty());
  }
  CHECK(deliveries.orderViolation() == "");
}
