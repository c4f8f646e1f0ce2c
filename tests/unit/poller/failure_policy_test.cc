// What happens after a failed attempt (poller/failure_policy.h): a pure decision.

#include "poller/failure_policy.h"

#include <catch2/catch.hpp>
#include <limits>

using namespace kesm;
using namespace kesm::poller;
using std::chrono::milliseconds;

namespace {

invoker::InvokeResult http(int status) {
  invoker::InvokeResult r;
  r.outcome = invoker::InvokeOutcome::kHttpError;
  r.http_status = status;
  return r;
}

invoker::InvokeResult outcome(invoker::InvokeOutcome o) {
  invoker::InvokeResult r;
  r.outcome = o;
  return r;
}

FailedAttempt failure(int counted, std::size_t records = 1,
                      FailureClass cls = FailureClass::kFunctionError,
                      milliseconds age = milliseconds(0)) {
  FailedAttempt a;
  a.failure = cls;
  a.counted_failures = counted;
  a.records = records;
  a.oldest_record_age = age;
  return a;
}

} // namespace

TEST_CASE("failures are classified by what retrying can change", "[poller][failure]") {
  CHECK(classify(http(404)) == FailureClass::kFatal);
  CHECK(classify(http(401)) == FailureClass::kFatal);
  CHECK(classify(http(403)) == FailureClass::kFatal);
  CHECK(classify(http(429)) == FailureClass::kThrottled);
  CHECK(classify(http(500)) == FailureClass::kFunctionError);
  CHECK(classify(http(503)) == FailureClass::kFunctionError);
  CHECK(classify(http(400)) == FailureClass::kFunctionError);
  CHECK(classify(outcome(invoker::InvokeOutcome::kFunctionError)) == FailureClass::kFunctionError);
  CHECK(classify(outcome(invoker::InvokeOutcome::kTimeout)) == FailureClass::kFunctionError);
  CHECK(classify(outcome(invoker::InvokeOutcome::kConnectionError)) == FailureClass::kUnreachable);
}

TEST_CASE("unbounded retries retry for ever, as Lambda does by default", "[poller][failure]") {
  config::RetryConfig retry;
  CHECK(nextStep(retry, false, failure(1)) == NextStep::kRetry);
  CHECK(nextStep(retry, false, failure(100000)) == NextStep::kRetry);
  CHECK(nextStep(retry, false,
                 failure(5, 100, FailureClass::kFunctionError,
                         milliseconds(365LL * 24 * 3600 * 1000))) == NextStep::kRetry);
}

TEST_CASE("maximumRetryAttempts counts retries after the first attempt", "[poller][failure]") {
  config::RetryConfig retry;
  retry.maximum_retry_attempts = 2;
  CHECK(nextStep(retry, false, failure(1)) == NextStep::kRetry);  // first attempt failed
  CHECK(nextStep(retry, false, failure(2)) == NextStep::kRetry);  // first retry failed
  CHECK(nextStep(retry, false, failure(3)) == NextStep::kGiveUp); // second retry failed
  retry.maximum_retry_attempts = 0;
  CHECK(nextStep(retry, false, failure(1)) == NextStep::kGiveUp);
}

TEST_CASE("maximumRecordAge gives a batch up once its oldest record is too old",
          "[poller][failure]") {
  config::RetryConfig retry;
  retry.maximum_record_age = milliseconds(60000);
  CHECK(nextStep(retry, false, failure(50, 1, FailureClass::kFunctionError, milliseconds(59999))) ==
        NextStep::kRetry);
  CHECK(nextStep(retry, false, failure(1, 1, FailureClass::kFunctionError, milliseconds(60001))) ==
        NextStep::kGiveUp);
  // Age wins over bisection: records past their age are not split further.
  retry.bisect_batch_on_function_error = true;
  CHECK(
      nextStep(retry, false, failure(1, 100, FailureClass::kFunctionError, milliseconds(60001))) ==
      NextStep::kGiveUp);
}

TEST_CASE("bisection splits function errors of batches of more than one record",
          "[poller][failure]") {
  config::RetryConfig retry;
  retry.bisect_batch_on_function_error = true;
  retry.maximum_retry_attempts = 1;
  CHECK(nextStep(retry, false, failure(1, 100)) == NextStep::kBisect);
  CHECK(nextStep(retry, false, failure(1, 2)) == NextStep::kBisect);
  // A single record follows the retry bound.
  CHECK(nextStep(retry, false, failure(1, 1)) == NextStep::kRetry);
  CHECK(nextStep(retry, false, failure(2, 1)) == NextStep::kGiveUp);
  // Unreachable and throttled are not the records' fault: no split.
  CHECK(nextStep(retry, false, failure(1, 100, FailureClass::kUnreachable)) == NextStep::kRetry);
  CHECK(nextStep(retry, false, failure(0, 100, FailureClass::kThrottled)) == NextStep::kRetry);
  retry.bisect_batch_on_function_error = false;
  CHECK(nextStep(retry, false, failure(1, 100)) == NextStep::kRetry);
}

TEST_CASE("fatal failures disable, whatever the bounds", "[poller][failure]") {
  config::RetryConfig retry;
  CHECK(nextStep(retry, false, failure(0, 100, FailureClass::kFatal)) == NextStep::kDisable);
  retry.maximum_retry_attempts = 0;
  retry.bisect_batch_on_function_error = true;
  CHECK(nextStep(retry, true, failure(0, 100, FailureClass::kFatal)) == NextStep::kDisable);
}

TEST_CASE("an onFailure destination with unbounded retries gets at most 10, as in AWS",
          "[poller][failure]") {
  config::RetryConfig retry;
  CHECK(effectiveMaximumRetries(retry, false) == config::kUnbounded);
  CHECK(effectiveMaximumRetries(retry, true) == 10);
  CHECK(nextStep(retry, true, failure(10)) == NextStep::kRetry);
  CHECK(nextStep(retry, true, failure(11)) == NextStep::kGiveUp);
  // An explicit bound, or an age bound, is kept as written.
  retry.maximum_retry_attempts = 3;
  CHECK(effectiveMaximumRetries(retry, true) == 3);
  retry.maximum_retry_attempts = config::kUnbounded;
  retry.maximum_record_age = milliseconds(3600000);
  CHECK(effectiveMaximumRetries(retry, true) == config::kUnbounded);
}

TEST_CASE("bisection keeps offset order: the left half holds the earlier records of every "
          "partition",
          "[poller][failure]") {
  Batch batch;
  batch.payload_bytes = 7000;
  // Two partitions interleaved as a batch may hold them; 7 records.
  for (int i = 0; i < 7; ++i) {
    Record r;
    r.topic = "t";
    r.partition = Partition{i % 2};
    r.offset = Offset{100 + i};
    batch.records.push_back(r);
  }
  auto [left, right] = bisectBatch(batch);
  REQUIRE(left.records.size() == 3);
  REQUIRE(right.records.size() == 4);
  for (std::size_t i = 0; i < left.records.size(); ++i) {
    CHECK(left.records[i].offset == batch.records[i].offset);
  }
  for (std::size_t i = 0; i < right.records.size(); ++i) {
    CHECK(right.records[i].offset == batch.records[3 + i].offset);
  }
  // Per partition, every offset of the left half precedes every offset of the right half.
  for (int p = 0; p < 2; ++p) {
    std::int64_t last_left = -1;
    std::int64_t first_right = std::numeric_limits<std::int64_t>::max();
    for (const auto& r : left.records) {
      if (r.partition.value() == p) {
        last_left = std::max(last_left, r.offset.value());
      }
    }
    for (const auto& r : right.records) {
      if (r.partition.value() == p) {
        first_right = std::min(first_right, r.offset.value());
      }
    }
    CHECK(last_left < first_right);
  }
  CHECK(left.payload_bytes + right.payload_bytes == 7000);
  CHECK(left.payload_bytes == 3000);
  // Down to one record each, recursively, as the poller does.
  auto [a, b] = bisectBatch(left);
  CHECK(a.records.size() == 1);
  CHECK(b.records.size() == 2);
}

TEST_CASE("too large: 413 is its own class, a batch splits, one record leaves or is held",
          "[unit]") {
  CHECK(classify(http(413)) == FailureClass::kTooLarge);
  CHECK(classify(outcome(invoker::InvokeOutcome::kPayloadTooLarge)) == FailureClass::kTooLarge);
  config::RetryConfig unbounded; // the defaults: retry for ever, no age bound
  config::RetryConfig bounded;
  bounded.maximum_retry_attempts = 3;
  config::RetryConfig aged;
  aged.maximum_record_age = std::chrono::milliseconds(60000);
  // Many records: split whatever bisectBatchOnFunctionError says; the whole can never pass.
  CHECK_FALSE(unbounded.bisect_batch_on_function_error);
  CHECK(nextStep(unbounded, false, failure(1, 10, FailureClass::kTooLarge)) == NextStep::kBisect);
  // One record: to the destination, dropped when bounded, else held (never dropped silently).
  CHECK(nextStep(unbounded, true, failure(1, 1, FailureClass::kTooLarge)) == NextStep::kGiveUp);
  CHECK(nextStep(bounded, false, failure(1, 1, FailureClass::kTooLarge)) == NextStep::kGiveUp);
  CHECK(nextStep(aged, false, failure(1, 1, FailureClass::kTooLarge)) == NextStep::kGiveUp);
  CHECK(nextStep(unbounded, false, failure(1, 1, FailureClass::kTooLarge)) == NextStep::kHold);
  CHECK_FALSE(mayGiveUp(unbounded, false));
  CHECK(mayGiveUp(unbounded, true));
}

TEST_CASE("maximumRecordAge is checked before an attempt, not only after a failure", "[unit]") {
  config::RetryConfig none;
  CHECK_FALSE(expiredBeforeAttempt(none, milliseconds(1000LL * 3600 * 24 * 365)));
  config::RetryConfig aged;
  aged.maximum_record_age = milliseconds(60000);
  CHECK_FALSE(expiredBeforeAttempt(aged, milliseconds(60000)));
  CHECK(expiredBeforeAttempt(aged, milliseconds(60001)));
}
