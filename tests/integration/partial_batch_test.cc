// Partial batch responses (functionResponseTypes: [ReportBatchItemFailures]) end to end on the
// mock cluster: a function over real HTTP answers batchItemFailures in powertools' Kafka shape
// for chosen records. Every record ends up processed, each partition resumes exactly at its
// first reported failure, and no commit ever passes a record that has not succeeded. The same
// with powertools' BatchProcessor under the Lambda emulator: tests/e2e/lambda_runtimes_e2e_test.cc.

#include "app/runtime.h"
#include "harness.h"
#include "kafka/kafka.h"
#include "net/http.h"

#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <set>

using namespace kesm;
using namespace kesm::test;

namespace {

constexpr int kPartitions = 3;
constexpr std::int64_t kPerPartition = 200;

// The function: processes every record of an event on its own (as powertools does), fails
// the chosen ones as often as told, and answers the failures as batchItemFailures. It checks
// what kesm sends against what it answered before.
class PartialFunction {
public:
  // (partition, offset) -> how many times the record fails before it succeeds.
  explicit PartialFunction(std::map<std::pair<int, std::int64_t>, int> failures,
                           std::int64_t per_partition = kPerPartition)
      : per_partition_(per_partition), failures_(std::move(failures)),
        server_(
            "127.0.0.1:0", [this](const net::HttpRequest& r) { return handle(r); },
            serverOptions()) {}

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server_.port()) + "/invoke";
  }
  // Violations of the resume rule, empty when none.
  std::vector<std::string> violations() const {
    std::lock_guard lock(mutex_);
    return violations_;
  }
  // The lowest offset of each partition that has not succeeded yet (per_partition: none).
  std::map<int, std::int64_t> firstUnsucceeded() const {
    std::lock_guard lock(mutex_);
    std::map<int, std::int64_t> out;
    for (int p = 0; p < kPartitions; ++p) {
      std::int64_t o = 0;
      while (o < per_partition_ && succeeded_.count({p, o})) {
        ++o;
      }
      out[p] = o;
    }
    return out;
  }
  std::size_t received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }
  std::size_t resent() const {
    std::lock_guard lock(mutex_);
    return resent_;
  }
  std::size_t partialAnswers() const {
    std::lock_guard lock(mutex_);
    return partial_answers_;
  }
  // The partitions of each invocation, in order.
  std::vector<std::set<int>> invocations() const {
    std::lock_guard lock(mutex_);
    return invocations_;
  }

private:
  static net::HttpServerOptions serverOptions() {
    net::HttpServerOptions o;
    o.body_limit_bytes = 8 * 1024 * 1024;
    return o;
  }

  net::HttpResponse handle(const net::HttpRequest& request) {
    auto records = samplefn::parseLambdaKafkaEvent(request.body);
    std::lock_guard lock(mutex_);
    received_ += records.size();
    // Each partition's slice, in event order.
    std::map<int, std::vector<std::int64_t>> slices;
    for (const auto& r : records) {
      slices[r.partition].push_back(r.offset);
    }
    invocations_.emplace_back();
    for (const auto& [p, offsets] : slices) {
      invocations_.back().insert(p);
      for (std::size_t i = 1; i < offsets.size(); ++i) {
        if (offsets[i] != offsets[i - 1] + 1) {
          violations_.push_back("partition " + std::to_string(p) + " not contiguous at " +
                                std::to_string(offsets[i]));
        }
      }
      // A partition resumes at its reported failure, or else right after what was sent.
      auto pending = pending_.find(p);
      std::int64_t expected = pending != pending_.end() ? pending->second
                              : sent_end_.count(p)      ? sent_end_[p] + 1
                                                        : 0;
      if (offsets.front() != expected) {
        violations_.push_back("partition " + std::to_string(p) + " resumed at " +
                              std::to_string(offsets.front()) + ", expected " +
                              std::to_string(expected));
      }
      sent_end_[p] = offsets.back();
      pending_.erase(p);
    }
    std::string failures;
    for (const auto& r : records) {
      auto it = failures_.find({r.partition, r.offset});
      if (it != failures_.end() && it->second > 0) {
        it->second--;
        if (!pending_.count(r.partition)) {
          pending_[r.partition] = r.offset; // the lowest failure of the partition
        }
        failures += std::string(failures.empty() ? "" : ",") +
                    R"({"itemIdentifier":{"partition":")" + r.topic + "-" +
                    std::to_string(r.partition) + R"(","offset":)" + std::to_string(r.offset) +
                    "}}";
      } else {
        succeeded_.insert({r.partition, r.offset});
      }
    }
    // What kesm must send again: each failed partition from its first failure.
    for (const auto& r : records) {
      auto pending = pending_.find(r.partition);
      if (pending != pending_.end() && r.offset >= pending->second) {
        resent_++;
      }
    }
    partial_answers_ += failures.empty() ? 0 : 1;
    net::HttpResponse response;
    response.status = 200;
    response.headers = {{"Content-Type", "application/json"}};
    response.body = R"({"batchItemFailures":[)" + failures + "]}";
    return response;
  }

  const std::int64_t per_partition_;
  mutable std::mutex mutex_;
  std::map<std::pair<int, std::int64_t>, int> failures_;
  std::vector<std::set<int>> invocations_;
  std::set<std::pair<int, std::int64_t>> succeeded_;
  std::map<int, std::int64_t> sent_end_; // last offset sent, per partition
  std::map<int, std::int64_t> pending_;  // first failure answered, per partition
  std::vector<std::string> violations_;
  std::size_t received_ = 0;
  std::size_t resent_ = 0;
  std::size_t partial_answers_ = 0;
  net::HttpServer server_; // last: stopped first
};

} // namespace

TEST_CASE("partial batch responses: each partition resumes at its first reported failure, "
          "nothing before it is sent again, every record succeeds, commits never pass a failure",
          "[integration][partial]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("ledger", kPartitions);
  produceNumbered(cluster.bootstrapServers(), "ledger", kPartitions, kPerPartition);
  // Two failures in one batch of partition 0 (17 is the one to resume from), one that fails
  // three times, and failures at a batch's first and last records.
  PartialFunction function(
      {{{0, 17}, 1}, {{0, 60}, 1}, {{1, 5}, 3}, {{2, 0}, 1}, {{2, 199}, 1}, {{1, 150}, 1}});
  MappingYaml m = testMapping("ledger", cluster.bootstrapServers(), "ledger", function.url(), 1, 1);
  m.extra_lines = "    functionResponseTypes: [ReportBatchItemFailures]\n";
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  std::vector<std::string> commit_violations;
  bool done = waitUntil(90s, [&] {
    auto committed = committedOffsets(config.mappings[0]);
    // Read after the commits: successes only grow, so this bound is safe.
    auto first_unsucceeded = function.firstUnsucceeded();
    for (const auto& [p, next] : committed) {
      if (next > first_unsucceeded[p]) {
        commit_violations.push_back("partition " + std::to_string(p) + " committed " +
                                    std::to_string(next) + " before " +
                                    std::to_string(first_unsucceeded[p]) + " succeeded");
      }
    }
    return committed.size() == kPartitions &&
           std::all_of(committed.begin(), committed.end(),
                       [](const auto& c) { return c.second == kPerPartition; });
  });
  std::string metrics = scrape(runtime, "/metrics");
  REQUIRE(runtime.stop());
  INFO(metrics);
  REQUIRE(done);
  CHECK(commit_violations.empty());
  CHECK(function.violations().empty());
  for (const auto& v : function.violations()) {
    UNSCOPED_INFO(v);
  }
  // Everything succeeded.
  for (const auto& [p, first] : function.firstUnsucceeded()) {
    CHECK(first == kPerPartition);
  }
  CHECK(function.partialAnswers() >= 6);
  // Sent: every record once, plus exactly what the answers asked to send again.
  CHECK(function.received() == kPartitions * kPerPartition + function.resent());
  CHECK(metricValue(metrics, "kesm_events_invoked_total{mapping=\"ledger\"}") ==
        static_cast<double>(function.received()));
  // Failed: only the records after each reported failure, never the batch around them.
  CHECK(metricValue(metrics, "kesm_events_failed_invoke_total{mapping=\"ledger\"}") ==
        static_cast<double>(function.resent()));
  CHECK(metricValue(metrics, "kesm_events_dropped_total{mapping=\"ledger\"}") == 0);
  CHECK(metricValue(metrics, "kesm_events_committed_total{mapping=\"ledger\"}") ==
        kPartitions * kPerPartition);
}

TEST_CASE("partial batch responses: only the failed rest reaches the onFailure topic when "
          "retries run out",
          "[integration][partial]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("ledger", 1);
  cluster.createTopic("ledger-failed", 1);
  produceNumbered(cluster.bootstrapServers(), "ledger", 1, 50);
  // Offset 30 always fails: 30..49 of its batch are given up after one retry.
  PartialFunction function({{{0, 30}, 1000}});
  MappingYaml m = testMapping("ledger", cluster.bootstrapServers(), "ledger", function.url(), 1, 1);
  m.extra_lines = "    functionResponseTypes: [ReportBatchItemFailures]\n";
  m.retry.set("maximumRetryAttempts", 1);
  m.on_failure = "kafka://ledger-failed";
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  bool done = waitUntil(60s, [&] {
    auto committed = committedOffsets(config.mappings[0]);
    return committed.count(0) && committed.at(0) == 50;
  });
  std::string metrics = scrape(runtime, "/metrics");
  REQUIRE(runtime.stop());
  INFO(metrics);
  REQUIRE(done);
  CHECK(function.violations().empty());
  auto failed = readTopic(cluster.bootstrapServers(), "ledger-failed", 1);
  // Whatever the batches were, the destination holds 30 and what followed it in its batch,
  // never a record before 30.
  REQUIRE_FALSE(failed.empty());
  CHECK(failed.front().value == std::optional<std::string>("p0-30"));
  CHECK(metricValue(metrics, "kesm_events_on_failure_delivered_total{mapping=\"ledger\"}") ==
        static_cast<double>(failed.size()));
  CHECK(function.firstUnsucceeded().at(0) == 30);
}

TEST_CASE("partial batch responses: in a batch of several partitions, those not listed are "
          "committed whole and only the listed one is sent again",
          "[integration][partial]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("ledger", kPartitions);
  // Few records: the first batch holds every partition.
  constexpr std::int64_t kFew = 5;
  produceNumbered(cluster.bootstrapServers(), "ledger", kPartitions, kFew);
  PartialFunction function({{{1, 2}, 1}}, kFew);
  MappingYaml m = testMapping("ledger", cluster.bootstrapServers(), "ledger", function.url(), 1, 1);
  m.extra_lines = "    functionResponseTypes: [ReportBatchItemFailures]\n";
  m.batching.set("maximumBatchingWindow", "1s"); // one batch of all 15 records
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  bool done = waitUntil(60s, [&] {
    auto committed = committedOffsets(config.mappings[0]);
    return committed.size() == kPartitions &&
           std::all_of(committed.begin(), committed.end(),
                       [](const auto& c) { return c.second == kFew; });
  });
  std::string metrics = scrape(runtime, "/metrics");
  REQUIRE(runtime.stop());
  INFO(metrics);
  REQUIRE(done);
  CHECK(function.violations().empty());
  auto invocations = function.invocations();
  REQUIRE(invocations.size() == 2);
  CHECK(invocations[0] == std::set<int>{0, 1, 2});
  CHECK(invocations[1] == std::set<int>{1}); // partitions 0 and 2 were not sent again
  CHECK(function.resent() == 3);             // 1@2..4
  CHECK(function.received() == kPartitions * kFew + 3);
  CHECK(metricValue(metrics, "kesm_events_failed_invoke_total{mapping=\"ledger\"}") == 3);
}
