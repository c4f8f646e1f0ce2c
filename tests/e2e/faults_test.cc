// Faults against a real Apache Kafka broker: the broker goes away for 20 s, the function
// fails and hangs, kesm is stopped during batches. Assertions come from what the function
// received and from Kafka's own view of the group.

#include "config/config.h"
#include "e2e_harness.h"
#include "kafka/kafka.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;

namespace {

using Steady = std::chrono::steady_clock;

double secondsSince(Steady::time_point start) {
  return std::chrono::duration<double>(Steady::now() - start).count();
}

bool allCommitted(const config::Mapping& mapping, int partitions, std::int64_t end) {
  auto committed = committedOffsets(mapping);
  if (static_cast<int>(committed.size()) != partitions) {
    return false;
  }
  return std::all_of(committed.begin(), committed.end(),
                     [&](const auto& entry) { return entry.second == end; });
}

MappingYaml spec(const std::string& topic, const std::string& bootstrap, const std::string& url,
                 int min_pollers, int max_pollers) {
  return e2eMapping(topic, bootstrap, topic, url, min_pollers, max_pollers);
}

} // namespace

TEST_CASE("The broker stops for 20 s in mid-run: kesm stays up, reports stale lag, holds its "
          "pollers and loses nothing",
          "[e2e]") {
  OwnBroker broker(sharedBrokerDir() + "-outage");
  const std::string topic = uniqueName("outage");
  constexpr int kPartitions = 6;
  constexpr int kPerPartition = 2000;
  createTopic(broker.bootstrap(), topic, kPartitions);
  produceNumbered(broker.bootstrap(), topic, kPartitions, kPerPartition);

  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  // 20 records per 300 ms per poller: the backlog lasts well past the outage.
  fn.latency = 300ms;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  auto s = spec(topic, broker.bootstrap(), function.url(), 2, 6);
  s.batching.set("batchSize", 20);
  const std::uint16_t port = freePort();
  const std::string yaml = e2eConfigYaml(port, {s});
  const auto config = config::parseConfig(yaml, "outage.yaml", kafka::checkSetting);
  const std::string log_path = writeTempFile("e2e-outage.log", "");
  DumpLogOnFailure dump(log_path);
  INFO("kesm log: " << log_path);
  auto started = Steady::now();
  KesmProcess kesm({"run", "--verbose", "--config", writeTempFile("e2e-outage.yaml", yaml)},
                   log_path);
  const std::map<std::string, std::string> desired{{"mapping", topic}, {"state", "desired"}};
  const std::map<std::string, std::string> mapping{{"mapping", topic}};

  REQUIRE(waitUntil(60s, [&] { return httpGet(port, "/readyz").status == 200; }));
  REQUIRE(waitUntil(60s, [&] { return deliveries.distinct() >= 1000; }));
  auto before = httpGet(port, "/metrics").body;
  const double desired_before = metric(before, "kesm_pollers", desired);
  const double lag_before = metric(before, "kesm_mapping_offset_lag", mapping);
  REQUIRE(desired_before >= 2);
  REQUIRE(lag_before > 0);

  broker.stopKeepingData();
  auto outage_at = Steady::now();
  bool saw_unready = false, saw_stale = false, lag_zero_while_stale = false;
  double min_desired = desired_before;
  std::ostringstream timeline;
  while (Steady::now() - outage_at < 20s) {
    auto ready = httpGet(port, "/readyz");
    auto body = httpGet(port, "/metrics").body;
    REQUIRE(kesm.running());
    REQUIRE(ready.status != 0); // kesm's endpoint answers throughout
    saw_unready = saw_unready || ready.status == 503;
    const double stale = metric(body, "kesm_offset_lag_stale", mapping);
    const double lag = metric(body, "kesm_mapping_offset_lag", mapping);
    const double d = metric(body, "kesm_pollers", desired);
    if (stale == 1) {
      saw_stale = true;
      lag_zero_while_stale = lag_zero_while_stale || lag == 0;
    }
    min_desired = std::min(min_desired, d);
    timeline << secondsSince(outage_at) << "s readyz " << ready.status << " stale " << stale
             << " lag " << lag << " desired " << d << "\n";
    std::this_thread::sleep_for(500ms);
  }
  broker.resume();
  const double outage_s = secondsSince(outage_at);
  INFO("timeline:\n" << timeline.str());
  CHECK(saw_unready);
  CHECK(saw_stale);
  CHECK_FALSE(lag_zero_while_stale);
  CHECK(min_desired >= desired_before);

  bool ready_again = waitUntil(90s, [&] { return httpGet(port, "/readyz").status == 200; });
  const double ready_s = secondsSince(outage_at);
  CHECK(ready_again);
  const std::size_t sent = std::size_t{kPartitions} * kPerPartition;
  bool drained = waitUntil(
      240s,
      [&] {
        return deliveries.distinct() == sent &&
               allCommitted(config.mappings[0], kPartitions, kPerPartition);
      },
      500ms);
  REQUIRE(drained);
  CHECK(kesm.running());
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(deliveries.missing(p, kPerPartition).empty());
  }
  CHECK(deliveries.orderViolation() == "");
  auto rows = kafkaToolOffsets(broker.dir(), "kesm-" + topic, topic);
  REQUIRE(static_cast<int>(rows.size()) == kPartitions);
  for (const auto& [partition, row] : rows) {
    INFO("partition " << partition);
    CHECK(row.committed == kPerPartition);
    CHECK(row.lag == 0);
  }
  WARN("broker outage: " << sent << " records sent, " << deliveries.distinct() << " delivered, "
                         << deliveries.total() - deliveries.distinct()
                         << " duplicates; broker down " << outage_s << " s, kesm ready again "
                         << ready_s << " s after the stop, run " << secondsSince(started) << " s");
}

TEST_CASE("The function fails with 500s, then times out, then recovers: whole batches retried, "
          "no commit past a failed batch, nothing lost",
          "[e2e]") {
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("fnfail");
  constexpr int kPartitions = 4;
  constexpr int kPerPartition = 500;
  createTopic(bootstrap, topic, kPartitions);

  enum Phase { kErrors, kHangs, kHealthy };
  std::atomic<int> phase{kErrors};
  using Key = std::pair<std::int32_t, std::int64_t>;
  struct Attempt {
    std::vector<Key> records;
    bool failed = false;
  };
  std::mutex mutex;
  std::vector<Attempt> attempts;
  std::map<std::int32_t, std::set<std::int64_t>> succeeded;
  std::map<std::int32_t, std::set<std::int64_t>> attempted;
  Deliveries deliveries;
  std::atomic<int> errors{0}, hangs{0};

  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    Attempt a;
    for (const auto& r : batch) {
      a.records.emplace_back(r.partition, r.offset);
    }
    const int p = phase.load();
    a.failed = p != kHealthy;
    std::lock_guard lock(mutex);
    for (const auto& [partition, offset] : a.records) {
      attempted[partition].insert(offset);
    }
    attempts.push_back(std::move(a));
    if (p == kErrors) {
      errors++;
      return samplefn::Verdict::kFailHttp500;
    }
    if (p == kHangs) {
      hangs++;
      return samplefn::Verdict::kHang;
    }
    return samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    {
      std::lock_guard lock(mutex);
      for (const auto& r : batch) {
        succeeded[r.partition].insert(r.offset);
      }
    }
    deliveries.add(batch);
  };
  samplefn::SampleFunction function(fn);

  // One poller: no rebalance in the run, so every retry is the same poller's same batch.
  auto s = spec(topic, bootstrap, function.url(), 1, 1);
  s.batching.set("batchSize", 50);
  s.function.set("timeout", "1s");
  const std::string yaml = e2eConfigYaml(freePort(), {s});
  const auto config = config::parseConfig(yaml, "fnfail.yaml", kafka::checkSetting);
  const std::string log_path = writeTempFile("e2e-fnfail.log", "");
  DumpLogOnFailure dump(log_path);
  INFO("kesm log: " << log_path);
  auto started = Steady::now();
  KesmProcess kesm({"run", "--verbose", "--config", writeTempFile("e2e-fnfail.yaml", yaml)},
                   log_path);
  produceNumbered(bootstrap, topic, kPartitions, kPerPartition);

  // The lowest offset per partition that was attempted and never succeeded, read after the
  // committed offsets: a commit above it was a commit past a failed batch.
  int violations = 0, checks = 0;
  std::ostringstream violation_log;
  auto checkCommits = [&] {
    auto committed = committedOffsets(config.mappings[0]);
    std::lock_guard lock(mutex);
    for (const auto& [partition, offsets] : attempted) {
      for (auto o : offsets) {
        if (!succeeded[partition].count(o)) {
          auto c = committed.count(partition) ? committed[partition] : -1;
          if (c > o) {
            violations++;
            violation_log << "partition " << partition << " committed " << c
                          << " past unsucceeded offset " << o << "\n";
          }
          break;
        }
      }
    }
    checks++;
  };
  REQUIRE(waitUntil(
      60s,
      [&] {
        checkCommits();
        return errors.load() >= 10 && secondsSince(started) > 5;
      },
      200ms));
  phase = kHangs;
  REQUIRE(waitUntil(
      60s,
      [&] {
        checkCommits();
        return hangs.load() >= 4;
      },
      200ms));
  // Nothing succeeded yet, so nothing may be committed at all.
  CHECK(deliveries.total() == 0);
  for (const auto& [partition, committed] : committedOffsets(config.mappings[0])) {
    INFO("partition " << partition);
    CHECK(committed < 0);
  }
  phase = kHealthy;
  const std::size_t sent = std::size_t{kPartitions} * kPerPartition;
  bool drained = waitUntil(
      120s,
      [&] {
        checkCommits();
        return deliveries.distinct() == sent &&
               allCommitted(config.mappings[0], kPartitions, kPerPartition);
      },
      200ms);
  REQUIRE(drained);
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);
  INFO(violation_log.str());
  CHECK(violations == 0);
  CHECK(checks > 20);

  // Whole-batch retry: the attempt after a failed one that holds its first record holds
  // exactly its records.
  std::lock_guard lock(mutex);
  int retries_compared = 0;
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    if (!attempts[i].failed || attempts[i].records.empty()) {
      continue;
    }
    const Key first = attempts[i].records.front();
    for (std::size_t j = i + 1; j < attempts.size(); ++j) {
      const auto& next = attempts[j].records;
      if (std::find(next.begin(), next.end(), first) != next.end()) {
        INFO("attempt " << i << " retried as attempt " << j);
        CHECK(next == attempts[i].records);
        retries_compared++;
        break;
      }
    }
  }
  CHECK(retries_compared >= 14);
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    CHECK(deliveries.missing(p, kPerPartition).empty());
  }
  CHECK(deliveries.orderViolation() == "");
  WARN("function failures: " << sent << " records sent, " << deliveries.distinct() << " delivered, "
                             << deliveries.total() - deliveries.distinct() << " duplicates; "
                             << errors.load() << " 500s, " << hangs.load() << " timeouts, "
                             << retries_compared << " retries compared, " << checks
                             << " commit checks; run " << secondsSince(started) << " s");
}

TEST_CASE("SIGTERM during batches with several pollers: clean exit within the grace period, "
          "commits exactly at the last successful batch",
          "[e2e]") {
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("sigterm");
  constexpr int kPartitions = 8;
  constexpr int kPerPartition = 2000;
  createTopic(bootstrap, topic, kPartitions);
  produceNumbered(bootstrap, topic, kPartitions, kPerPartition);

  Deliveries deliveries;
  std::atomic<int> in_flight{0};
  samplefn::SampleFunctionOptions fn;
  fn.latency = 500ms;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>&) {
    in_flight++;
    return samplefn::Verdict::kSucceed;
  };
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    deliveries.add(batch);
    in_flight--;
  };
  samplefn::SampleFunction function(fn);
  auto s = spec(topic, bootstrap, function.url(), 4, 4);
  s.batching.set("batchSize", 50);
  s.scaling.set("gracePeriod", "10s");
  const std::uint16_t port = freePort();
  const std::string yaml = e2eConfigYaml(port, {s});
  const std::string log_path = writeTempFile("e2e-sigterm.log", "");
  DumpLogOnFailure dump(log_path);
  INFO("kesm log: " << log_path);
  const std::map<std::string, std::string> running{{"mapping", topic}, {"state", "running"}};
  auto started = Steady::now();
  KesmProcess kesm({"run", "--verbose", "--config", writeTempFile("e2e-sigterm.yaml", yaml)},
                   log_path);
  REQUIRE(waitUntil(
      60s, [&] { return metric(httpGet(port, "/metrics").body, "kesm_pollers", running) == 4; }));
  REQUIRE(waitUntil(
      60s, [&] { return deliveries.distinct() >= 1000 && in_flight.load() >= 2; }, 2ms));
  const int in_flight_at_term = in_flight.load();
  kesm.signal(SIGTERM);
  auto term_at = Steady::now();
  const int status = kesm.wait(30s);
  const double exit_s = secondsSince(term_at);
  CHECK(status == 0);
  CHECK(exit_s < 10.0);
  REQUIRE(waitUntil(
      10s, [&] { return in_flight.load() == 0; }, 10ms));

  // The last successful batch of each partition ends at the highest offset received.
  auto rows = kafkaToolOffsets(sharedBrokerDir(), "kesm-" + topic, topic);
  auto per_partition = deliveries.perPartition();
  int partitions_checked = 0;
  for (int p = 0; p < kPartitions; ++p) {
    INFO("partition " << p);
    auto it = per_partition.find(p);
    if (it == per_partition.end()) {
      CHECK((rows.count(p) == 0 || rows[p].committed < 0));
      continue;
    }
    const auto last = *std::max_element(it->second.begin(), it->second.end());
    REQUIRE(rows.count(p) == 1);
    CHECK(rows[p].committed == last + 1);
    partitions_checked++;
  }
  CHECK(partitions_checked >= 4);
  CHECK(deliveries.orderViolation() == "");
  WARN("SIGTERM: " << kPartitions * kPerPartition << " records sent, " << deliveries.distinct()
                   << " delivered before the stop, " << deliveries.total() - deliveries.distinct()
                   << " duplicates, " << in_flight_at_term
                   << " batches in flight at SIGTERM, exit after " << exit_s << " s, "
                   << partitions_checked
                   << " partitions committed exactly at their last success; run "
                   << secondsSince(started) << " s");
}
