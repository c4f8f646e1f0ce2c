#include "poller/in_flight.h"

#include <algorithm>

namespace kesm::poller {

using std::chrono::milliseconds;

namespace {

Step stepTo(Next next) {
  Step step;
  step.next = next;
  return step;
}

// `ranges` lose the records of `done`: each partition resumes after done's last offset.
void advance(PartitionRanges& ranges, const PartitionRanges& done) {
  for (const auto& [tp, range] : done) {
    auto it = ranges.find(tp);
    if (it == ranges.end()) {
      continue;
    }
    it->second.first = Offset{range.last.value() + 1};
    if (it->second.first > it->second.last) {
      ranges.erase(it);
    }
  }
}

} // namespace

InFlight openBatch(Batch cut) {
  InFlight f;
  f.ranges = rangesOf(cut);
  f.covered = f.ranges;
  auto sent = std::make_shared<Batch>();
  sent->payload_bytes = cut.payload_bytes;
  for (auto& r : cut.records) {
    if (r.filtered) {
      f.filtered++;
    } else {
      sent->records.push_back(std::move(r));
    }
  }
  if (!sent->records.empty()) {
    f.pieces.push_back(std::move(sent));
  }
  return f;
}

InFlightMachine::InFlightMachine(InFlightSettings settings)
    : settings_(std::move(settings)), limit_(std::max<std::size_t>(1, settings_.max_concurrent)) {
  settings_.max_concurrent = limit_;
}

std::size_t InFlightMachine::concurrencyLimit() const {
  return std::min(limit_, settings_.max_concurrent);
}

Step InFlightMachine::beforeAttempt(InFlight& f, bool lone_record_too_large,
                                    milliseconds oldest_record_age, Clock::time_point now) const {
  if (f.to_destination) {
    return Step{};
  }
  if (lone_record_too_large) {
    return tooLarge(f, oldest_record_age, now);
  }
  if (expiredBeforeAttempt(settings_.retry, oldest_record_age)) {
    f.last_error = "records " + std::to_string(oldest_record_age.count()) +
                   " ms old, past maximumRecordAge: not sent";
    return giveUp(f, now);
  }
  return Step{};
}

void InFlightMachine::submitted(InFlight& f) const {
  f.running = true;
  if (f.to_destination) {
    f.destination_attempts++;
  } else {
    f.attempts++;
  }
}

Step InFlightMachine::afterAttempt(InFlight& f, const invoker::InvokeResult& result,
                                   milliseconds oldest_record_age, Clock::time_point now,
                                   double random01) {
  f.running = false;
  if (result.ok()) {
    if (limit_ < settings_.max_concurrent) {
      limit_++; // additive increase after a throttle
    }
    return stepTo(Next::kPieceDone);
  }
  f.last_error = std::string(invoker::toString(result.outcome)) +
                 (result.detail.empty() ? "" : ": " + result.detail);
  PartitionRanges succeeded;
  std::size_t succeeded_records = 0;
  if (result.outcome == invoker::InvokeOutcome::kPartialFailure) {
    PartialSplit split = splitAtFailures(f.piece(), result.item_failures);
    if (!split.succeeded.records.empty() && !split.remainder.records.empty()) {
      succeeded = rangesOf(split.succeeded);
      succeeded_records = split.succeeded.records.size();
      advance(f.ranges, succeeded);
      f.pieces.front() = std::make_shared<Batch>(std::move(split.remainder));
      if (settings_.retry.bisect_batch_on_function_error) {
        f.attempts = 0;
        f.counted_failures = 0;
        f.retry_at = now;
        Step step = stepTo(Next::kRetry);
        step.succeeded = std::move(succeeded);
        step.succeeded_records = succeeded_records;
        return step;
      }
    }
  }
  FailedAttempt failed;
  failed.failure = classify(result);
  failed.records = f.piece().records.size();
  failed.oldest_record_age = oldest_record_age;
  if (failed.failure == FailureClass::kThrottled) {
    limit_ = std::max<std::size_t>(1, limit_ / 2); // a 429 is not a retry
  } else if (failed.failure != FailureClass::kFatal) {
    f.counted_failures++;
  }
  failed.counted_failures = f.counted_failures;
  Step step;
  switch (nextStep(settings_.retry, settings_.has_destination, failed)) {
  case NextStep::kDisable:
    step.next = Next::kDisable; // kept uncommitted; abandoned when the poller stops
    break;
  case NextStep::kBisect:
    step.next = Next::kBisect;
    step.split = f.pieces.front();
    bisect(f, now);
    break;
  case NextStep::kGiveUp:
    step = failed.failure == FailureClass::kTooLarge ? tooLarge(f, oldest_record_age, now)
                                                     : giveUp(f, now);
    break;
  case NextStep::kHold:
    step = tooLarge(f, oldest_record_age, now);
    break;
  case NextStep::kRetry: {
    auto delay = invoker::nextBackoff(settings_.backoff, f.attempts, random01);
    if (result.outcome == invoker::InvokeOutcome::kTimeout) {
      // kesm closed the connection, but a function need not stop on that: give it one more
      // timeout to finish before the same records are sent again, so that by kesm's choice
      // no two attempts of a batch run at the function at once.
      delay = std::max(delay, settings_.function_timeout);
    }
    if (failed.failure == FailureClass::kThrottled && result.retry_after) {
      delay = std::max(delay, *result.retry_after); // the function's Retry-After is a floor
    }
    f.retry_at = now + delay;
    step.next = Next::kRetry;
    step.delay = delay;
    break;
  }
  }
  step.failure = failed.failure;
  step.succeeded = std::move(succeeded);
  step.succeeded_records = succeeded_records;
  return step;
}

Step InFlightMachine::afterDestinationWrite(InFlight& f, DestinationWrite written,
                                            Clock::time_point now, double random01) const {
  f.running = false;
  switch (written) {
  case DestinationWrite::kWritten:
    return stepTo(Next::kPieceDone);
  case DestinationWrite::kRefused:
    // Writing again cannot help, and skipping the records would lose them.
    return stepTo(Next::kDisable);
  case DestinationWrite::kRetriable:
    break;
  }
  Step step = stepTo(Next::kRetry);
  step.delay = invoker::nextBackoff(settings_.backoff, f.destination_attempts, random01);
  f.retry_at = now + step.delay;
  return step;
}

InFlightMachine::PieceDone InFlightMachine::pieceDone(InFlight& f, Clock::time_point now) const {
  PieceDone done;
  done.ranges = rangesOf(f.piece());
  advance(f.ranges, done.ranges);
  f.pieces.pop_front();
  done.batch_done = f.pieces.empty();
  f.attempts = 0;
  f.counted_failures = 0;
  f.to_destination = false;
  f.destination_attempts = 0;
  f.retry_at = now;
  return done;
}

// One record that cannot be invoked: to onFailure, dropped when retries are bounded, else
// held visibly.
Step InFlightMachine::tooLarge(InFlight& f, milliseconds oldest_record_age,
                               Clock::time_point now) const {
  FailedAttempt failed;
  failed.failure = FailureClass::kTooLarge;
  failed.records = 1;
  failed.oldest_record_age = oldest_record_age;
  Step step;
  if (nextStep(settings_.retry, settings_.has_destination, failed) == NextStep::kHold) {
    f.held = true;
    f.retry_at = Clock::time_point::max();
    step.next = Next::kHold;
  } else {
    step = giveUp(f, now);
  }
  step.too_large = true;
  return step;
}

// Retries exhausted: to the on-failure destination, or dropped when there is none (only
// possible when the user bounded the retries).
Step InFlightMachine::giveUp(InFlight& f, Clock::time_point now) const {
  if (settings_.has_destination) {
    f.to_destination = true;
    f.retry_at = now;
    return stepTo(Next::kToDestination);
  }
  return stepTo(Next::kDrop);
}

void InFlightMachine::bisect(InFlight& f, Clock::time_point now) const {
  auto whole = f.pieces.front();
  f.pieces.pop_front();
  auto [left, right] = bisectBatch(*whole);
  f.pieces.push_front(std::make_shared<Batch>(std::move(right)));
  f.pieces.push_front(std::make_shared<Batch>(std::move(left)));
  f.attempts = 0;
  f.counted_failures = 0;
  f.retry_at = now;
}

} // namespace kesm::poller
