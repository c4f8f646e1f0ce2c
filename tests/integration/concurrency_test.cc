// Concurrent batches inside one poller (scaling.maxConcurrentBatches), against the mock
// cluster and the sample function over real HTTP: several batches of different partitions
// in flight at once, never two of one partition, commits in order per partition.

#include "app/runtime.h"
#include "harness.h"
#include "kafka/kafka.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

using namespace kesm;
using namespace kesm::test;

namespace {

// What the function sees in flight, per partition and in all, at the same moment.
class InFlightTracker {
public:
  void begin(const std::vector<samplefn::ReceivedRecord>& batch) {
    std::lock_guard lock(mutex_);
    for (int p : partitionsOf(batch)) {
      int now = ++per_partition_[p];
      max_per_partition_ = std::max(max_per_partition_, now);
    }
    max_total_ = std::max(max_total_, ++total_);
  }
  void end(const std::vector<samplefn::ReceivedRecord>& batch) {
    std::lock_guard lock(mutex_);
    for (int p : partitionsOf(batch)) {
      --per_partition_[p];
    }
    --total_;
  }
  int maxPerPartition() const {
    std::lock_guard lock(mutex_);
    return max_per_partition_;
  }
  int maxTotal() const {
    std::lock_guard lock(mutex_);
    return max_total_;
  }

private:
  static std::set<int> partitionsOf(const std::vector<samplefn::ReceivedRecord>& batch) {
    std::set<int> out;
    for (const auto& r : batch) {
      out.insert(r.partition);
    }
    return out;
  }
  mutable std::mutex mutex_;
  std::map<int, int> per_partition_;
  int total_ = 0;
  int max_per_partition_ = 0;
  int max_total_ = 0;
};

MappingYaml concurrencyMapping(const std::string& bootstrap, const std::string& url,
                               int concurrent) {
  MappingYaml m = testMapping("conc", bootstrap, "orders", url, 1, 1);
  m.scaling.set("maxConcurrentBatches", concurrent);
  return m;
}

std::string concurrencyYaml(const std::string& bootstrap, const std::string& url, int concurrent) {
  return configYaml(concurrencyMapping(bootstrap, url, concurrent));
}

} // namespace

TEST_CASE("one poller runs up to maxConcurrentBatches batches at once, never two of one "
          "partition, and loses nothing",
          "[integration][concurrency]") {
  const int concurrent = GENERATE(1, 4);
  INFO("maxConcurrentBatches " << concurrent);
  app::MockKafkaCluster cluster(1);
  constexpr int kPartitions = 8;
  constexpr int kPerPartition = 400;
  cluster.createTopic("orders", kPartitions);
  produceNumbered(cluster.bootstrapServers(), "orders", kPartitions, kPerPartition);

  InFlightTracker tracker;
  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    tracker.begin(batch);
    std::this_thread::sleep_for(50ms); // long enough for the other slots to fill
    tracker.end(batch);
    return samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);

  auto config =
      config::parseConfig(concurrencyYaml(cluster.bootstrapServers(), function.url(), concurrent),
                          "test.yaml", kafka::checkSetting);
  REQUIRE(config.mappings[0].scaling.max_concurrent_batches == concurrent);
  app::Runtime runtime(config, {});
  runtime.start();
  bool done = waitUntil(
      120s, [&] { return runtime.snapshot().at(0).committed >= kPartitions * kPerPartition; });
  REQUIRE(done);
  REQUIRE(runtime.stop());

  CHECK(tracker.maxPerPartition() == 1);
  // 8 partitions with records always waiting: every slot fills, none beyond.
  CHECK(tracker.maxTotal() == concurrent);
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(deliveries.missing(p, kPerPartition).empty());
  }
  CHECK(deliveries.orderViolation() == "");
  auto committed = committedOffsets(config.mappings[0]);
  for (int p = 0; p < kPartitions; ++p) {
    CHECK(committed[p] == kPerPartition);
  }
}

TEST_CASE("a failing batch holds only its partitions: the poller's other partitions go on",
          "[integration][concurrency]") {
  app::MockKafkaCluster cluster(1);
  constexpr int kPartitions = 4;
  constexpr int kPerPartition = 300;
  constexpr std::int32_t kPoisonPartition = 1;
  constexpr std::int64_t kPoisonOffset = 120;
  constexpr int kFailures = 4;
  cluster.createTopic("orders", kPartitions);
  produceNumbered(cluster.bootstrapServers(), "orders", kPartitions, kPerPartition);

  std::mutex mutex;
  int poison_attempts = 0;
  std::vector<std::int64_t> committed_at_failure;
  std::size_t others_before_first_failure = 0;
  std::size_t others_before_success = 0;
  std::size_t others_delivered = 0; // records of other partitions answered 200 so far
  std::optional<config::Mapping> mapping;
  Deliveries deliveries;

  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    bool poison = false;
    for (const auto& r : batch) {
      poison = poison || (r.partition == kPoisonPartition && r.offset == kPoisonOffset);
    }
    std::this_thread::sleep_for(20ms);
    std::lock_guard lock(mutex);
    if (!poison) {
      return samplefn::Verdict::kSucceed;
    }
    ++poison_attempts;
    if (poison_attempts == 1) {
      others_before_first_failure = others_delivered;
    }
    if (poison_attempts <= kFailures) {
      committed_at_failure.push_back(committedOffsets(*mapping).at(kPoisonPartition));
      return samplefn::Verdict::kFailHttp500;
    }
    others_before_success = others_delivered;
    return samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    deliveries.add(batch);
    std::lock_guard lock(mutex);
    for (const auto& r : batch) {
      others_delivered += r.partition != kPoisonPartition ? 1 : 0;
    }
  };
  samplefn::SampleFunction function(fn);

  // Backoff from 300 ms: the poison partition waits over a second in all, while the others
  // have records to run.
  MappingYaml m = concurrencyMapping(cluster.bootstrapServers(), function.url(), 4);
  m.retry.set("initialBackoff", "300ms");
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  mapping = config.mappings[0];
  app::Runtime runtime(config, {});
  runtime.start();
  bool done = waitUntil(
      120s, [&] { return runtime.snapshot().at(0).committed >= kPartitions * kPerPartition; });
  REQUIRE(done);
  REQUIRE(runtime.stop());

  std::lock_guard lock(mutex);
  REQUIRE(poison_attempts == kFailures + 1);
  // While the poison batch failed, its partition's commit never moved past the batch...
  REQUIRE(committed_at_failure.size() == kFailures);
  for (auto committed : committed_at_failure) {
    CHECK(committed <= kPoisonOffset);
    CHECK(committed == committed_at_failure.front());
  }
  // ...while the other partitions kept being delivered.
  INFO("other partitions' records delivered before the first failure "
       << others_before_first_failure << ", before the success " << others_before_success);
  CHECK(others_before_success > others_before_first_failure);
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(deliveries.missing(p, kPerPartition).empty());
  }
  CHECK(deliveries.orderViolation() == "");
}
