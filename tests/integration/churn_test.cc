// Spawning a poller and retiring it at once, a thousand times, while records flow: before
// its first assignment, during rebalances, after it. Debian's librdkafka 2.0.2 aborts the
// process on this with cooperative-sticky (#4308, #4312); kesm must neither crash nor lose.

#include "harness.h"
#include "invoker/invoker.h"
#include "kafka/kafka.h"
#include "metrics/metrics.h"
#include "poller/in_process_pool.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::test;

namespace {

struct Rig {
  app::MockKafkaCluster cluster{1};
  Deliveries deliveries;
  std::unique_ptr<samplefn::SampleFunction> function;
  metrics::Registry registry;
  std::optional<metrics::MappingProbe> probe;
  config::Mapping mapping;

  Rig(const std::string& topic, int partitions, const std::string& assignor) {
    cluster.createTopic(topic, partitions);
    samplefn::SampleFunctionOptions fn;
    fn.latency = std::chrono::milliseconds(5);
    fn.on_batch = [this](const std::vector<samplefn::ReceivedRecord>& b) { deliveries.add(b); };
    function = std::make_unique<samplefn::SampleFunction>(fn);
    MappingYaml m = testMapping("churn", cluster.bootstrapServers(), topic, function->url(), 1, 8);
    m.source.set("partitionAssignor", assignor);
    // The mock cluster waits about one session timeout per rebalance.
    m.librdkafka.set("session.timeout.ms", 3000);
    mapping = config::parseConfig(configYaml(m), "churn.yaml", kafka::checkSetting).mappings.at(0);
    probe.emplace(registry, mapping.name);
  }

  std::unique_ptr<poller::InProcessWorkerPool> pool() {
    poller::PollerContext base;
    base.mapping = mapping;
    base.probe = &*probe;
    base.client_id = "kesm-churn";
    invoker::HttpInvokerOptions opts;
    opts.url = mapping.function.url;
    opts.timeout = mapping.function.timeout;
    opts.bootstrap_servers = cluster.bootstrapServers();
    base.make_invoker = [opts] { return invoker::makeHttpInvoker(opts); };
    return std::make_unique<poller::InProcessWorkerPool>(std::move(base));
  }

  bool committedAt(std::int64_t end) {
    auto committed = committedOffsets(mapping);
    return std::all_of(committed.begin(), committed.end(),
                       [&](const auto& kv) { return kv.second == end; });
  }
};

// Spawns a second poller and retires it at once, `rounds` times; every `settle_every`
// rounds lets the spawned one reach its first assignment before retiring it.
void churn(poller::InProcessWorkerPool& pool, int rounds, int settle_every) {
  for (int i = 0; i < rounds; ++i) {
    pool.scaleTo(2);
    if (settle_every > 0 && i % settle_every == 0) {
      // Retire it in the middle of the rebalance it started, once it holds partitions.
      waitUntil(
          20s, [&] { return pool.status().running == 2; }, 10ms);
    }
    pool.scaleTo(1);
  }
}

} // namespace

TEST_CASE("churn: a poller spawned and at once retired 1000 times loses nothing",
          "[integration][churn]") {
  constexpr int kPartitions = 4;
  constexpr int kPerPartition = 3000;
  Rig rig("churn", kPartitions, "roundrobin");
  produceNumbered(rig.cluster.bootstrapServers(), "churn", kPartitions, kPerPartition);
  auto pool = rig.pool();
  pool->scaleTo(1);
  REQUIRE(waitUntil(30s, [&] { return pool->status().running == 1; }));

  churn(*pool, 1000, 100);

  // Two pollers finish the work; every record must reach the function and be committed.
  pool->scaleTo(2);
  bool done = waitUntil(
      120s, [&] { return rig.committedAt(kPerPartition); }, 500ms);
  auto status = pool->status();
  REQUIRE(pool->shutdown(30s));
  CHECK(done);
  CHECK(status.active == 2);
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(rig.deliveries.missing(p, kPerPartition).empty());
  }
  CHECK(rig.deliveries.orderViolation() == "");
  WARN("delivered " << rig.deliveries.total() << " for " << kPartitions * kPerPartition
                    << " records");
}

TEST_CASE("churn: with cooperative-sticky a poller is never closed before its first assignment",
          "[integration][churn]") {
  // The case librdkafka 2.0.2 aborts on: spawn, retire before the first rebalance completed.
  // Each retire waits for that rebalance, so fewer rounds fit in the time.
  constexpr int kPartitions = 4;
  constexpr int kPerPartition = 500;
  Rig rig("sticky", kPartitions, "cooperative-sticky");
  produceNumbered(rig.cluster.bootstrapServers(), "sticky", kPartitions, kPerPartition);
  auto pool = rig.pool();
  pool->scaleTo(1);
  REQUIRE(waitUntil(60s, [&] { return pool->status().running == 1; }));

  churn(*pool, 20, 0);

  pool->scaleTo(2);
  bool done = waitUntil(
      180s, [&] { return rig.committedAt(kPerPartition); }, 500ms);
  REQUIRE(pool->shutdown(60s));
  CHECK(done);
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(rig.deliveries.missing(p, kPerPartition).empty());
  }
}
