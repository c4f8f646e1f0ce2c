// Bounded retries, bisection, the onFailure topic, drops, throttling and fatal errors, against
// the mock cluster (real Kafka protocol) and the sample function over real HTTP. The same
// promises on a real Apache Kafka broker: tests/e2e/error_handling_e2e_test.cc.

#include "app/runtime.h"
#include "harness.h"
#include "kafka/kafka.h"
#include "net/http.h"
#include "poller/dead_letter.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <librdkafka/rdkafkacpp.h>
#include <memory>
#include <mutex>
#include <set>

using namespace kesm;
using namespace kesm::test;

namespace {

bool contains(const std::vector<samplefn::ReceivedRecord>& batch, std::int32_t partition,
              std::int64_t offset) {
  return std::any_of(batch.begin(), batch.end(),
                     [&](const auto& r) { return r.partition == partition && r.offset == offset; });
}

} // namespace

TEST_CASE("bisect isolates a poison record: it alone reaches the onFailure topic, the 99 "
          "others succeed",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("orders", 1);
  cluster.createTopic("orders-failed", 1);
  constexpr std::int64_t kPoison = 42;
  {
    app::Producer producer(cluster.bootstrapServers());
    for (int i = 0; i < 100; ++i) {
      std::vector<Header> headers{{"trace", std::string("t-") + std::to_string(i)}};
      producer.produce("orders", 0, "k" + std::to_string(i), "v" + std::to_string(i), headers);
    }
    producer.flush(10s);
  }
  Deliveries deliveries;
  std::atomic<int> poison_attempts{0};
  std::atomic<std::size_t> first_batch{0};
  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    std::size_t expected = 0;
    first_batch.compare_exchange_strong(expected, batch.size());
    if (contains(batch, 0, kPoison)) {
      poison_attempts++;
      return samplefn::Verdict::kFailHttp500;
    }
    return samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  MappingYaml m = testMapping("orders", cluster.bootstrapServers(), "orders", function.url(), 1, 1);
  m.retry.set("maximumRetryAttempts", 2).set("bisectBatchOnFunctionError", true);
  m.on_failure = "kafka://orders-failed";
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  bool committed = waitUntil(60s, [&] {
    auto c = committedOffsets(config.mappings[0]);
    return c.count(0) && c.at(0) == 100;
  });
  std::string metrics = scrape(runtime, "/metrics");
  REQUIRE(runtime.stop());
  INFO(metrics);
  REQUIRE(committed);
  CHECK(first_batch.load() == 100); // the whole batch went out first
  // 99 delivered, in order, each once; the poison never succeeded.
  CHECK(deliveries.distinct() == 99);
  CHECK(deliveries.total() == 99);
  CHECK_FALSE(deliveries.has(0, kPoison));
  CHECK(deliveries.missing(0, 100) == std::vector<std::int64_t>{kPoison});
  // In offset order: the halves go one after the other.
  auto arrivals = deliveries.perPartition()[0];
  CHECK(std::is_sorted(arrivals.begin(), arrivals.end()));
  // Alone it failed its first attempt and its 2 retries.
  CHECK(metricValue(metrics, "kesm_events_on_failure_delivered_total{mapping=\"orders\"}") == 1);
  CHECK(metricValue(metrics, "kesm_batches_bisected_total{mapping=\"orders\"}") >= 6);
  CHECK(metricValue(metrics, "kesm_events_dropped_total{mapping=\"orders\"}") == 0);
  // The destination holds exactly that record, byte for byte, with where it came from.
  auto failed = readTopic(cluster.bootstrapServers(), "orders-failed", 1);
  REQUIRE(failed.size() == 1);
  auto r = failed.front(); // a copy: operator[] below
  CHECK(r.key == std::optional<std::string>("k42"));
  CHECK(r.value == std::optional<std::string>("v42"));
  CHECK(r.headers["trace"] == "t-42");
  CHECK(r.headers[poller::kHeaderMapping] == "orders");
  CHECK(r.headers[poller::kHeaderTopic] == "orders");
  CHECK(r.headers[poller::kHeaderPartition] == "0");
  CHECK(r.headers[poller::kHeaderOffset] == "42");
  CHECK(r.headers[poller::kHeaderAttempts] == "3");
  CHECK(r.headers[poller::kHeaderError].find("http_error") != std::string::npos);
  CHECK_FALSE(r.headers[poller::kHeaderFailedAt].empty());
}

TEST_CASE("without a destination, exhausted records are dropped, counted and committed, only "
          "because the user bounded the retries",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("audit", 2);
  produceNumbered(cluster.bootstrapServers(), "audit", 2, 300);
  Deliveries deliveries;
  std::atomic<int> failures{0};
  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    if (contains(batch, 1, 150)) {
      failures++;
      return samplefn::Verdict::kFailFunctionError;
    }
    return samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  MappingYaml m = testMapping("audit", cluster.bootstrapServers(), "audit", function.url(), 1, 1);
  m.retry.set("maximumRetryAttempts", 1);
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  bool committed = waitUntil(60s, [&] {
    auto c = committedOffsets(config.mappings[0]);
    return c.size() == 2 && c.at(0) == 300 && c.at(1) == 300;
  });
  std::string metrics = scrape(runtime, "/metrics");
  REQUIRE(runtime.stop());
  INFO(metrics);
  REQUIRE(committed);
  CHECK(failures.load() == 2); // the first attempt and one retry
  double dropped = metricValue(metrics, "kesm_events_dropped_total{mapping=\"audit\"}");
  CHECK(dropped >= 1);
  // Everything else arrived; what did not is exactly what was counted as dropped.
  CHECK(deliveries.missing(0, 300).empty());
  CHECK(static_cast<double>(deliveries.missing(1, 300).size()) == dropped);
  CHECK(!deliveries.missing(1, 300).empty());
}

TEST_CASE("maximumRecordAge gives up records older than the bound before sending them",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("old", 1);
  cluster.createTopic("old-failed", 1);
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  {
    app::Producer producer(cluster.bootstrapServers());
    for (int i = 0; i < 10; ++i) {
      producer.produce("old", 0, std::nullopt, "old-" + std::to_string(i), {},
                       now_ms - 5 * 60 * 1000); // five minutes ago
    }
    producer.flush(10s);
  }
  std::atomic<int> attempts{0};
  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>&) {
    attempts++;
    return samplefn::Verdict::kFailHttp500;
  };
  samplefn::SampleFunction function(fn);
  MappingYaml m = testMapping("old", cluster.bootstrapServers(), "old", function.url(), 1, 1);
  m.retry.set("maximumRecordAge", "2m");
  m.on_failure = "kafka://old-failed";
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  bool committed = waitUntil(60s, [&] {
    auto c = committedOffsets(config.mappings[0]);
    return c.count(0) && c.at(0) == 10;
  });
  REQUIRE(runtime.stop());
  REQUIRE(committed);
  // Checked before every attempt (as AWS discards expired records): never sent at all.
  CHECK(attempts.load() == 0);
  CHECK(readTopic(cluster.bootstrapServers(), "old-failed", 1).size() == 10);
}

TEST_CASE("429s are throttling, not failures: retried past maximumRetryAttempts with fewer "
          "batches in flight",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("busy", 4);
  produceNumbered(cluster.bootstrapServers(), "busy", 4, 200);
  Deliveries deliveries;
  std::atomic<int> calls{0};
  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>&) {
    return ++calls <= 6 ? samplefn::Verdict::kFailHttp429 : samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  MappingYaml m = testMapping("busy", cluster.bootstrapServers(), "busy", function.url(), 1, 1);
  m.retry.set("maximumRetryAttempts", 0);
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  bool committed = waitUntil(60s, [&] {
    auto c = committedOffsets(config.mappings[0]);
    return c.size() == 4 &&
           std::all_of(c.begin(), c.end(), [](auto& kv) { return kv.second == 200; });
  });
  std::string metrics = scrape(runtime, "/metrics");
  REQUIRE(runtime.stop());
  INFO(metrics);
  REQUIRE(committed);
  CHECK(metricValue(metrics, "kesm_invocations_throttled_total{mapping=\"busy\"}") == 6);
  CHECK(metricValue(metrics, "kesm_events_dropped_total{mapping=\"busy\"}") == 0);
  for (int p = 0; p < 4; ++p) {
    CHECK(deliveries.missing(p, 200).empty());
  }
}

TEST_CASE("a 404 disables its mapping at the first answer, commits nothing of it, and another "
          "mapping in the same process keeps delivering",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("gone", 2);
  cluster.createTopic("fine", 2);
  produceNumbered(cluster.bootstrapServers(), "gone", 2, 100);
  produceNumbered(cluster.bootstrapServers(), "fine", 2, 100);

  std::mutex mutex;
  std::map<std::pair<std::int32_t, std::int64_t>, int> gone_seen; // record -> invocations
  samplefn::SampleFunctionOptions missing_fn;
  missing_fn.decide = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    std::lock_guard lock(mutex);
    for (const auto& r : batch) {
      gone_seen[{r.partition, r.offset}]++;
    }
    return samplefn::Verdict::kFailHttp404;
  };
  samplefn::SampleFunction missing(missing_fn);
  Deliveries fine_deliveries;
  samplefn::SampleFunctionOptions fine_fn;
  fine_fn.on_batch = [&](const auto& batch) { fine_deliveries.add(batch); };
  samplefn::SampleFunction fine(fine_fn);

  std::string yaml =
      ConfigYaml{
          .mappings = {testMapping("gone", cluster.bootstrapServers(), "gone", missing.url(), 1, 1),
                       testMapping("fine", cluster.bootstrapServers(), "fine", fine.url(), 1, 1)}}
          .str();
  auto config = config::parseConfig(yaml, "test.yaml", kafka::checkSetting);
  REQUIRE(config.mappings.size() == 2);
  app::Runtime runtime(config, {});
  runtime.start();
  bool disabled = waitUntil(30s, [&] {
    auto status = scrape(runtime, "/status");
    return status.find("\"name\":\"gone\",\"state\":\"Disabled\"") != std::string::npos;
  });
  bool fine_done = waitUntil(60s, [&] {
    return fine_deliveries.missing(0, 100).empty() && fine_deliveries.missing(1, 100).empty();
  });
  std::string status = scrape(runtime, "/status");
  std::string metrics = scrape(runtime, "/metrics");
  auto snapshot = runtime.snapshot();
  INFO(status);
  INFO(metrics);
  CHECK(disabled);
  CHECK(fine_done);
  CHECK(status.find("the function answered HTTP 404") != std::string::npos);
  CHECK(metricValue(metrics, "kesm_mapping_state{mapping=\"gone\",state=\"Disabled\"}") == 1);
  CHECK(metricValue(metrics, "kesm_mapping_state{mapping=\"gone\",state=\"Enabled\"}") == 0);
  CHECK(metricValue(metrics, "kesm_mapping_state{mapping=\"fine\",state=\"Enabled\"}") == 1);
  CHECK(snapshot.at(0).running == 0); // its pollers retired
  REQUIRE(runtime.stop());
  // Within one retry cycle: no record was sent twice. Nothing of it was committed.
  {
    std::lock_guard lock(mutex);
    CHECK(!gone_seen.empty());
    for (const auto& [record, count] : gone_seen) {
      CHECK(count == 1);
    }
  }
  for (const auto& [partition, offset] : committedOffsets(config.mappings[0])) {
    CHECK(offset == -1);
  }
}

TEST_CASE("filters pass exactly the matching records, the others are committed without "
          "invocation",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("events", 3);
  // Offsets 0..299 per partition; every third an order above 100, every fifth a tombstone,
  // the rest other JSON or plain text.
  std::set<std::pair<std::int32_t, std::int64_t>> expected;
  {
    app::Producer producer(cluster.bootstrapServers());
    for (int p = 0; p < 3; ++p) {
      for (int i = 0; i < 300; ++i) {
        std::optional<std::string> value;
        if (i % 5 == 0) {
          value = std::nullopt;
        } else if (i % 3 == 0) {
          value = "{\"type\":\"order\",\"amount\":" + std::to_string(50 + i) + "}";
          if (50 + i > 100) {
            expected.insert({p, i});
          }
        } else if (i % 3 == 1) {
          value = "{\"type\":\"refund\",\"amount\":500}";
        } else {
          value = "plain text " + std::to_string(i);
        }
        producer.produce("events", p, std::nullopt, value);
      }
    }
    producer.flush(10s);
  }
  Deliveries deliveries;
  std::mutex mutex;
  std::set<std::pair<std::int32_t, std::int64_t>> received;
  samplefn::SampleFunctionOptions fn;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    std::lock_guard lock(mutex);
    for (const auto& r : batch) {
      received.insert({r.partition, r.offset});
    }
  };
  samplefn::SampleFunction function(fn);
  MappingYaml m = testMapping("events", cluster.bootstrapServers(), "events", function.url(), 1, 1);
  m.filters = {R"({"value": {"type": ["order"], "amount": [{"numeric": [">", 100]}]}})"};
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  bool committed = waitUntil(60s, [&] {
    auto c = committedOffsets(config.mappings[0]);
    return c.size() == 3 &&
           std::all_of(c.begin(), c.end(), [](auto& kv) { return kv.second == 300; });
  });
  std::string metrics = scrape(runtime, "/metrics");
  REQUIRE(runtime.stop());
  INFO(metrics);
  REQUIRE(committed);
  std::lock_guard lock(mutex);
  CHECK(received == expected);
  CHECK(metricValue(metrics, "kesm_events_filtered_total{mapping=\"events\"}") ==
        static_cast<double>(900 - expected.size()));
  CHECK(metricValue(metrics, "kesm_events_committed_total{mapping=\"events\"}") == 900);
}
