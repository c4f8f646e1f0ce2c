// The lag probe against librdkafka's mock cluster when the group coordinator moves or loads,
// as it does while a broker restarts.

#include "app/mock_kafka.h"
#include "config/config.h"
#include "harness.h"
#include "kafka/kafka.h"
#include "scaler/lag_source.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::test;

TEST_CASE("lag probe: a coordinator that moved or is loading fails one probe, the next succeeds",
          "[integration]") {
  // librdkafka 2.0.2 dereferences the client's consumer group when an OffsetFetch answers
  // NOT_COORDINATOR; a probe client without one crashed here (kesm died when a real broker
  // came back from an outage).
  app::MockKafkaCluster cluster;
  cluster.createTopic("orders", 3);
  produceNumbered(cluster.bootstrapServers(), "orders", 3, 10);
  auto config = config::parseConfig(
      mappingYaml("orders", cluster.bootstrapServers(), "orders", "http://127.0.0.1:9/", 1, 1),
      "probe.yaml", kafka::checkSetting);
  auto source = scaler::makeKafkaLagSource(config.mappings[0], 5s);
  REQUIRE(source->probe().sample.has_value());

  constexpr std::int16_t kOffsetFetch = 9;
  constexpr int kNotCoordinator = 16;
  constexpr int kLoadInProgress = 14;
  constexpr int kCoordinatorNotAvailable = 15;
  cluster.failNextRequests(kOffsetFetch,
                           {kNotCoordinator, kLoadInProgress, kCoordinatorNotAvailable});
  int failed = 0;
  for (int i = 0; i < 3; ++i) {
    auto result = source->probe();
    if (!result.sample) {
      failed++;
      CHECK_FALSE(result.error.empty());
    }
  }
  CHECK(failed >= 1);
  auto result = source->probe();
  REQUIRE(result.sample.has_value());
  for (const auto& p : result.sample->partitions) {
    CHECK(p.high == 10);
  }
}
