#pragma once

// The life of one batch from its cut until it is committed or abandoned: attempts, retries
// with backoff, bisection, giving up to the onFailure destination (or dropping), holding a
// record too large to ever send, disabling; and the poller's AIMD concurrency limit (halved
// on each 429, one more after each success). Pure: time and the random value are passed in;
// it logs nothing, counts nothing and sends nothing, the poller does that from the Step.
// Owned and used by one poller thread; not thread-safe.

#include "common/types.h"
#include "config/config.h"
#include "invoker/invoker.h"
#include "invoker/retry_policy.h"
#include "poller/commit_tracker.h"
#include "poller/failure_policy.h"

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>

namespace kesm::poller {

// A batch from its cut until it is committed or abandoned. No two batches in flight share a
// partition. A batch being bisected is a list of pieces, attempted one after the other, in
// offset order.
struct InFlight {
  std::deque<std::shared_ptr<const Batch>> pieces; // front: the piece being attempted
  PartitionRanges ranges;                          // what is still uncommitted
  PartitionRanges covered;                         // the whole cut, filtered records too
  std::size_t filtered = 0;                        // records of the cut never sent
  int attempts = 0;                                // attempts of the front piece, of any outcome
  int counted_failures = 0; // failures of the front piece that count as retries
  bool running = false;
  bool to_destination = false; // the front piece was given up: being written to onFailure
  int destination_attempts = 0;
  bool held = false; // can neither succeed nor be given up: sent nothing, holds its partitions
  std::string last_error;
  Clock::time_point retry_at{};
  const Batch& piece() const { return *pieces.front(); }
};

// A cut as a batch in flight: records that matched no filter are committed with it, never
// sent. No piece when every record was filtered.
InFlight openBatch(Batch cut);

enum class Next {
  kSend,          // attempt the front piece (or write it to the destination) now
  kRetry,         // attempt it again at retry_at
  kBisect,        // the front piece is now its two halves, each with fresh attempts, from now
  kToDestination, // given up: write the front piece to the onFailure destination, from now
  kDrop,          // given up with no destination: the caller drops it, then calls pieceDone
  kPieceDone,     // the front piece succeeded or reached the destination: call pieceDone
  kHold,          // too large and may not be given up: held, nothing after it is committed
  kDisable,       // retrying cannot fix it: stop the mapping, commit nothing of this batch
};

struct Step {
  Next next = Next::kSend;
  FailureClass failure = FailureClass::kFunctionError; // of the failed attempt, if any
  bool too_large = false;                              // one record that can never be invoked
  std::chrono::milliseconds delay{0};                  // kRetry: retry_at - now
  std::shared_ptr<const Batch> split;                  // kBisect: the piece that was split
  // A partial failure (ReportBatchItemFailures): the records that succeeded left the batch and
  // are committable now; the front piece is the rest.
  PartitionRanges succeeded;
  std::size_t succeeded_records = 0;
};

struct InFlightSettings {
  config::RetryConfig retry;
  bool has_destination = false;
  invoker::BackoffPolicy backoff;
  std::chrono::milliseconds function_timeout{0};
  std::size_t max_concurrent = 1; // maxConcurrentBatches, at least 1
};

// What a destination write came back with.
enum class DestinationWrite { kWritten, kRefused, kRetriable };

class InFlightMachine {
public:
  explicit InFlightMachine(InFlightSettings settings);

  // Batches that may be in flight now: maxConcurrentBatches, halved by each throttle and
  // raised by one after each success.
  std::size_t concurrencyLimit() const;

  // Before an attempt of the front piece (not of a destination write): a lone record whose
  // event alone passes the payload limit is never sent; records past maximumRecordAge are
  // given up unsent (AWS discards them). kSend, or what happened instead.
  Step beforeAttempt(InFlight& f, bool lone_record_too_large,
                     std::chrono::milliseconds oldest_record_age, Clock::time_point now) const;
  // An attempt (or destination write) of the front piece goes out now.
  void submitted(InFlight& f) const;
  // The attempt of the front piece came back. `oldest_record_age` matters only on failure (for
  // a partial failure: of the records to retry); `random01` in [0, 1) chooses the backoff
  // jitter. A partial failure commits the records before each partition's first failure
  // (Step::succeeded) and goes on with the rest: with bisectBatchOnFunctionError the rest is a
  // new piece with fresh attempts, sent at once (AWS bisects at the failure); else it is the
  // same piece's retry, counted, with backoff. A partial failure that succeeded nothing is a
  // function error of the whole piece.
  Step afterAttempt(InFlight& f, const invoker::InvokeResult& result,
                    std::chrono::milliseconds oldest_record_age, Clock::time_point now,
                    double random01);
  // The write of the front piece to the onFailure destination came back.
  Step afterDestinationWrite(InFlight& f, DestinationWrite written, Clock::time_point now,
                             double random01) const;

  struct PieceDone {
    PartitionRanges ranges;  // the piece's: committable now
    bool batch_done = false; // no piece left: the whole cut (`covered`) is committable
  };
  // The front piece succeeded or was dealt with: it leaves the batch; the next starts afresh.
  PieceDone pieceDone(InFlight& f, Clock::time_point now) const;

private:
  Step tooLarge(InFlight& f, std::chrono::milliseconds oldest_record_age,
                Clock::time_point now) const;
  Step giveUp(InFlight& f, Clock::time_point now) const;
  void bisect(InFlight& f, Clock::time_point now) const;

  InFlightSettings settings_;
  std::size_t limit_;
};

} // namespace kesm::poller
