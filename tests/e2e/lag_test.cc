// kesm's per-partition lag on /metrics against Kafka's own ConsumerGroupCommand.

#include "config/config.h"
#include "e2e_harness.h"
#include "kafka/kafka.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;

TEST_CASE("Per-partition lag on /metrics equals what Kafka's ConsumerGroupCommand reports",
          "[e2e]") {
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("lag");
  constexpr int kPartitions = 6;
  createTopic(bootstrap, topic, kPartitions);

  // Partition p first gets 100 * (p + 1) records, all delivered and committed; then the
  // function fails and partition p gets 37 * (p + 1) more, which stay as lag.
  std::atomic<bool> failing{false};
  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>&) {
    return failing ? samplefn::Verdict::kFailHttp500 : samplefn::Verdict::kSucceed;
  };
  samplefn::SampleFunction function(fn);
  MappingYaml m = e2eMapping(topic, bootstrap, topic, function.url(), 2, 2);
  m.scaling.set("gracePeriod", "2s");
  const std::uint16_t port = freePort();
  const std::string yaml = e2eConfigYaml(port, {m});
  const auto config = config::parseConfig(yaml, "lag.yaml", kafka::checkSetting);
  const std::string log_path = writeTempFile("e2e-lag.log", "");
  DumpLogOnFailure dump(log_path);
  INFO("kesm log: " << log_path);
  KesmProcess kesm({"run", "--verbose", "--config", writeTempFile("e2e-lag.yaml", yaml)}, log_path);

  app::Producer producer(bootstrap);
  auto produce = [&](int per_unit) {
    for (int p = 0; p < kPartitions; ++p) {
      for (int i = 0; i < per_unit * (p + 1); ++i) {
        producer.produce(topic, p, std::nullopt, "x");
      }
    }
    producer.flush(60s);
  };
  produce(100);
  REQUIRE(waitUntil(60s, [&] {
    auto committed = committedOffsets(config.mappings[0]);
    if (static_cast<int>(committed.size()) != kPartitions) {
      return false;
    }
    for (const auto& [p, c] : committed) {
      if (c != 100 * (p + 1)) {
        return false;
      }
    }
    return true;
  }));
  failing = true;
  produce(37);

  // kesm's view, once its probe has seen the new high watermarks (one evaluation interval).
  const std::map<std::string, std::string> mapping{{"mapping", topic}};
  auto lagOf = [&](const std::string& body, int p) {
    return metric(body, "kesm_offset_lag",
                  {{"mapping", topic}, {"topic", topic}, {"partition", std::to_string(p)}});
  };
  std::string body;
  REQUIRE(waitUntil(30s, [&] {
    body = httpGet(port, "/metrics").body;
    return metric(body, "kesm_mapping_offset_lag", mapping) == 37 * 21 &&
           metric(body, "kesm_offset_lag_stale", mapping) == 0;
  }));
  auto rows = kafkaToolOffsets(sharedBrokerDir(), "kesm-" + topic, topic);
  // And kesm again after the tool: the state is still the same.
  const std::string after = httpGet(port, "/metrics").body;
  REQUIRE(static_cast<int>(rows.size()) == kPartitions);
  std::string table;
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(rows[p].lag == 37 * (p + 1));
    CHECK(lagOf(body, p) == rows[p].lag);
    CHECK(lagOf(after, p) == rows[p].lag);
    table += "p" + std::to_string(p) + " kesm " + std::to_string(lagOf(body, p)) + " kafka " +
             std::to_string(rows[p].lag) + "; ";
  }
  CHECK(metric(body, "kesm_offset_lag_max", mapping) == 37 * 6);
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);
  WARN("lag agreement: " << 137 * 21 << " records sent, " << table);
}
