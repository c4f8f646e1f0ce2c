#include "poller/failure_policy.h"

#include <map>

namespace kesm::poller {

FailureClass classify(const invoker::InvokeResult& result) {
  switch (result.outcome) {
  case invoker::InvokeOutcome::kPayloadTooLarge:
    return FailureClass::kTooLarge;
  case invoker::InvokeOutcome::kSuccess:
  case invoker::InvokeOutcome::kFunctionError:
  case invoker::InvokeOutcome::kTimeout:
  case invoker::InvokeOutcome::kPartialFailure: // the records not reported succeeded
    return FailureClass::kFunctionError;
  case invoker::InvokeOutcome::kConnectionError:
    return FailureClass::kUnreachable;
  case invoker::InvokeOutcome::kHttpError:
    break;
  }
  switch (result.http_status) {
  case 401:
  case 403:
  case 404:
    return FailureClass::kFatal;
  case 413:
    return FailureClass::kTooLarge;
  case 429:
    return FailureClass::kThrottled;
  default:
    return FailureClass::kFunctionError;
  }
}

const char* toString(FailureClass failure) {
  switch (failure) {
  case FailureClass::kFunctionError:
    return "function_error";
  case FailureClass::kUnreachable:
    return "unreachable";
  case FailureClass::kThrottled:
    return "throttled";
  case FailureClass::kFatal:
    return "fatal";
  case FailureClass::kTooLarge:
    return "too_large";
  }
  return "unknown";
}

int effectiveMaximumRetries(const config::RetryConfig& retry, bool has_destination) {
  if (retry.maximum_retry_attempts == config::kUnbounded && has_destination &&
      !retry.maximum_record_age) {
    return kRetriesWithDestination;
  }
  return retry.maximum_retry_attempts;
}

bool mayGiveUp(const config::RetryConfig& retry, bool has_destination) {
  return has_destination || retry.maximum_retry_attempts != config::kUnbounded ||
         retry.maximum_record_age.has_value();
}

bool expiredBeforeAttempt(const config::RetryConfig& retry,
                          std::chrono::milliseconds oldest_record_age) {
  return retry.maximum_record_age && oldest_record_age > *retry.maximum_record_age;
}

NextStep nextStep(const config::RetryConfig& retry, bool has_destination,
                  const FailedAttempt& attempt) {
  if (attempt.failure == FailureClass::kFatal) {
    return NextStep::kDisable;
  }
  if (expiredBeforeAttempt(retry, attempt.oldest_record_age)) {
    return NextStep::kGiveUp;
  }
  if (attempt.failure == FailureClass::kTooLarge) {
    if (attempt.records > 1) {
      return NextStep::kBisect;
    }
    return mayGiveUp(retry, has_destination) ? NextStep::kGiveUp : NextStep::kHold;
  }
  if (retry.bisect_batch_on_function_error && attempt.failure == FailureClass::kFunctionError &&
      attempt.records > 1) {
    return NextStep::kBisect;
  }
  int maximum = effectiveMaximumRetries(retry, has_destination);
  // counted_failures - 1 retries have been made so far.
  if (maximum != config::kUnbounded && attempt.counted_failures > maximum) {
    return NextStep::kGiveUp;
  }
  return NextStep::kRetry;
}

AccessRefusalWindow::Verdict AccessRefusalWindow::refused(Clock::time_point now) {
  bool continued = last_ && now - *last_ < kSilence;
  last_ = now;
  if (!since_ || !continued) {
    since_ = now;
    return Verdict::kStarted;
  }
  return now - *since_ >= kRefusedFor ? Verdict::kFatal : Verdict::kContinuing;
}

std::pair<Batch, Batch> bisectBatch(const Batch& batch) {
  std::size_t half = batch.records.size() / 2;
  Batch left;
  Batch right;
  left.records.assign(batch.records.begin(), batch.records.begin() + half);
  right.records.assign(batch.records.begin() + half, batch.records.end());
  left.payload_bytes =
      batch.records.empty() ? 0 : batch.payload_bytes * half / batch.records.size();
  right.payload_bytes = batch.payload_bytes - left.payload_bytes;
  return {std::move(left), std::move(right)};
}

PartialSplit splitAtFailures(const Batch& batch,
                             const std::vector<invoker::ItemFailure>& failures) {
  std::map<TopicPartition, std::int64_t> failed_from;
  for (const auto& failure : failures) {
    auto [it, inserted] = failed_from.emplace(failure.tp, failure.offset);
    if (!inserted && failure.offset < it->second) {
      it->second = failure.offset;
    }
  }
  PartialSplit split;
  for (const auto& r : batch.records) {
    auto it = failed_from.find(TopicPartition{r.topic, r.partition});
    bool failed = it != failed_from.end() && r.offset.value() >= it->second;
    (failed ? split.remainder : split.succeeded).records.push_back(r);
  }
  if (!batch.records.empty()) {
    split.succeeded.payload_bytes =
        batch.payload_bytes * split.succeeded.records.size() / batch.records.size();
    split.remainder.payload_bytes = batch.payload_bytes - split.succeeded.payload_bytes;
  }
  return split;
}

} // namespace kesm::poller
