// Partial batch responses in the batch machine (poller/in_flight.h, poller/failure_policy.h):
// what is committed, what is retried, and how it meets retries, bisection, record age, the
// onFailure destination, and a 429's Retry-After.

#include "poller/failure_policy.h"
#include "poller/in_flight.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::poller;
using std::chrono::milliseconds;

namespace {

const Clock::time_point kNow = Clock::time_point{} + std::chrono::hours(1);

// Records interleaved over `partitions` partitions of "orders": record i is partition
// i % partitions, offset 100 + i / partitions.
Batch batchOf(int records, int partitions) {
  Batch b;
  for (int i = 0; i < records; ++i) {
    Record r;
    r.topic = "orders";
    r.partition = Partition{i % partitions};
    r.offset = Offset{100 + i / partitions};
    b.records.push_back(r);
  }
  b.payload_bytes = 100 * static_cast<std::size_t>(records);
  return b;
}

TopicPartition tp(int partition) { return TopicPartition{"orders", Partition{partition}}; }

invoker::InvokeResult partial(std::vector<invoker::ItemFailure> failures) {
  invoker::InvokeResult r;
  r.outcome = invoker::InvokeOutcome::kPartialFailure;
  r.http_status = 200;
  r.item_failures = std::move(failures);
  return r;
}

invoker::InvokeResult functionError() {
  invoker::InvokeResult r;
  r.outcome = invoker::InvokeOutcome::kFunctionError;
  return r;
}

InFlightSettings settings() {
  InFlightSettings s;
  s.backoff = invoker::BackoffPolicy{milliseconds(100), milliseconds(30000), 2.0, 0.0};
  s.function_timeout = milliseconds(3000);
  s.max_concurrent = 4;
  return s;
}

InFlight sent(const InFlightMachine& machine, const Batch& batch) {
  InFlight f = openBatch(batch);
  machine.submitted(f);
  return f;
}

std::vector<std::pair<int, std::int64_t>> offsets(const Batch& b) {
  std::vector<std::pair<int, std::int64_t>> out;
  for (const auto& r : b.records) {
    out.emplace_back(r.partition.value(), r.offset.value());
  }
  return out;
}

} // namespace

TEST_CASE("splitAtFailures: each listed partition fails from its lowest listed offset",
          "[unit][poller][partial]") {
  // Partitions 0, 1, 2 with offsets 100..103 each, interleaved.
  Batch b = batchOf(12, 3);
  auto split = splitAtFailures(b, {{tp(1), 102}, {tp(0), 103}, {tp(1), 101}});
  using P = std::vector<std::pair<int, std::int64_t>>;
  CHECK(offsets(split.remainder) == P{{1, 101}, {1, 102}, {0, 103}, {1, 103}});
  CHECK(offsets(split.succeeded) ==
        P{{0, 100}, {1, 100}, {2, 100}, {0, 101}, {2, 101}, {0, 102}, {2, 102}, {2, 103}});
  CHECK(split.succeeded.payload_bytes + split.remainder.payload_bytes == b.payload_bytes);
  CHECK(split.remainder.payload_bytes == 400);
}

TEST_CASE("a partial failure commits each partition up to its first failure and retries the rest",
          "[unit][poller][partial]") {
  InFlightMachine machine(settings());
  InFlight f = sent(machine, batchOf(8, 2)); // partitions 0 and 1, offsets 100..103
  Step step = machine.afterAttempt(f, partial({{tp(1), 102}}), milliseconds(0), kNow, 0.0);
  // Partition 0 whole and partition 1 before 102 succeeded.
  CHECK(step.succeeded_records == 6);
  REQUIRE(step.succeeded.size() == 2);
  CHECK(step.succeeded.at(tp(0)).last == Offset{103});
  CHECK(step.succeeded.at(tp(0)).records == 4);
  CHECK(step.succeeded.at(tp(1)).last == Offset{101});
  CHECK(step.succeeded.at(tp(1)).records == 2);
  // The rest is retried like any failure: counted, after the backoff.
  CHECK(step.next == Next::kRetry);
  CHECK(step.failure == FailureClass::kFunctionError);
  CHECK(step.delay == milliseconds(100));
  CHECK(f.counted_failures == 1);
  CHECK(f.attempts == 1);
  REQUIRE(f.pieces.size() == 1);
  using P = std::vector<std::pair<int, std::int64_t>>;
  CHECK(offsets(f.piece()) == P{{1, 102}, {1, 103}});
  // Only partition 1 from 102 is still uncommitted: partition 0 is free for the next batch.
  REQUIRE(f.ranges.size() == 1);
  CHECK(f.ranges.at(tp(1)).first == Offset{102});
  CHECK(f.ranges.at(tp(1)).last == Offset{103});
  // The retry succeeds: the rest is committed and the batch done.
  machine.submitted(f);
  CHECK(machine.afterAttempt(f, invoker::InvokeResult{}, milliseconds(0), kNow, 0.0).next ==
        Next::kPieceDone);
  auto done = machine.pieceDone(f, kNow);
  CHECK(done.batch_done);
  CHECK(done.ranges.at(tp(1)).first == Offset{102});
  CHECK(f.ranges.empty());
}

TEST_CASE("a partial failure at every partition's first record is a failure of the whole piece",
          "[unit][poller][partial]") {
  auto s = settings();
  s.retry.bisect_batch_on_function_error = true;
  InFlightMachine machine(s);
  InFlight f = sent(machine, batchOf(4, 2));
  Step step =
      machine.afterAttempt(f, partial({{tp(0), 100}, {tp(1), 100}}), milliseconds(0), kNow, 0.0);
  CHECK(step.succeeded_records == 0);
  CHECK(step.succeeded.empty());
  CHECK(step.next == Next::kBisect); // as a function error: nothing succeeded
  CHECK(f.pieces.size() == 2);
}

TEST_CASE("with bisectBatchOnFunctionError the rest of a partial failure starts afresh at once",
          "[unit][poller][partial]") {
  auto s = settings();
  s.retry.bisect_batch_on_function_error = true;
  s.retry.maximum_retry_attempts = 1;
  InFlightMachine machine(s);
  InFlight f = sent(machine, batchOf(6, 1)); // offsets 100..105
  machine.afterAttempt(f, functionError(), milliseconds(0), kNow,
                       0.0); // a plain failure first: bisected 3 + 3
  REQUIRE(f.pieces.size() == 2);
  machine.submitted(f);
  machine.afterAttempt(f, functionError(), milliseconds(0), kNow, 0.0);
  REQUIRE(f.pieces.size() == 3); // 1 + 2 + 3
  machine.submitted(f);
  machine.afterAttempt(f, invoker::InvokeResult{}, milliseconds(0), kNow, 0.0);
  machine.pieceDone(f, kNow); // 100 done; front is 101..102, then 103..105
  machine.submitted(f);
  Step step = machine.afterAttempt(f, partial({{tp(0), 102}}), milliseconds(0), kNow, 0.0);
  CHECK(step.succeeded_records == 1);
  CHECK(step.succeeded.at(tp(0)).last == Offset{101});
  CHECK(step.next == Next::kRetry);
  CHECK(step.delay == milliseconds(0));
  CHECK(f.retry_at == kNow);
  CHECK(f.attempts == 0);
  CHECK(f.counted_failures == 0);
  REQUIRE(f.pieces.size() == 2); // 102, then the untouched 103..105
  using P = std::vector<std::pair<int, std::int64_t>>;
  CHECK(offsets(f.piece()) == P{{0, 102}});
  CHECK(f.ranges.at(tp(0)).first == Offset{102});
}

TEST_CASE("the rest of a partial failure is given up to the destination when retries run out",
          "[unit][poller][partial]") {
  auto s = settings();
  s.retry.maximum_retry_attempts = 1;
  s.has_destination = true;
  InFlightMachine machine(s);
  InFlight f = sent(machine, batchOf(4, 1)); // offsets 100..103
  CHECK(machine.afterAttempt(f, partial({{tp(0), 101}}), milliseconds(0), kNow, 0.0).next ==
        Next::kRetry);
  machine.submitted(f);
  // The retry reports a later failure: progress again, and the second counted failure.
  Step step = machine.afterAttempt(f, partial({{tp(0), 102}}), milliseconds(0), kNow, 0.0);
  CHECK(step.succeeded_records == 1);
  CHECK(step.next == Next::kToDestination);
  using P = std::vector<std::pair<int, std::int64_t>>;
  CHECK(offsets(f.piece()) == P{{0, 102}, {0, 103}}); // only these reach the destination
  machine.submitted(f);
  CHECK(machine.afterDestinationWrite(f, DestinationWrite::kWritten, kNow, 0).next ==
        Next::kPieceDone);
  CHECK(machine.pieceDone(f, kNow).batch_done);
}

TEST_CASE("the rest of a partial failure past maximumRecordAge is given up",
          "[unit][poller][partial]") {
  auto s = settings();
  s.retry.maximum_record_age = milliseconds(60000);
  InFlightMachine machine(s);
  InFlight f = sent(machine, batchOf(4, 1));
  // The caller passes the age of the records to retry.
  Step step = machine.afterAttempt(f, partial({{tp(0), 102}}), milliseconds(61000), kNow, 0.0);
  CHECK(step.succeeded_records == 2);
  CHECK(step.next == Next::kDrop);
  CHECK(f.piece().records.size() == 2);
}

TEST_CASE("a 429's Retry-After is the least delay before the retry, never counted",
          "[unit][poller][partial]") {
  InFlightMachine machine(settings()); // backoff 100 ms
  InFlight f = sent(machine, batchOf(2, 1));
  invoker::InvokeResult throttled;
  throttled.outcome = invoker::InvokeOutcome::kHttpError;
  throttled.http_status = 429;
  throttled.retry_after = milliseconds(7000);
  Step step = machine.afterAttempt(f, throttled, milliseconds(0), kNow, 0.0);
  CHECK(step.next == Next::kRetry);
  CHECK(step.delay == milliseconds(7000));
  CHECK(f.retry_at == kNow + milliseconds(7000));
  CHECK(f.counted_failures == 0);
  // A Retry-After shorter than the backoff does not shorten it.
  machine.submitted(f);
  throttled.retry_after = milliseconds(1);
  CHECK(machine.afterAttempt(f, throttled, milliseconds(0), kNow, 0.0).delay == milliseconds(200));
  // Only a 429's: on a function error the field is not looked at.
  machine.submitted(f);
  invoker::InvokeResult failed;
  failed.outcome = invoker::InvokeOutcome::kFunctionError;
  failed.retry_after = milliseconds(9000);
  CHECK(machine.afterAttempt(f, failed, milliseconds(0), kNow, 0.0).delay < milliseconds(9000));
}
