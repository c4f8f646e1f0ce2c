// The hostile records of tests/integration/hostile_records.h through a real Apache Kafka
// broker: its record format, its limits, its fetch responses.

#include "../integration/hostile_records.h"
#include "e2e_harness.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;

TEST_CASE("Hostile records arrive byte for byte through Apache Kafka", "[e2e]") {
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("hostile");
  // Kafka refuses record batches above max.message.bytes (1 MiB + 12 by default); the 1 MiB
  // value with its key and header needs a little more.
  createTopic(bootstrap, topic, 1, {{"max.message.bytes", "4000000"}});
  checkHostileRecordsArrive(bootstrap, topic, [&](const std::string& url) {
    return ConfigYaml{.listen = "127.0.0.1:" + std::to_string(freePort()),
                      .mappings = {e2eMapping(topic, bootstrap, topic, url)}};
  });
}
