// startingPosition LATEST against the mock cluster: the end a new group starts from is
// committed at the first assignment, so what is produced while kesm is down is delivered
// after a restart, not skipped. Partitions added while kesm runs (which the mock cannot do):
// tests/e2e/new_partitions_e2e_test.cc.

#include "app/runtime.h"
#include "harness.h"
#include "kafka/kafka.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::test;

namespace {

void produceRange(const std::string& bootstrap, const std::string& topic, int partitions, int from,
                  int to) {
  app::Producer producer(bootstrap);
  for (int p = 0; p < partitions; ++p) {
    for (int i = from; i < to; ++i) {
      producer.produce(topic, p, std::nullopt, "p" + std::to_string(p) + "-" + std::to_string(i));
    }
  }
  producer.flush(10s);
}

bool committedAll(const config::Mapping& mapping, std::int64_t offset) {
  auto c = committedOffsets(mapping);
  return c.size() == 2 && c.at(0) == offset && c.at(1) == offset;
}

} // namespace

TEST_CASE("LATEST commits where a new group starts at its first assignment, so records "
          "produced while kesm is down are delivered after a restart",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("fresh", 2);
  produceRange(cluster.bootstrapServers(), "fresh", 2, 0, 10); // before the mapping: skipped
  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.on_batch = [&](const auto& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  MappingYaml m = testMapping("fresh", cluster.bootstrapServers(), "fresh", function.url(), 1, 1);
  m.source.set("startingPosition", "LATEST");
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  {
    app::Runtime runtime(config, {});
    runtime.start();
    // Nothing was delivered yet, and the start is committed already.
    REQUIRE(waitUntil(30s, [&] { return committedAll(config.mappings[0], 10); }));
    CHECK(deliveries.total() == 0);
    produceRange(cluster.bootstrapServers(), "fresh", 2, 10, 15);
    REQUIRE(waitUntil(30s, [&] { return committedAll(config.mappings[0], 15); }));
    REQUIRE(runtime.stop());
  }
  produceRange(cluster.bootstrapServers(), "fresh", 2, 15, 20); // while kesm is down
  {
    app::Runtime runtime(config, {});
    runtime.start();
    REQUIRE(waitUntil(30s, [&] { return committedAll(config.mappings[0], 20); }));
    REQUIRE(runtime.stop());
  }
  const std::vector<std::int64_t> before_start{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  CHECK(deliveries.missing(0, 20) == before_start);
  CHECK(deliveries.missing(1, 20) == before_start);
  CHECK(deliveries.total() == 20); // each once
  for (auto& [partition, arrivals] : deliveries.perPartition()) {
    CHECK(std::is_sorted(arrivals.begin(), arrivals.end()));
  }
}
