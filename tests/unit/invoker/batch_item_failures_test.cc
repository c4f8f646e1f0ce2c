// Partial batch responses (ReportBatchItemFailures) as AWS Lambda reads them for Kafka: the
// shape powertools' BatchProcessor(EventType.Kafka) writes, and what a malformed answer means.

#include "invoker/batch_item_failures.h"
#include "net/http.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

using namespace kesm;
using namespace kesm::invoker;
using namespace std::chrono_literals;
using Verdict = BatchItemFailures::Verdict;

namespace {

// my-topic (a '-' in the name) partitions 0 and 1, offsets 10..12 each.
Batch twoPartitions() {
  Batch b;
  for (int p = 0; p < 2; ++p) {
    for (int o = 10; o < 13; ++o) {
      Record r;
      r.topic = "my-topic";
      r.partition = Partition{p};
      r.offset = Offset{o};
      r.value = "v";
      b.records.push_back(r);
    }
  }
  return b;
}

std::string failure(const std::string& partition, const std::string& offset) {
  return R"({"itemIdentifier":{"partition":")" + partition + R"(","offset":)" + offset + "}}";
}

} // namespace

TEST_CASE("batchItemFailures: no list, null or [] means the whole batch succeeded",
          "[unit][partial]") {
  auto body = GENERATE(as<std::string>{}, "", "ok", "null", "[]", "{}", R"({"statusCode":200})",
                       R"({"batchItemFailures":null})", R"({"batchItemFailures":[]})");
  INFO(body);
  CHECK(parseBatchItemFailures(body, twoPartitions()).verdict == Verdict::kAllSucceeded);
}

TEST_CASE("batchItemFailures: the powertools Kafka shape names each partition's first failure",
          "[unit][partial]") {
  // Several failures in one partition: AWS resumes from the lowest (the Kinesis rule).
  std::string body = R"({"batchItemFailures":[)" + failure("my-topic-1", "12") + "," +
                     failure("my-topic-1", "11") + "," + failure("my-topic-0", "10") + "]}";
  auto answer = parseBatchItemFailures(body, twoPartitions());
  REQUIRE(answer.verdict == Verdict::kFailures);
  REQUIRE(answer.failures.size() == 2);
  CHECK(answer.failures[0].tp == TopicPartition{"my-topic", Partition{0}});
  CHECK(answer.failures[0].offset == 10);
  CHECK(answer.failures[1].tp == TopicPartition{"my-topic", Partition{1}});
  CHECK(answer.failures[1].offset == 11);
  // An offset as a decimal string reads the same.
  auto quoted = parseBatchItemFailures(
      R"({"batchItemFailures":[{"itemIdentifier":{"partition":"my-topic-0","offset":"11"}}]})",
      twoPartitions());
  REQUIRE(quoted.verdict == Verdict::kFailures);
  CHECK(quoted.failures.at(0).offset == 11);
}

TEST_CASE("batchItemFailures: a malformed answer or a record not in the batch fails it whole",
          "[unit][partial]") {
  auto body = GENERATE(
      as<std::string>{}, R"({"batchItemFailures":{}})", R"({"batchItemFailures":[1]})",
      R"({"batchItemFailures":[{}]})", R"({"batchItemFailures":[{"itemIdentifier":null}]})",
      R"({"batchItemFailures":[{"itemIdentifier":""}]})",
      R"({"batchItemFailures":[{"itemIdentifier":"my-topic-0-10"}]})", // Kinesis-style string
      R"({"batchItemFailures":[{"itemIdentifier":{"partition":"my-topic-0"}}]})",
      R"({"batchItemFailures":[{"itemIdentifier":{"offset":10}}]})",
      R"({"batchItemFailures":[{"itemIdentifier":{"Partition":"my-topic-0","offset":10}}]})",
      R"({"batchItemFailures":[)" + failure("my-topic-0", "-1") + "]}",
      R"({"batchItemFailures":[)" + failure("my-topic-0", "10.5") + "]}",
      R"({"batchItemFailures":[)" + failure("my-topic", "10") + "]}",
      R"({"batchItemFailures":[)" + failure("my-topic-x", "10") + "]}",
      R"({"batchItemFailures":[)" + failure("my-topic-2", "10") + "]}", // not our partition
      R"({"batchItemFailures":[)" + failure("my-topic-0", "13") + "]}", // past the batch
      R"({"batchItemFailures":[)" + failure("my-topic-0", "9") + "]}",  // before it
      R"({"batchItemFailures":[)" + failure("other-0", "10") + "]}");   // another topic
  INFO(body);
  auto answer = parseBatchItemFailures(body, twoPartitions());
  CHECK(answer.verdict == Verdict::kMalformed);
  CHECK_FALSE(answer.error.empty());
}

TEST_CASE("batchItemFailures over HTTP: partial failure only with ReportBatchItemFailures",
          "[unit][partial][http]") {
  std::string answer;
  net::HttpServerOptions server_options;
  server_options.body_limit_bytes = 1024 * 1024;
  net::HttpServer server(
      "127.0.0.1:0",
      [&answer](const net::HttpRequest&) {
        net::HttpResponse r;
        r.status = 200;
        r.headers = {{"Content-Type", "application/json"}};
        r.body = answer;
        return r;
      },
      server_options);
  HttpInvokerOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/invoke";
  options.timeout = 5s;
  const Batch batch = twoPartitions();

  answer = R"({"batchItemFailures":[)" + failure("my-topic-1", "11") + "]}";
  // Without the option AWS ignores the list: the whole batch succeeded.
  CHECK(makeHttpInvoker(options)->invoke(batch).outcome == InvokeOutcome::kSuccess);

  options.report_batch_item_failures = true;
  auto invoker = makeHttpInvoker(options);
  auto result = invoker->invoke(batch);
  CHECK(result.outcome == InvokeOutcome::kPartialFailure);
  REQUIRE(result.item_failures.size() == 1);
  CHECK(result.item_failures[0].tp == TopicPartition{"my-topic", Partition{1}});
  CHECK(result.item_failures[0].offset == 11);
  CHECK_THAT(result.detail, Catch::Contains("my-topic-1@11"));

  answer = R"({"batchItemFailures":[]})";
  CHECK(invoker->invoke(batch).outcome == InvokeOutcome::kSuccess);

  answer = R"({"batchItemFailures":[{"itemIdentifier":null}]})";
  result = invoker->invoke(batch);
  CHECK(result.outcome == InvokeOutcome::kFunctionError);
  CHECK(result.item_failures.empty());
  CHECK_THAT(result.detail, Catch::Contains("malformed batchItemFailures"));

  // A Lambda error document (powertools raises when every record failed) wins.
  answer =
      R"({"errorMessage":"All records failed processing.","errorType":"BatchProcessingError"})";
  CHECK(invoker->invoke(batch).outcome == InvokeOutcome::kFunctionError);

  // A list longer than the error-document inspection limit is still read.
  answer = R"({"batchItemFailures":[)";
  for (int i = 0; i < 3000; ++i) {
    answer += failure("my-topic-0", i % 2 == 0 ? "12" : "11") + ",";
  }
  answer += failure("my-topic-0", "12") + "]}";
  REQUIRE(answer.size() > 64 * 1024);
  result = invoker->invoke(batch);
  CHECK(result.outcome == InvokeOutcome::kPartialFailure);
  REQUIRE(result.item_failures.size() == 1);
  CHECK(result.item_failures[0].offset == 11);
}
