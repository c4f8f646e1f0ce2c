// The controller against the mock cluster: the partition cap holds under a burst, and the
// lag it publishes matches what a client outside kesm reads from Kafka.

#include "app/runtime.h"
#include "harness.h"
#include "kafka/kafka.h"
#include "net/http.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <librdkafka/rdkafkacpp.h>
#include <memory>

using namespace kesm;
using namespace kesm::test;

namespace {

std::string controllerYaml(const std::string& name, const std::string& bootstrap,
                           const std::string& topic, const std::string& url, int min_pollers,
                           int max_pollers) {
  MappingYaml m = testMapping(name, bootstrap, topic, url, min_pollers, max_pollers);
  m.scaling.set("evaluationInterval", "1s")
      .set("scaleDownStabilization", "5s")
      .set("gracePeriod", "5s")
      // One batch per poller, so a burst asks for one poller per partition and the cap at
      // the partition count is what holds it (with more, fewer pollers give every partition
      // a slot).
      .set("maxConcurrentBatches", 1);
  m.retry.set("maximumBackoff", "200ms");
  return configYaml(m);
}

// Per partition: high watermark minus the group's committed offset, read by a plain
// librdkafka consumer that never joins the group (not kesm's lag probe).
std::map<std::int32_t, std::int64_t> independentLag(const std::string& bootstrap,
                                                    const std::string& group,
                                                    const std::string& topic, int partitions) {
  std::string err;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  conf->set("bootstrap.servers", bootstrap, err);
  conf->set("group.id", group, err);
  conf->set("enable.auto.commit", "false", err);
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), err));
  REQUIRE(consumer);
  std::vector<RdKafka::TopicPartition*> tps;
  for (int p = 0; p < partitions; ++p) {
    tps.push_back(RdKafka::TopicPartition::create(topic, p));
  }
  REQUIRE(consumer->committed(tps, 10000) == RdKafka::ERR_NO_ERROR);
  std::map<std::int32_t, std::int64_t> lag;
  for (auto* tp : tps) {
    std::int64_t low = 0;
    std::int64_t high = 0;
    REQUIRE(consumer->query_watermark_offsets(topic, tp->partition(), &low, &high, 10000) ==
            RdKafka::ERR_NO_ERROR);
    std::int64_t committed = tp->offset() >= 0 ? tp->offset() : low; // TRIM_HORIZON
    lag[tp->partition()] = high - committed;
  }
  RdKafka::TopicPartition::destroy(tps);
  consumer->close();
  return lag;
}

} // namespace

TEST_CASE("a topic of 3 partitions never runs more than 3 pollers, whatever the maximum",
          "[integration][scaling]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("narrow", 3);
  // 9,000 records at 250 records/s per poller (100 per 400 ms) is 36 s of one poller's work:
  // more than 3 pollers could drain in the 10 s target, so the cap is what binds.
  constexpr int kPerPartition = 3000;

  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.latency = std::chrono::milliseconds(400);
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);

  auto config = config::parseConfig(
      controllerYaml("narrow", cluster.bootstrapServers(), "narrow", function.url(), 1, 8),
      "narrow.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  produceNumbered(cluster.bootstrapServers(), "narrow", 3, kPerPartition);

  int peak_desired = 0;
  int peak_active = 0;
  bool drained = waitUntil(120s, [&] {
    auto s = runtime.snapshot().at(0);
    peak_desired = std::max(peak_desired, s.desired);
    peak_active = std::max(peak_active, s.active + s.stopping);
    return deliveries.distinct() == 3 * kPerPartition && s.lag && !s.lag_stale && s.lag->total == 0;
  });
  REQUIRE(runtime.stop());
  CHECK(drained);
  CHECK(peak_desired == 3); // the burst asked for more; the cap is the partition count
  CHECK(peak_active <= 3);
  for (int p = 0; p < 3; ++p) {
    CHECK(deliveries.missing(p, kPerPartition).empty());
  }
}

TEST_CASE("lag on /metrics equals high watermark minus committed offset read independently",
          "[integration][scaling]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("ledger", 3);
  constexpr int kPerPartition = 600;
  constexpr std::int32_t kStuck = 1;
  produceNumbered(cluster.bootstrapServers(), "ledger", 3, kPerPartition);

  // Every batch with a record of partition 1 past offset 300 fails: that partition stalls
  // with a stable, known lag while the others drain.
  std::atomic<int> failures{0};
  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    for (const auto& r : batch) {
      if (r.partition == kStuck && r.offset >= 300) {
        failures++;
        return samplefn::Verdict::kFailHttp500;
      }
    }
    return samplefn::Verdict::kSucceed;
  };
  samplefn::SampleFunction function(fn);

  // One poller per partition, so the stalled batch holds back only its own partition.
  auto config = config::parseConfig(
      controllerYaml("ledger", cluster.bootstrapServers(), "ledger", function.url(), 3, 3),
      "ledger.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();

  net::HttpClient scrape(
      net::parseHttpUrl("http://127.0.0.1:" + std::to_string(runtime.metricsPort()) + "/"));
  auto lagOnMetrics = [&](std::int32_t partition) {
    return metricValue(scrape.request("GET", "/metrics", "", {}, 5s).response.body,
                       "kesm_offset_lag{mapping=\"ledger\",partition=\"" +
                           std::to_string(partition) + "\",topic=\"ledger\"}");
  };
  // Settled: the two healthy partitions drained, the stuck one failing repeatedly.
  bool settled = waitUntil(60s, [&] {
    return failures.load() >= 3 && lagOnMetrics(0) == 0 && lagOnMetrics(2) == 0 &&
           lagOnMetrics(kStuck) > 0;
  });
  REQUIRE(settled);
  auto independent = independentLag(cluster.bootstrapServers(), "kesm-ledger", "ledger", 3);
  // kesm's gauges follow the next probe (1 s interval); nothing moves meanwhile.
  bool agree = waitUntil(10s, [&] {
    for (int p = 0; p < 3; ++p) {
      if (lagOnMetrics(p) != static_cast<double>(independent.at(p))) {
        return false;
      }
    }
    return true;
  });
  for (int p = 0; p < 3; ++p) {
    INFO("partition " << p << ": kesm " << lagOnMetrics(p) << ", independent "
                      << independent.at(p));
    CHECK(lagOnMetrics(p) == static_cast<double>(independent.at(p)));
  }
  CHECK(agree);
  CHECK(independent.at(kStuck) > 0);
  CHECK(independent.at(kStuck) <= kPerPartition - 200); // committed up to its stuck batch
  REQUIRE(runtime.stop());
}
