// The life of a batch in flight (poller/in_flight.h): pure transitions, time and the random
// value passed in.

#include "poller/in_flight.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::poller;
using std::chrono::milliseconds;

namespace {

const Clock::time_point kNow = Clock::time_point{} + std::chrono::hours(1);

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

const invoker::InvokeResult kOk = outcome(invoker::InvokeOutcome::kSuccess);
const invoker::InvokeResult kFunctionError = outcome(invoker::InvokeOutcome::kFunctionError);

Batch batchOf(int records, int partitions = 1) {
  Batch b;
  for (int i = 0; i < records; ++i) {
    Record r;
    r.topic = "orders";
    r.partition = Partition{i % partitions};
    r.offset = Offset{100 + i};
    b.records.push_back(r);
  }
  b.payload_bytes = 100 * static_cast<std::size_t>(records);
  return b;
}

InFlightSettings settings(std::size_t max_concurrent = 5) {
  InFlightSettings s;
  s.backoff = invoker::BackoffPolicy{milliseconds(100), milliseconds(30000), 2.0, 0.0};
  s.function_timeout = milliseconds(3000);
  s.max_concurrent = max_concurrent;
  return s;
}

// A batch whose first attempt is out.
InFlight sent(const InFlightMachine& machine, int records = 1) {
  InFlight f = openBatch(batchOf(records));
  machine.submitted(f);
  return f;
}

} // namespace

TEST_CASE("a cut keeps its filtered records out of the piece sent, but covers their offsets",
          "[unit][poller][inflight]") {
  Batch cut = batchOf(4);
  cut.records[1].filtered = true;
  cut.records[3].filtered = true;
  InFlight f = openBatch(cut);
  REQUIRE(f.pieces.size() == 1);
  CHECK(f.piece().records.size() == 2);
  CHECK(f.filtered == 2);
  CHECK(f.covered.begin()->second.last == Offset{103});
  for (auto& r : cut.records) {
    r.filtered = true;
  }
  CHECK(openBatch(cut).pieces.empty()); // nothing to send: committed at once
}

TEST_CASE("success: the piece is done and the batch committable", "[unit][poller][inflight]") {
  InFlightMachine machine(settings());
  InFlight f = sent(machine, 3);
  CHECK(f.running);
  CHECK(f.attempts == 1);
  Step step = machine.afterAttempt(f, kOk, milliseconds(0), kNow, 0.5);
  CHECK(step.next == Next::kPieceDone);
  CHECK_FALSE(f.running);
  auto done = machine.pieceDone(f, kNow);
  CHECK(done.batch_done);
  CHECK(done.ranges.begin()->second.last == Offset{102});
  CHECK(f.ranges.empty());
  CHECK(f.attempts == 0);
}

TEST_CASE("a function error is retried after the backoff, chosen by the random value",
          "[unit][poller][inflight]") {
  auto s = settings();
  s.backoff.jitter = 0.5;
  InFlightMachine machine(s);
  InFlight f = sent(machine);
  Step step = machine.afterAttempt(f, kFunctionError, milliseconds(0), kNow, 0.0);
  CHECK(step.next == Next::kRetry);
  CHECK(f.counted_failures == 1);
  CHECK(f.retry_at == kNow + step.delay);
  CHECK(step.delay == invoker::nextBackoff(s.backoff, 1, 0.0));
  CHECK(f.last_error == std::string(invoker::toString(invoker::InvokeOutcome::kFunctionError)));
  // Another random value, another jitter.
  InFlight g = sent(machine);
  CHECK(machine.afterAttempt(g, kFunctionError, milliseconds(0), kNow, 0.99).delay != step.delay);
}

TEST_CASE("a timed-out attempt is retried no sooner than one more function timeout",
          "[unit][poller][inflight]") {
  InFlightMachine machine(settings()); // backoff 100 ms, function timeout 3 s
  InFlight f = sent(machine);
  Step step =
      machine.afterAttempt(f, outcome(invoker::InvokeOutcome::kTimeout), milliseconds(0), kNow, 0);
  CHECK(step.next == Next::kRetry);
  CHECK(step.delay == milliseconds(3000));
  CHECK(f.retry_at == kNow + milliseconds(3000));
  // A backoff longer than the timeout stays as it is.
  auto s = settings();
  s.backoff.initial = milliseconds(5000);
  InFlightMachine slow(s);
  InFlight g = sent(slow);
  CHECK(slow.afterAttempt(g, outcome(invoker::InvokeOutcome::kTimeout), milliseconds(0), kNow, 0)
            .delay == milliseconds(5000));
}

TEST_CASE("a 429 never counts as a retry and halves the batches in flight, down to one",
          "[unit][poller][inflight]") {
  auto s = settings(8);
  s.retry.maximum_retry_attempts = 0; // any counted failure would give up
  InFlightMachine machine(s);
  CHECK(machine.concurrencyLimit() == 8);
  InFlight f = sent(machine, 10);
  for (std::size_t expected : {4, 2, 1, 1}) {
    Step step = machine.afterAttempt(f, http(429), milliseconds(0), kNow, 0.5);
    CHECK(step.next == Next::kRetry);
    CHECK(step.failure == FailureClass::kThrottled);
    CHECK(f.counted_failures == 0);
    CHECK(machine.concurrencyLimit() == expected);
    machine.submitted(f);
  }
}

TEST_CASE("each success after a throttle allows one more batch in flight, up to the maximum",
          "[unit][poller][inflight]") {
  InFlightMachine machine(settings(4));
  InFlight f = sent(machine);
  machine.afterAttempt(f, http(429), milliseconds(0), kNow, 0.5);
  machine.submitted(f);
  machine.afterAttempt(f, http(429), milliseconds(0), kNow, 0.5);
  REQUIRE(machine.concurrencyLimit() == 1);
  for (std::size_t expected : {2, 3, 4, 4}) {
    InFlight g = sent(machine);
    machine.afterAttempt(g, kOk, milliseconds(0), kNow, 0.5);
    CHECK(machine.concurrencyLimit() == expected);
  }
}

TEST_CASE("404, 401 and 403 disable the mapping and leave the batch uncommitted",
          "[unit][poller][inflight]") {
  for (int status : {404, 401, 403}) {
    CAPTURE(status);
    InFlightMachine machine(settings());
    InFlight f = sent(machine, 3);
    Step step = machine.afterAttempt(f, http(status), milliseconds(0), kNow, 0.5);
    CHECK(step.next == Next::kDisable);
    CHECK(step.failure == FailureClass::kFatal);
    CHECK(f.counted_failures == 0);
    CHECK(f.pieces.size() == 1); // nothing done, nothing committable
    CHECK(f.ranges.size() == 1);
    CHECK_FALSE(f.to_destination);
  }
}

TEST_CASE("retries exhausted: to the destination when there is one, else dropped",
          "[unit][poller][inflight]") {
  auto s = settings();
  s.retry.maximum_retry_attempts = 2;
  SECTION("with a destination") {
    s.has_destination = true;
    InFlightMachine machine(s);
    InFlight f = sent(machine);
    CHECK(machine.afterAttempt(f, kFunctionError, milliseconds(0), kNow, 0).next == Next::kRetry);
    machine.submitted(f);
    CHECK(machine.afterAttempt(f, kFunctionError, milliseconds(0), kNow, 0).next == Next::kRetry);
    machine.submitted(f);
    Step step = machine.afterAttempt(f, kFunctionError, milliseconds(0), kNow, 0);
    CHECK(step.next == Next::kToDestination);
    CHECK(f.to_destination);
    CHECK(f.retry_at == kNow);
    CHECK(f.attempts == 3);
    // The write goes out as its own attempt, counted apart from the invocations.
    machine.submitted(f);
    CHECK(f.destination_attempts == 1);
    CHECK(f.attempts == 3);
    CHECK(machine.afterDestinationWrite(f, DestinationWrite::kWritten, kNow, 0).next ==
          Next::kPieceDone);
  }
  SECTION("without one") {
    InFlightMachine machine(s);
    InFlight f = sent(machine);
    machine.afterAttempt(f, kFunctionError, milliseconds(0), kNow, 0);
    machine.submitted(f);
    machine.afterAttempt(f, kFunctionError, milliseconds(0), kNow, 0);
    machine.submitted(f);
    Step step = machine.afterAttempt(f, kFunctionError, milliseconds(0), kNow, 0);
    CHECK(step.next == Next::kDrop);
    CHECK_FALSE(f.to_destination);
  }
}

TEST_CASE("a destination write: refused disables, a retriable failure backs off",
          "[unit][poller][inflight]") {
  auto s = settings();
  s.has_destination = true;
  s.retry.maximum_retry_attempts = 0;
  InFlightMachine machine(s);
  InFlight f = sent(machine);
  REQUIRE(machine.afterAttempt(f, kFunctionError, milliseconds(0), kNow, 0).next ==
          Next::kToDestination);
  machine.submitted(f);
  Step retry = machine.afterDestinationWrite(f, DestinationWrite::kRetriable, kNow, 0);
  CHECK(retry.next == Next::kRetry);
  CHECK(retry.delay == milliseconds(100)); // backoff by destination attempt 1
  CHECK(f.retry_at == kNow + milliseconds(100));
  machine.submitted(f);
  CHECK(machine.afterDestinationWrite(f, DestinationWrite::kRetriable, kNow, 0).delay ==
        milliseconds(200));
  machine.submitted(f);
  CHECK(machine.afterDestinationWrite(f, DestinationWrite::kRefused, kNow, 0).next ==
        Next::kDisable);
  CHECK(f.pieces.size() == 1); // nothing committed
}

TEST_CASE("bisection: the failing piece becomes its two halves in order, with fresh attempts",
          "[unit][poller][inflight]") {
  auto s = settings();
  s.retry.bisect_batch_on_function_error = true;
  InFlightMachine machine(s);
  InFlight f = sent(machine, 5);
  Step step = machine.afterAttempt(f, kFunctionError, milliseconds(0), kNow, 0);
  CHECK(step.next == Next::kBisect);
  REQUIRE(step.split);
  CHECK(step.split->records.size() == 5);
  REQUIRE(f.pieces.size() == 2);
  CHECK(f.pieces[0]->records.size() == 2);
  CHECK(f.pieces[1]->records.size() == 3);
  CHECK(f.pieces[0]->records.front().offset == Offset{100});
  CHECK(f.pieces[1]->records.front().offset == Offset{102});
  CHECK(f.attempts == 0);
  CHECK(f.counted_failures == 0);
  CHECK(f.retry_at == kNow);
  // The left half succeeds: its offsets are committable, the batch is not done.
  machine.submitted(f);
  machine.afterAttempt(f, kOk, milliseconds(0), kNow, 0);
  auto done = machine.pieceDone(f, kNow);
  CHECK_FALSE(done.batch_done);
  CHECK(done.ranges.begin()->second.last == Offset{101});
  CHECK(f.ranges.begin()->second.first == Offset{102}); // what is still uncommitted
}

TEST_CASE("a record too large to send is held without a destination or bounds",
          "[unit][poller][inflight]") {
  InFlightMachine machine(settings());
  InFlight f = openBatch(batchOf(1));
  Step step = machine.beforeAttempt(f, true, milliseconds(0), kNow);
  CHECK(step.next == Next::kHold);
  CHECK(step.too_large);
  CHECK(f.held);
  CHECK(f.retry_at == Clock::time_point::max());
  CHECK_FALSE(f.running);
  CHECK(f.attempts == 0); // never sent
}

TEST_CASE("a record too large to send goes to the destination when there is one",
          "[unit][poller][inflight]") {
  auto s = settings();
  s.has_destination = true;
  InFlightMachine machine(s);
  InFlight f = openBatch(batchOf(1));
  Step step = machine.beforeAttempt(f, true, milliseconds(0), kNow);
  CHECK(step.next == Next::kToDestination);
  CHECK(step.too_large);
  CHECK_FALSE(f.held);
  CHECK(f.to_destination);
  // A destination write is not checked for size again.
  CHECK(machine.beforeAttempt(f, true, milliseconds(0), kNow).next == Next::kSend);
}

TEST_CASE("413 for one record: held, or dropped when retries are bounded, and for many: bisect",
          "[unit][poller][inflight]") {
  InFlightMachine unbounded(settings());
  InFlight one = sent(unbounded, 1);
  Step step = unbounded.afterAttempt(one, http(413), milliseconds(0), kNow, 0);
  CHECK(step.next == Next::kHold);
  CHECK(step.too_large);
  auto s = settings();
  s.retry.maximum_retry_attempts = 3;
  InFlightMachine bounded(s);
  InFlight again = sent(bounded, 1);
  CHECK(bounded.afterAttempt(again, http(413), milliseconds(0), kNow, 0).next == Next::kDrop);
  InFlight many = sent(unbounded, 4);
  CHECK(unbounded.afterAttempt(many, http(413), milliseconds(0), kNow, 0).next == Next::kBisect);
}

TEST_CASE("records past maximumRecordAge are given up before they are sent",
          "[unit][poller][inflight]") {
  auto s = settings();
  s.retry.maximum_record_age = milliseconds(60000);
  InFlightMachine machine(s);
  InFlight young = openBatch(batchOf(3));
  CHECK(machine.beforeAttempt(young, false, milliseconds(59000), kNow).next == Next::kSend);
  InFlight old = openBatch(batchOf(3));
  Step step = machine.beforeAttempt(old, false, milliseconds(61000), kNow);
  CHECK(step.next == Next::kDrop);
  CHECK_FALSE(step.too_large);
  CHECK(old.last_error == "records 61000 ms old, past maximumRecordAge: not sent");
  CHECK(old.attempts == 0);
}

TEST_CASE("a connection refused is retried, never bisected", "[unit][poller][inflight]") {
  auto s = settings();
  s.retry.bisect_batch_on_function_error = true;
  InFlightMachine machine(s);
  InFlight f = sent(machine, 10);
  Step step = machine.afterAttempt(f, outcome(invoker::InvokeOutcome::kConnectionError),
                                   milliseconds(0), kNow, 0);
  CHECK(step.next == Next::kRetry);
  CHECK(step.failure == FailureClass::kUnreachable);
  CHECK(f.pieces.size() == 1);
  CHECK(f.counted_failures == 1);
}
