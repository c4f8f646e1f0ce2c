// Hostile records (see hostile_records.h) produced to librdkafka's mock cluster, read by the
// real kesm binary and delivered to the sample function; and 1 MiB records against the
// 6 MiB payload cap.

#include "hostile_records.h"

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <iterator>
#include <mutex>

using namespace kesm;
using namespace kesm::test;

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

} // namespace

TEST_CASE("hostile records arrive byte for byte, in order, as strict JSON", "[integration]") {
  const Nulls nulls = GENERATE(Nulls::kDefault, Nulls::kOmit);
  CAPTURE(nulls == Nulls::kOmit ? "nullValues: omit" : "nullValues: empty (default)");
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("hostile", 1);
  // The mock broker takes records of any size.
  checkHostileRecordsArrive(
      cluster.bootstrapServers(), "hostile",
      [&](const std::string& url) {
        return ConfigYaml{
            .mappings = {testMapping("hostile", cluster.bootstrapServers(), "hostile", url, 1, 1)}};
      },
      nulls);
}

TEST_CASE("1 MiB records are cut into batches under the 6 MiB payload cap", "[integration]") {
  // Two records of 1 MiB on each of 4 partitions (the mock keeps ~5 MB per partition).
  // Base64 makes each about 1.4 MB of JSON: four fit under 6 MiB, five do not.
  constexpr int kPartitions = 4;
  constexpr int kPerPartition = 2;
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("large", kPartitions);
  const std::string big = allByteValues(1024 * 1024);
  {
    app::Producer producer(cluster.bootstrapServers(), {{"message.max.bytes", "4000000"}});
    for (int i = 0; i < kPerPartition; ++i) {
      for (int p = 0; p < kPartitions; ++p) {
        producer.produce("large", p, "k" + std::to_string(i), big);
      }
    }
    producer.flush(60s);
  }

  Deliveries deliveries;
  std::mutex mutex;
  std::size_t largest_batch = 0;
  std::size_t bad_values = 0;
  samplefn::SampleFunctionOptions fn;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    std::lock_guard lock(mutex);
    largest_batch = std::max(largest_batch, batch.size());
    for (const auto& r : batch) {
      bad_values += r.value != big ? 1 : 0;
    }
    deliveries.add(batch);
  };
  samplefn::SampleFunction function(fn);

  const std::string yaml =
      mappingYaml("large", cluster.bootstrapServers(), "large", function.url(), 1, 1);
  const std::string config_path = writeTempFile("large.yaml", yaml);
  const std::string log_path = writeTempFile("large.log", "");
  {
    KesmProcess kesm({"run", "--config", config_path}, log_path);
    const bool all = waitUntil(60s, [&] {
      return deliveries.distinct() == static_cast<std::size_t>(kPartitions * kPerPartition);
    });
    INFO("kesm log:\n" << readFile(log_path));
    REQUIRE(all);
    kesm.signal(SIGTERM);
    CHECK(kesm.wait(30s) == 0);
  }
  CHECK(function.stats().failures == 0);
  std::lock_guard lock(mutex);
  CHECK(bad_values == 0);
  CHECK(largest_batch <= 4);
  CHECK(deliveries.orderViolation() == "");
}
