// Issue 13, items 1 and 4: a record whose event alone passes the 6 MiB payload limit is never
// sent; it goes through the failure path, and where it may not leave, its partition is held
// visibly (/status, kesm_partition_stalled_seconds) while the others progress.

#include "app/runtime.h"
#include "harness.h"
#include "kafka/kafka.h"
#include "net/http.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>

using namespace kesm;
using namespace kesm::test;

namespace {

// 4.8 MiB: about 6.4 MiB of base64, so its event alone can never fit in 6 MiB.
const std::string kHuge(4800 * 1024, 'x');

MappingYaml fastEvaluation(MappingYaml m) {
  m.scaling.set("evaluationInterval", "1s");
  return m;
}

} // namespace

TEST_CASE("a record too large for any invocation is never sent and goes to onFailure, the "
          "records around it are delivered",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("big", 1);
  cluster.createTopic("big-failed", 1);
  {
    app::Producer producer(cluster.bootstrapServers(), {{"message.max.bytes", "10000000"}});
    producer.produce("big", 0, "k0", "small-0");
    producer.produce("big", 0, "k1", kHuge);
    producer.produce("big", 0, "k2", "small-2");
    producer.flush(30s);
  }
  Deliveries deliveries;
  std::atomic<std::size_t> largest{0};
  samplefn::SampleFunctionOptions fn;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    deliveries.add(batch);
    for (const auto& r : batch) {
      largest = std::max(largest.load(), r.value ? r.value->size() : 0);
    }
  };
  samplefn::SampleFunction function(fn);
  MappingYaml m = testMapping("big", cluster.bootstrapServers(), "big", function.url(), 1, 1);
  m.on_failure = "kafka://big-failed";
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  bool committed = waitUntil(60s, [&] {
    auto c = committedOffsets(config.mappings[0]);
    return c.count(0) && c.at(0) == 3;
  });
  std::string metrics = scrape(runtime, "/metrics");
  REQUIRE(runtime.stop());
  INFO(metrics);
  REQUIRE(committed);
  CHECK(deliveries.has(0, 0));
  CHECK(deliveries.has(0, 2));
  CHECK_FALSE(deliveries.has(0, 1));
  CHECK(largest.load() < 100);
  CHECK(function.stats().failures == 0);
  CHECK(metricValue(metrics, "kesm_records_oversized_total{mapping=\"big\"}") == 1);
  CHECK(metricValue(metrics, "kesm_events_on_failure_delivered_total{mapping=\"big\"}") == 1);
  auto failed = readTopic(cluster.bootstrapServers(), "big-failed", 1, {});
  REQUIRE(failed.size() == 1);
  auto r = failed.front();
  CHECK(r.value == std::optional<std::string>(kHuge));
  CHECK(r.headers[std::string("kesm.source.offset")] == "1");
  CHECK(r.headers[std::string("kesm.error")].find("too large") != std::string::npos);
}

TEST_CASE("with unbounded retries and no onFailure, a too-large record holds its partition "
          "visibly while the other partition progresses",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("held", 2);
  {
    app::Producer producer(cluster.bootstrapServers(), {{"message.max.bytes", "10000000"}});
    producer.produce("held", 0, "k0", "small-0");
    producer.produce("held", 0, "k1", kHuge);
    producer.produce("held", 0, "k2", "small-2");
    for (int i = 0; i < 10; ++i) {
      producer.produce("held", 1, "k", "v" + std::to_string(i));
    }
    producer.flush(30s);
  }
  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  auto config =
      config::parseConfig(configYaml(fastEvaluation(testMapping("held", cluster.bootstrapServers(),
                                                                "held", function.url(), 1, 1))),
                          "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  std::string status;
  std::string metrics;
  // Held: partition 1 done, partition 0 committed up to the huge record, the stall visible
  // in /status (a note and stalledSince) and in the gauge for at least two seconds.
  bool visible = waitUntil(60s, [&] {
    status = scrape(runtime, "/status");
    metrics = scrape(runtime, "/metrics");
    return status.find("HELD") != std::string::npos &&
           metricValue(metrics, "kesm_partition_stalled_seconds{mapping=\"held\",partition=\"0\","
                                "topic=\"held\"}") >= 2 &&
           metricValue(metrics, "kesm_partition_stalled_seconds{mapping=\"held\",partition=\"1\","
                                "topic=\"held\"}") == 0;
  });
  auto committed = committedOffsets(config.mappings[0]);
  REQUIRE(runtime.stop());
  INFO(status);
  INFO(metrics);
  REQUIRE(visible);
  CHECK(status.find("too large") != std::string::npos);
  CHECK(status.find("\"stalledSince\":\"") != std::string::npos);
  CHECK(committed.at(0) == 1);
  CHECK(committed.at(1) == 10);
  CHECK(deliveries.has(0, 0));
  CHECK_FALSE(deliveries.has(0, 1));
  CHECK_FALSE(deliveries.has(0, 2)); // nothing after the held record
  CHECK(metricValue(metrics, "kesm_records_oversized_total{mapping=\"held\"}") == 1);
  CHECK(metricValue(metrics, "kesm_events_dropped_total{mapping=\"held\"}") == 0);
}

TEST_CASE("a function answering 413 gets the batch split whatever bisect says, and a record it "
          "refuses alone goes to onFailure",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("fat", 1);
  cluster.createTopic("fat-failed", 1);
  produceNumbered(cluster.bootstrapServers(), "fat", 1, 8);
  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    // More than two records is too much for it, and offset 5 is too much in any company.
    bool has_five = std::any_of(batch.begin(), batch.end(),
                                [](const samplefn::ReceivedRecord& r) { return r.offset == 5; });
    return batch.size() > 2 || has_five ? samplefn::Verdict::kFailHttp413
                                        : samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  MappingYaml m = testMapping("fat", cluster.bootstrapServers(), "fat", function.url(), 1, 1);
  m.on_failure = "kafka://fat-failed";
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  REQUIRE_FALSE(config.mappings[0].retry.bisect_batch_on_function_error);
  app::Runtime runtime(config, {});
  runtime.start();
  bool committed = waitUntil(60s, [&] {
    auto c = committedOffsets(config.mappings[0]);
    return c.count(0) && c.at(0) == 8;
  });
  std::string metrics = scrape(runtime, "/metrics");
  REQUIRE(runtime.stop());
  INFO(metrics);
  REQUIRE(committed);
  CHECK(deliveries.missing(0, 8) == std::vector<std::int64_t>{5});
  CHECK(metricValue(metrics,
                    "kesm_invocations_total{mapping=\"fat\",outcome=\"payload_too_large\"}") >= 3);
  CHECK(metricValue(metrics, "kesm_batches_bisected_total{mapping=\"fat\"}") >= 2);
  CHECK(metricValue(metrics, "kesm_records_oversized_total{mapping=\"fat\"}") == 1);
  auto failed = readTopic(cluster.bootstrapServers(), "fat-failed", 1, {});
  REQUIRE(failed.size() == 1);
  auto r = failed.front();
  CHECK(r.headers[std::string("kesm.source.offset")] == "5");
}

TEST_CASE("a timed-out batch is not sent again while its first attempt may still run",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("slow", 1);
  produceNumbered(cluster.bootstrapServers(), "slow", 1, 5);
  Deliveries deliveries;
  std::atomic<int> calls{0};
  std::atomic<int> in_handler{0};
  std::atomic<int> most_at_once{0};
  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>&) {
    int now = ++in_handler;
    int seen = most_at_once.load();
    while (now > seen && !most_at_once.compare_exchange_weak(seen, now)) {
    }
    if (++calls == 1) {
      std::this_thread::sleep_for(1500ms); // past kesm's 1 s timeout, within one more
    }
    --in_handler;
    return samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  MappingYaml m = testMapping("slow", cluster.bootstrapServers(), "slow", function.url(), 1, 1);
  m.function.set("timeout", "1s");
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  bool committed = waitUntil(60s, [&] {
    auto c = committedOffsets(config.mappings[0]);
    return c.count(0) && c.at(0) == 5;
  });
  REQUIRE(runtime.stop());
  REQUIRE(committed);
  CHECK(calls.load() >= 2);        // the timed-out batch was sent again
  CHECK(most_at_once.load() == 1); // but never while the first attempt was still running
  CHECK(deliveries.missing(0, 5).empty());
}
