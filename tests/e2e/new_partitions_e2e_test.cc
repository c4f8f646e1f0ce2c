// startingPosition LATEST on a real Apache Kafka broker (the mock cluster cannot add
// partitions): partitions added while kesm runs are read from their beginning, found within
// seconds, and their lag is published before the pollers reach them.

#include "config/config.h"
#include "e2e_harness.h"
#include "kafka/kafka.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <csignal>
#include <mutex>
#include <set>
#include <thread>

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;

TEST_CASE("On Apache Kafka: with LATEST, every record produced after the start arrives, also "
          "those on partitions added while kesm runs, and their lag shows within seconds",
          "[e2e]") {
  using Clock = std::chrono::steady_clock;
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("grow");
  createTopic(bootstrap, topic, 4);
  produceNumbered(bootstrap, topic, 4, 10); // before the mapping: LATEST skips these

  std::mutex mutex;
  std::set<std::string> received;
  std::size_t skipped_received = 0;
  std::optional<Clock::time_point> first_on_new;
  samplefn::SampleFunctionOptions fn;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    std::lock_guard lock(mutex);
    for (const auto& r : batch) {
      if (r.value && r.value->rfind("r", 0) == 0) {
        received.insert(*r.value);
      } else {
        skipped_received++;
      }
      if (r.partition >= 4 && !first_on_new) {
        first_on_new = Clock::now();
      }
    }
  };
  samplefn::SampleFunction function(fn);

  MappingYaml m = e2eMapping(topic, bootstrap, topic, function.url(), 2, 2);
  m.librdkafka.erase("debug");
  m.source.set("startingPosition", "LATEST");
  const std::uint16_t port = freePort();
  const std::string yaml = e2eConfigYaml(port, {m});
  const auto config = config::parseConfig(yaml, "grow.yaml", kafka::checkSetting);
  const std::string log_path = writeTempFile("e2e-grow.log", "");
  DumpLogOnFailure dump(log_path);
  INFO("kesm log: " << log_path << "\n" << yaml);
  KesmProcess kesm({"run", "--config", writeTempFile("e2e-grow.yaml", yaml)}, log_path);

  // The start is committed at the first assignment: every partition at its end, 10.
  REQUIRE(waitUntil(60s, [&] {
    auto c = committedNow(config.mappings[0]);
    return c.size() == 4 && std::all_of(c.begin(), c.end(), [](auto& e) { return e.second == 10; });
  }));

  // Light load, round robin over the topic's partitions: ~50 records/s.
  std::atomic<int> partitions{4};
  std::atomic<bool> stop{false};
  std::atomic<int> produced{0};
  std::thread producer_thread([&] {
    int known = 0;
    std::unique_ptr<app::Producer> producer;
    for (int i = 0; !stop.load(); ++i) {
      if (known != partitions.load()) {
        // A new client: one created before the partitions were added does not know them.
        known = partitions.load();
        producer = std::make_unique<app::Producer>(bootstrap);
      }
      producer->produce(topic, i % known, std::nullopt, "r" + std::to_string(i));
      produced = i + 1;
      std::this_thread::sleep_for(20ms); // pacing, not a wait for a condition
    }
    producer->flush(30s);
  });
  REQUIRE(waitUntil(30s, [&] { return produced.load() >= 150; }));
  addPartitions(bootstrap, topic, 8);
  partitions = 8;
  const auto added_at = Clock::now();
  const int produced_at_add = produced.load();

  // The lag of the new partitions appears within one evaluation (1 s) and counts from their
  // beginning before a poller reads them.
  std::optional<Clock::time_point> lag_seen;
  double max_new_lag = 0;
  waitUntil(30s, [&] {
    auto body = httpGet(port, "/metrics").body;
    bool all = true;
    for (int p = 4; p < 8; ++p) {
      double lag = metric(body, "kesm_offset_lag", {{"partition", std::to_string(p)}});
      all = all && !std::isnan(lag);
      if (!std::isnan(lag)) {
        max_new_lag = std::max(max_new_lag, lag);
      }
    }
    if (all && !lag_seen) {
      lag_seen = Clock::now();
    }
    std::lock_guard lock(mutex);
    return lag_seen && first_on_new;
  });
  REQUIRE(waitUntil(60s, [&] { return produced.load() >= produced_at_add + 400; }));
  stop = true;
  producer_thread.join();
  const int total = produced.load();

  bool all_arrived = waitUntil(60s, [&] {
    std::lock_guard lock(mutex);
    return received.size() == static_cast<std::size_t>(total);
  });
  auto committed = committedNow(config.mappings[0]);
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);

  auto seconds = [&](std::optional<Clock::time_point> t) {
    return t ? std::chrono::duration<double>(*t - added_at).count() : -1.0;
  };
  std::lock_guard lock(mutex);
  WARN("produced " << total << ", received " << received.size() << "; lag of the new partitions "
                   << "on /metrics after " << seconds(lag_seen) << " s (max " << max_new_lag
                   << "), first record of a new partition delivered after " << seconds(first_on_new)
                   << " s");
  CHECK(all_arrived);
  std::vector<std::string> missing;
  for (int i = 0; i < total && missing.size() < 20; ++i) {
    if (!received.count("r" + std::to_string(i))) {
      missing.push_back("r" + std::to_string(i) + "@p" + std::to_string(i % 8));
    }
  }
  CHECK(missing.empty());
  CHECK(skipped_received == 0); // what was there before the start stays skipped
  REQUIRE(lag_seen);
  CHECK(seconds(lag_seen) < 5);
  CHECK(max_new_lag > 0);
  REQUIRE(first_on_new);
  CHECK(seconds(first_on_new) < 15);
  CHECK(committed.size() == 8);
}
