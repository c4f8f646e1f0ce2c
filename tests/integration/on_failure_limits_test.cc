// The onFailure destination takes what the source took, and a destination that refuses a
// record for good disables the mapping instead of stalling it, against the mock cluster. The
// same on a real Apache Kafka broker (which enforces max.message.bytes; the mock does not):
// tests/e2e/on_failure_limits_e2e_test.cc.

#include "app/runtime.h"
#include "harness.h"
#include "kafka/kafka.h"
#include "net/http.h"
#include "poller/dead_letter.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <librdkafka/rdkafka.h>

using namespace kesm;
using namespace kesm::test;

namespace {

// Between librdkafka's default message.max.bytes (1,000,000), which refused it on the client
// before, and Kafka's default max.message.bytes (1,048,588).
const std::size_t kBigValue = 1040000;

} // namespace

TEST_CASE("a record above librdkafka's default 1,000,000 bytes given up reaches the onFailure "
          "topic whole, and the 50 good records of its batch reach the function",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("big", 1);
  cluster.createTopic("big-failed", 1);
  const std::string big(kBigValue, 'x');
  {
    app::Producer producer(cluster.bootstrapServers(), {{"message.max.bytes", "2000000"}});
    for (int i = 0; i < 51; ++i) {
      producer.produce("big", 0, "k" + std::to_string(i), i == 25 ? big : "v" + std::to_string(i));
    }
    producer.flush(10s);
  }
  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    bool has_big = std::any_of(batch.begin(), batch.end(), [](const auto& r) {
      return r.value && r.value->size() == kBigValue;
    });
    return has_big ? samplefn::Verdict::kFailHttp500 : samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  MappingYaml m = testMapping("big", cluster.bootstrapServers(), "big", function.url(), 1, 1);
  m.retry.set("maximumRetryAttempts", 0).set("bisectBatchOnFunctionError", true);
  m.on_failure = "kafka://big-failed";
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  bool committed = waitUntil(60s, [&] {
    auto c = committedOffsets(config.mappings[0]);
    return c.count(0) && c.at(0) == 51;
  });
  std::string metrics = scrape(runtime, "/metrics");
  REQUIRE(runtime.stop());
  INFO(metrics);
  REQUIRE(committed);
  CHECK(deliveries.missing(0, 51) == std::vector<std::int64_t>{25});
  CHECK(metricValue(metrics, "kesm_events_on_failure_delivered_total{mapping=\"big\"}") == 1);
  CHECK(metricValue(metrics, "kesm_on_failure_delivery_errors_total{mapping=\"big\"}") == 0);
  auto failed = readTopic(cluster.bootstrapServers(), "big-failed", 1);
  REQUIRE(failed.size() == 1);
  auto r = failed.front();
  CHECK(r.key == std::optional<std::string>("k25"));
  CHECK(r.value == std::optional<std::string>(big));
  CHECK(r.headers[poller::kHeaderOffset] == "25");
}

TEST_CASE("an onFailure topic that refuses a record for good disables the mapping with the "
          "reason, and nothing of the batch is committed",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("refused", 1);
  cluster.createTopic("refused-failed", 1);
  produceNumbered(cluster.bootstrapServers(), "refused", 1, 20);
  // The broker's answer to the destination write, as a real broker gives it for a record
  // above the topic's max.message.bytes (the mock does not enforce that limit).
  cluster.failNextRequests(0 /* Produce */,
                           std::vector<int>(5, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE));
  samplefn::SampleFunctionOptions fn;
  fn.decide = [](const auto&) { return samplefn::Verdict::kFailHttp500; };
  samplefn::SampleFunction function(fn);
  MappingYaml m =
      testMapping("refused", cluster.bootstrapServers(), "refused", function.url(), 1, 1);
  m.retry.set("maximumRetryAttempts", 0);
  m.on_failure = "kafka://refused-failed";
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  bool disabled = waitUntil(60s, [&] {
    return scrape(runtime, "/status").find("\"state\":\"Disabled\"") != std::string::npos;
  });
  std::string status = scrape(runtime, "/status");
  std::string metrics = scrape(runtime, "/metrics");
  REQUIRE(runtime.stop());
  INFO(status);
  INFO(metrics);
  REQUIRE(disabled);
  CHECK(status.find("the onFailure topic refused-failed refused records given up "
                    "(refused-0@0..") != std::string::npos);
  CHECK(status.find("Broker: Message size too large") != std::string::npos);
  CHECK(metricValue(metrics, "kesm_on_failure_delivery_errors_total{mapping=\"refused\"}") == 1);
  CHECK(metricValue(metrics, "kesm_events_on_failure_delivered_total{mapping=\"refused\"}") == 0);
  for (const auto& [partition, offset] : committedOffsets(config.mappings[0])) {
    CHECK(offset == -1);
  }
}
