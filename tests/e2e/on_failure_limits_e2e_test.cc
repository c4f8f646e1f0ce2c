// The onFailure destination on a real Apache Kafka broker, which enforces max.message.bytes:
// a given-up record near Kafka's default limit (above librdkafka's) is written whole while
// the 50 good records of its batch reach the function; a destination whose limit is below
// the record disables the mapping with the reason instead of stalling it.

#include "config/config.h"
#include "e2e_harness.h"
#include "kafka/kafka.h"
#include "poller/dead_letter.h"

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <sstream>

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

} // namespace

TEST_CASE("On Apache Kafka: a ~1 MB record given up reaches the onFailure topic whole, a "
          "destination that refuses a record for good disables its mapping",
          "[e2e]") {
  const std::string bootstrap = sharedBroker();
  // Under the topic's default max.message.bytes (1,048,588), above librdkafka's default
  // message.max.bytes (1,000,000) that the onFailure producer had.
  constexpr std::size_t kBig = 1040000;
  const std::string big(kBig, 'b');
  const std::string source = uniqueName("near-limit");
  const std::string dlq = source + "-failed";
  createTopic(bootstrap, source, 1);
  createTopic(bootstrap, dlq, 1);
  // A destination with a limit far below its source's.
  const std::string small_source = uniqueName("refused");
  const std::string small_dlq = small_source + "-failed";
  createTopic(bootstrap, small_source, 1);
  createTopic(bootstrap, small_dlq, 1, {{"max.message.bytes", "20000"}});
  // A destination deleted while kesm runs.
  const std::string gone_source = uniqueName("dlq-gone");
  const std::string gone_dlq = gone_source + "-failed";
  createTopic(bootstrap, gone_source, 1);
  createTopic(bootstrap, gone_dlq, 1);
  {
    app::Producer producer(bootstrap, {{"message.max.bytes", "2000000"}});
    for (int i = 0; i < 51; ++i) {
      producer.produce(source, 0, "k" + std::to_string(i), i == 25 ? big : "v" + std::to_string(i));
    }
    producer.produce(small_source, 0, "k0", std::string(50000, 's'));
    producer.flush(30s);
  }
  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    for (const auto& r : batch) {
      if (r.value && r.value->size() >= 50000) {
        return samplefn::Verdict::kFailHttp500;
      }
    }
    return samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const auto& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);

  auto spec = [&](const std::string& name, const std::string& topic, const std::string& dest) {
    MappingYaml m = e2eMapping(name, bootstrap, topic, function.url());
    m.librdkafka.erase("debug");
    m.retry.set("maximumRetryAttempts", 0).set("bisectBatchOnFunctionError", true);
    m.on_failure = "kafka://" + dest;
    return m;
  };
  const std::uint16_t port = freePort();
  const std::string yaml = e2eConfigYaml(port, {spec("near-limit", source, dlq),
                                                spec("refused", small_source, small_dlq),
                                                spec("gone", gone_source, gone_dlq)});
  const auto config = config::parseConfig(yaml, "e2e-limits.yaml", kafka::checkSetting);
  const std::string log_path = writeTempFile("e2e-limits.log", "");
  DumpLogOnFailure dump(log_path);
  INFO("kesm log: " << log_path << "\n" << yaml);
  KesmProcess kesm({"run", "--config", writeTempFile("e2e-limits.yaml", yaml)}, log_path);

  bool done = waitUntil(90s, [&] {
    auto c = committedNow(config.mappings[0]);
    return c.count(0) && c.at(0) == 51;
  });
  bool disabled = waitUntil(90s, [&] {
    return httpGet(port, "/status").body.find("\"name\":\"refused\",\"state\":\"Disabled\"") !=
           std::string::npos;
  });
  // Then the third destination goes, and a record is given up to it.
  deleteTopic(bootstrap, gone_dlq);
  {
    app::Producer producer(bootstrap);
    producer.produce(gone_source, 0, "k0", std::string(60000, 'g'));
    producer.flush(30s);
  }
  const auto deleted_at = std::chrono::steady_clock::now();
  bool gone_disabled = waitUntil(90s, [&] {
    return httpGet(port, "/status").body.find("\"name\":\"gone\",\"state\":\"Disabled\"") !=
           std::string::npos;
  });
  const double gone_after =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - deleted_at).count();
  auto status = httpGet(port, "/status").body;
  auto metrics = httpGet(port, "/metrics").body;
  INFO(status);
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);
  const std::string log = readFile(log_path);

  // The near-limit record is in the onFailure topic, byte for byte; the 50 others reached
  // the function.
  REQUIRE(done);
  CHECK(deliveries.missing(0, 51) == std::vector<std::int64_t>{25});
  auto written = readTopic(bootstrap, dlq, 1, {{"fetch.max.bytes", "4000000"}});
  REQUIRE(written.size() == 1);
  auto record = written.front();
  CHECK(record.key == std::optional<std::string>("k25"));
  CHECK(record.value == std::optional<std::string>(big));
  CHECK(record.headers[poller::kHeaderOffset] == "25");
  CHECK(metric(metrics, "kesm_events_on_failure_delivered_total", {{"mapping", "near-limit"}}) ==
        1);
  CHECK(log.find(dlq + " accepts records up to 1048588 bytes") != std::string::npos);
  CHECK(log.find("the onFailure topic " + dlq + " only") == std::string::npos); // equal: no warning

  // The refusing destination: warned at startup, disabled with the broker's reason at the
  // first refusal, nothing committed.
  CHECK(log.find("the onFailure topic " + small_dlq + " only up to 20000") != std::string::npos);
  REQUIRE(disabled);
  CHECK(status.find("the onFailure topic " + small_dlq + " refused records given up (" +
                    small_source + "-0@0..0)") != std::string::npos);
  CHECK(status.find("Message size too large") != std::string::npos);
  CHECK(metric(metrics, "kesm_on_failure_delivery_errors_total", {{"mapping", "refused"}}) >= 1);
  for (const auto& [partition, offset] : committedNow(config.mappings[1])) {
    CHECK(offset == -1);
  }

  // The deleted destination: disabled at the first write, nothing committed.
  WARN("a deleted onFailure topic disabled its mapping " << gone_after
                                                         << " s after the record was produced");
  REQUIRE(gone_disabled);
  CHECK(status.find("the onFailure topic " + gone_dlq + " refused records given up (" +
                    gone_source + "-0@0..0)") != std::string::npos);
  CHECK(status.find(gone_dlq + " no longer exists") != std::string::npos);
  for (const auto& [partition, offset] : committedNow(config.mappings[2])) {
    CHECK(offset == -1);
  }
}
