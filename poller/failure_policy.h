#pragma once

// What to do after a failed attempt: retry, split the batch, give it up (to the on-failure
// destination or dropped) or disable the mapping. Pure: no clock, no I/O.

#include "common/types.h"
#include "config/config.h"
#include "invoker/invoker.h"

#include <chrono>
#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

namespace kesm::poller {

enum class FailureClass {
  kFunctionError, // the function ran and failed: X-Amz-Function-Error, 5xx, other 4xx, timeout
  kUnreachable,   // no answer at all: connection refused or reset; never bisected
  kThrottled,     // 429: back off, fewer batches in flight; not counted as a retry
  kFatal,         // 404, 401, 403: retrying cannot help; the mapping is disabled
  kTooLarge,      // 413, or a record whose event alone passes the 6 MiB payload limit
};

FailureClass classify(const invoker::InvokeResult& result);
const char* toString(FailureClass failure);

enum class NextStep {
  kRetry,   // the same records again, after a backoff
  kBisect,  // two halves, in order, each with fresh attempts
  kGiveUp,  // retries exhausted: to the on-failure destination, or dropped
  kDisable, // stop the mapping, commit nothing of this batch
  kHold,    // cannot succeed and may not be given up: hold the partition, say why, send nothing
};

struct FailedAttempt {
  FailureClass failure = FailureClass::kFunctionError;
  int counted_failures = 0; // failures of this batch that count as retries, this one included
  std::size_t records = 0;
  std::chrono::milliseconds oldest_record_age{0}; // now - the oldest record's timestamp
};

// maximumRetryAttempts as applied: like AWS, an on-failure destination with unbounded retries
// and no age bound gets at most 10 retries, so records can reach the destination at all.
int effectiveMaximumRetries(const config::RetryConfig& retry, bool has_destination);
inline constexpr int kRetriesWithDestination = 10;

// Whether records may leave without success: to the destination, or dropped when the user
// bounded the retries (maximumRetryAttempts or maximumRecordAge). Never by default.
bool mayGiveUp(const config::RetryConfig& retry, bool has_destination);

// The order of the rules: a fatal failure disables; a batch older than maximumRecordAge is
// given up whole; too large: more than one record bisects (whatever the setting, the whole
// can never pass), one record is given up when allowed and held otherwise; a function error
// on more than one record bisects when enabled; a batch past its retries is given up;
// anything else is retried.
NextStep nextStep(const config::RetryConfig& retry, bool has_destination,
                  const FailedAttempt& attempt);

// Before any attempt: records past maximumRecordAge are given up without being sent, as AWS
// discards them. True when the batch is to be given up.
bool expiredBeforeAttempt(const config::RetryConfig& retry,
                          std::chrono::milliseconds oldest_record_age);

// librdkafka reports a refused login or a missing ACL at every reconnect. Only a refusal
// that lasts disables the mapping: a broker that is restarting can refuse a login or two
// while it loads its credentials, and disabling on that would need a restart to undo. Pure:
// time is passed in. Used by one poller thread.
class AccessRefusalWindow {
public:
  enum class Verdict {
    kStarted,    // a first refusal, or the first after a silence: say the mapping may stop
    kContinuing, // refused again, not yet for kRefusedFor
    kFatal,      // refused for kRefusedFor: disable the mapping
  };
  static constexpr std::chrono::milliseconds kRefusedFor{30000};
  // Refusals come at each reconnect (librdkafka backs off up to 10 s): a longer silence
  // means access worked in between, and a new refusal starts a new count.
  static constexpr std::chrono::milliseconds kSilence{15000};

  Verdict refused(Clock::time_point now);
  // A record arrived: access works.
  void worked() { since_.reset(); }

private:
  std::optional<Clock::time_point> since_; // first refusal since the last record
  std::optional<Clock::time_point> last_;
};

// The two halves of a failing batch, in order: the first holds the first floor(n/2) records,
// so attempting the left half before the right keeps every partition in offset order. The
// payload estimate is split in proportion. Needs at least two records.
std::pair<Batch, Batch> bisectBatch(const Batch& batch);

// A partial batch response (ReportBatchItemFailures) split `batch`: the records of each listed
// partition before its failed offset, and every record of partitions not listed, succeeded;
// the rest, in batch order, is to be retried. The payload estimate is split in proportion.
struct PartialSplit {
  Batch succeeded;
  Batch remainder;
};
PartialSplit splitAtFailures(const Batch& batch, const std::vector<invoker::ItemFailure>& failures);

} // namespace kesm::poller
