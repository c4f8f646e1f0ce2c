// Issue 6's promises on a real Apache Kafka broker, three mappings in one kesm process: a
// poison record bisected out of its batch of 100 into the onFailure topic while its 99
// neighbours succeed; a function answering 404 disables its mapping within one retry cycle
// while the others keep delivering; a filter passes exactly the matching records.

#include "config/config.h"
#include "e2e_harness.h"
#include "kafka/kafka.h"
#include "poller/dead_letter.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <mutex>
#include <set>

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;

TEST_CASE("On Apache Kafka: bisect sends a poison record alone to the onFailure topic, a 404 "
          "disables only its mapping, a filter passes exactly the matching records",
          "[e2e]") {
  const std::string bootstrap = sharedBroker();
  // 1. Poison: one partition, 100 records, the one at offset 42 always fails.
  const std::string orders = uniqueName("poison");
  const std::string failed = orders + "-failed";
  createTopic(bootstrap, orders, 1);
  createTopic(bootstrap, failed, 1);
  produceNumbered(bootstrap, orders, 1, 100);
  Deliveries order_deliveries;
  std::atomic<std::size_t> first_batch{0};
  samplefn::SampleFunctionOptions order_fn;
  order_fn.decide = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    std::size_t none = 0;
    first_batch.compare_exchange_strong(none, batch.size());
    for (const auto& r : batch) {
      if (r.offset == 42) {
        return samplefn::Verdict::kFailHttp500;
      }
    }
    return samplefn::Verdict::kSucceed;
  };
  order_fn.on_batch = [&](const auto& batch) { order_deliveries.add(batch); };
  samplefn::SampleFunction order_function(order_fn);

  // 2. A function that is not there.
  const std::string gone = uniqueName("gone");
  createTopic(bootstrap, gone, 2);
  produceNumbered(bootstrap, gone, 2, 100);
  std::mutex gone_mutex;
  std::map<std::pair<std::int32_t, std::int64_t>, int> gone_seen;
  samplefn::SampleFunctionOptions gone_fn;
  gone_fn.decide = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    std::lock_guard lock(gone_mutex);
    for (const auto& r : batch) {
      gone_seen[{r.partition, r.offset}]++;
    }
    return samplefn::Verdict::kFailHttp404;
  };
  samplefn::SampleFunction gone_function(gone_fn);

  // 3. A filter: JSON orders above 100 pass; other JSON, text and tombstones do not.
  const std::string events = uniqueName("filtered");
  createTopic(bootstrap, events, 2);
  std::set<std::pair<std::int32_t, std::int64_t>> expected;
  {
    app::Producer producer(bootstrap);
    for (int p = 0; p < 2; ++p) {
      for (int i = 0; i < 400; ++i) {
        std::optional<std::string> value;
        if (i % 7 == 0) {
          value = std::nullopt;
        } else if (i % 2 == 0) {
          value = "{\"type\":\"order\",\"amount\":" + std::to_string(i) + ",\"tags\":[\"x\"]}";
          if (i > 100) {
            expected.insert({p, i});
          }
        } else if (i % 3 == 0) {
          value = "{\"type\":\"ORDER\",\"amount\":500}"; // case matters for exact values
        } else {
          value = "order " + std::to_string(i);
        }
        producer.produce(events, p, std::nullopt, value);
      }
    }
    producer.flush(30s);
  }
  std::mutex events_mutex;
  std::set<std::pair<std::int32_t, std::int64_t>> received;
  samplefn::SampleFunctionOptions events_fn;
  events_fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    std::lock_guard lock(events_mutex);
    for (const auto& r : batch) {
      received.insert({r.partition, r.offset});
    }
  };
  samplefn::SampleFunction events_function(events_fn);

  auto spec = [&](const std::string& name, const std::string& topic, const std::string& url) {
    MappingYaml m = e2eMapping(name, bootstrap, topic, url);
    m.librdkafka.erase("debug");
    m.batching.set("maximumBatchingWindow", "1s");
    return m;
  };
  MappingYaml poison = spec("poison", orders, order_function.url());
  poison.retry.set("maximumRetryAttempts", 2).set("bisectBatchOnFunctionError", true);
  poison.on_failure = "kafka://" + failed;
  MappingYaml missing = spec("gone", gone, gone_function.url());
  MappingYaml filtered = spec("filtered", events, events_function.url());
  filtered.filters = {R"({value: {type: ["order"], amount: [{"numeric": [">", 100]}]}})"};
  const std::uint16_t port = freePort();
  const std::string yaml = e2eConfigYaml(port, {poison, missing, filtered});
  const auto config = config::parseConfig(yaml, "e2e-errors.yaml", kafka::checkSetting);
  const std::string log_path = writeTempFile("e2e-errors.log", "");
  DumpLogOnFailure dump(log_path);
  INFO("kesm log: " << log_path << "\n" << yaml);
  KesmProcess kesm({"run", "--config", writeTempFile("e2e-errors.yaml", yaml)}, log_path);

  // The 404 mapping is disabled quickly, at its first answer.
  bool disabled = waitUntil(30s, [&] {
    auto status = httpGet(port, "/status");
    return status.body.find("\"name\":\"gone\",\"state\":\"Disabled\"") != std::string::npos;
  });
  CHECK(disabled);
  // The other two finish their work meanwhile and after.
  bool poison_done = waitUntil(90s, [&] {
    auto committed = committedOffsets(config.mappings[0]);
    return committed.count(0) && committed.at(0) == 100;
  });
  bool filtered_done = waitUntil(90s, [&] {
    auto committed = committedOffsets(config.mappings[2]);
    return committed.size() == 2 && committed.at(0) == 400 && committed.at(1) == 400;
  });
  auto status = httpGet(port, "/status");
  auto metrics = httpGet(port, "/metrics");
  INFO(status.body);
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);
  REQUIRE(poison_done);
  REQUIRE(filtered_done);

  // 1. The poison alone reached the onFailure topic; the 99 others reached the function once.
  CHECK(first_batch.load() == 100);
  CHECK(order_deliveries.distinct() == 99);
  CHECK(order_deliveries.total() == 99);
  CHECK(order_deliveries.missing(0, 100) == std::vector<std::int64_t>{42});
  auto dead = readTopic(bootstrap, failed, 1);
  REQUIRE(dead.size() == 1);
  auto record = dead.front();
  CHECK(record.value == std::optional<std::string>("p0-42"));
  CHECK(record.headers[poller::kHeaderOffset] == "42");
  CHECK(record.headers[poller::kHeaderTopic] == orders);
  CHECK(record.headers[poller::kHeaderAttempts] == "3");
  CHECK(metric(metrics.body, "kesm_events_on_failure_delivered_total", {{"mapping", "poison"}}) ==
        1);

  // 2. Disabled with its reason; nothing of it committed; no record sent twice.
  CHECK(status.body.find("the function answered HTTP 404") != std::string::npos);
  CHECK(metric(metrics.body, "kesm_mapping_state", {{"mapping", "gone"}, {"state", "Disabled"}}) ==
        1);
  for (const auto& [partition, offset] : committedOffsets(config.mappings[1])) {
    CHECK(offset == -1);
  }
  {
    std::lock_guard lock(gone_mutex);
    CHECK(!gone_seen.empty());
    for (const auto& [r, count] : gone_seen) {
      CHECK(count == 1);
    }
  }

  // 3. Exactly the matching records, and the rest counted as filtered.
  {
    std::lock_guard lock(events_mutex);
    CHECK(received == expected);
  }
  CHECK(metric(metrics.body, "kesm_events_filtered_total", {{"mapping", "filtered"}}) ==
        static_cast<double>(800 - expected.size()));
}

TEST_CASE("A topic deleted while kesm runs disables its mapping, the other mapping keeps "
          "delivering",
          "[e2e]") {
  const std::string bootstrap = sharedBroker();
  const std::string doomed = uniqueName("doomed");
  const std::string steady = uniqueName("steady");
  createTopic(bootstrap, doomed, 2);
  createTopic(bootstrap, steady, 2);
  produceNumbered(bootstrap, doomed, 2, 50);
  Deliveries doomed_deliveries;
  Deliveries steady_deliveries;
  samplefn::SampleFunctionOptions doomed_fn;
  doomed_fn.on_batch = [&](const auto& batch) { doomed_deliveries.add(batch); };
  samplefn::SampleFunction doomed_function(doomed_fn);
  samplefn::SampleFunctionOptions steady_fn;
  steady_fn.on_batch = [&](const auto& batch) { steady_deliveries.add(batch); };
  samplefn::SampleFunction steady_function(steady_fn);
  auto spec = [&](const std::string& topic, const std::string& url) {
    MappingYaml m = e2eMapping(topic, bootstrap, topic, url);
    m.librdkafka.erase("debug");
    return m;
  };
  const std::uint16_t port = freePort();
  const std::string yaml = e2eConfigYaml(
      port, {spec(doomed, doomed_function.url()), spec(steady, steady_function.url())});
  const std::string log_path = writeTempFile("e2e-deleted-topic.log", "");
  DumpLogOnFailure dump(log_path);
  INFO("kesm log: " << log_path);
  KesmProcess kesm({"run", "--config", writeTempFile("e2e-deleted-topic.yaml", yaml)}, log_path);
  REQUIRE(waitUntil(60s, [&] {
    return doomed_deliveries.missing(0, 50).empty() && doomed_deliveries.missing(1, 50).empty();
  }));
  deleteTopic(bootstrap, doomed);
  const std::string disabled = "\"name\":\"" + doomed + "\",\"state\":\"Disabled\"";
  // Two probes in a row at the 1 s evaluation interval, plus the metadata's own delay.
  bool was_disabled = waitUntil(
      30s, [&] { return httpGet(port, "/status").body.find(disabled) != std::string::npos; });
  produceNumbered(bootstrap, steady, 2, 100);
  bool steady_done = waitUntil(60s, [&] {
    return steady_deliveries.missing(0, 100).empty() && steady_deliveries.missing(1, 100).empty();
  });
  auto status = httpGet(port, "/status");
  INFO(status.body);
  CHECK(was_disabled);
  CHECK(status.body.find("does not exist") != std::string::npos);
  CHECK(steady_done);
  CHECK(kesm.running());
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);
}
