// AT_TIMESTAMP on a real Apache Kafka broker: a new group starts at the first record at or
// after the timestamp; once the group has committed, its offsets win over the timestamp, as
// in AWS Lambda.

#include "config/config.h"
#include "e2e_harness.h"
#include "kafka/kafka.h"

#include <catch2/catch.hpp>
#include <csignal>
#include <ctime>

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;

namespace {

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string rfc3339(std::int64_t epoch_ms) {
  std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void produceAt(const std::string& bootstrap, const std::string& topic, int partitions, int count,
               std::int64_t timestamp_ms) {
  app::Producer producer(bootstrap);
  for (int p = 0; p < partitions; ++p) {
    for (int i = 0; i < count; ++i) {
      producer.produce(topic, p, std::nullopt, "r" + std::to_string(i), {}, timestamp_ms);
    }
  }
  producer.flush(30s);
}

} // namespace

TEST_CASE("AT_TIMESTAMP starts a new group at the timestamp, and committed offsets win after",
          "[e2e]") {
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("at-time");
  constexpr int kPartitions = 2;
  createTopic(bootstrap, topic, kPartitions);
  const std::int64_t now = nowMs();
  produceAt(bootstrap, topic, kPartitions, 50, now - 60 * 60 * 1000); // offsets 0..49: an hour ago
  produceAt(bootstrap, topic, kPartitions, 50, now);                  // offsets 50..99: now

  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.on_batch = [&](const auto& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  MappingYaml m = e2eMapping(topic, bootstrap, topic, function.url());
  m.librdkafka.erase("debug");
  m.source.set("startingPosition", "AT_TIMESTAMP")
      .set("startingPositionTimestamp", rfc3339(now - 30 * 60 * 1000));
  const std::string yaml = e2eConfigYaml(freePort(), {m});
  const auto config = config::parseConfig(yaml, "at-time.yaml", kafka::checkSetting);
  const std::string config_path = writeTempFile("e2e-at-time.yaml", yaml);
  const std::string log_path = writeTempFile("e2e-at-time.log", "");
  DumpLogOnFailure dump(log_path);
  INFO("kesm log: " << log_path << "\n" << yaml);

  auto committedAt = [&](std::int64_t end) {
    auto committed = committedNow(config.mappings[0]); // empty while the coordinator loads
    return committed.size() == kPartitions &&
           std::all_of(committed.begin(), committed.end(),
                       [&](const auto& kv) { return kv.second == end; });
  };
  {
    KesmProcess kesm({"run", "--config", config_path}, log_path);
    REQUIRE(waitUntil(60s, [&] { return committedAt(100); }));
    kesm.signal(SIGTERM);
    CHECK(kesm.wait(30s) == 0);
  }
  // Only the records at or after the timestamp, each once.
  for (int p = 0; p < kPartitions; ++p) {
    auto arrivals = deliveries.perPartition()[p];
    REQUIRE(arrivals.size() == 50);
    CHECK(arrivals.front() == 50);
    CHECK(arrivals.back() == 99);
  }

  // Older than the timestamp, but after the group's commit: a restart delivers them.
  produceAt(bootstrap, topic, kPartitions, 20, now - 2 * 60 * 60 * 1000); // offsets 100..119
  {
    KesmProcess kesm({"run", "--config", config_path}, log_path);
    REQUIRE(waitUntil(60s, [&] { return committedAt(120); }));
    kesm.signal(SIGTERM);
    CHECK(kesm.wait(30s) == 0);
  }
  for (int p = 0; p < kPartitions; ++p) {
    auto arrivals = deliveries.perPartition()[p];
    REQUIRE(arrivals.size() == 70);
    CHECK(arrivals[50] == 100);
    CHECK(arrivals.back() == 119);
  }
}
