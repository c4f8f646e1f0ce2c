// The batches in flight of one poller: cut, attempt, settle, give up, commit. The decisions
// are InFlightMachine's (poller/in_flight.h); this file does what they say: send, log,
// count, note in /status, commit.

#include "common/log.h"
#include "common/resources.h"
#include "poller/poller_impl.h"

#include <algorithm>
#include <limits>

namespace kesm::poller {

namespace {

// How a write to the onFailure topic comes back through the invoke worker.
constexpr auto kDestinationRetriable = invoker::InvokeOutcome::kConnectionError;
constexpr auto kDestinationRefused = invoker::InvokeOutcome::kHttpError;

} // namespace

std::set<TopicPartition> Poller::Impl::busyPartitions() const {
  std::set<TopicPartition> busy;
  for (const auto& f : in_flight_) {
    for (const auto& [tp, range] : f.ranges) {
      busy.insert(tp);
    }
  }
  return busy;
}

// A worker no batch in flight holds and with no abandoned attempt still running on it;
// created on demand, so a poller that never runs batches concurrently has one.
InvokeWorker* Poller::Impl::freeWorker() {
  for (const auto& w : workers_) {
    bool held = std::any_of(in_flight_.begin(), in_flight_.end(),
                            [&](const Slot& f) { return f.worker == w.get(); });
    if (!held && !w->busy()) {
      return w.get();
    }
  }
  // Abandoned attempts can keep workers busy until the function timeout: bounded still.
  if (workers_.size() >= 2 * maxConcurrent()) {
    return nullptr;
  }
  try {
    workers_.push_back(std::make_unique<InvokeWorker>(
        ctx_.make_invoker(), [this] { wake(); }, clock_));
  } catch (const std::system_error& e) {
    if (workers_.empty()) {
      throw ResourceError("cannot start the invoke worker of poller " + ctx_.client_id + ": " +
                          e.code().message() + " (" + describeResources() + ")");
    }
    // Out of threads: the batch waits for a worker this poller already has.
    if (!worker_refused_) {
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": cannot start another invoke worker (",
          e.code().message(), "); batches wait for the ", workers_.size(), " it has");
    }
    worker_refused_ = true;
    return nullptr;
  }
  worker_refused_ = false;
  return workers_.back().get();
}

void Poller::Impl::submitAttempt(Slot& f) {
  machine_.submitted(f);
  if (f.to_destination) {
    auto piece = f.pieces.front();
    FailureInfo info{ctx_.mapping.name, f.attempts, f.last_error, epochMillisNow()};
    auto sink = ctx_.dead_letters;
    f.worker->submitTask([sink, piece, info] {
      WriteResult written = sink->write(*piece, info);
      invoker::InvokeResult result;
      if (!written.ok()) {
        result.outcome =
            written.status == WriteStatus::kRefused ? kDestinationRefused : kDestinationRetriable;
        result.detail = written.error;
      }
      return result;
    });
    return;
  }
  const Batch& piece = f.piece();
  ctx_.probe->events_invoked.Increment(static_cast<double>(piece.records.size()));
  if (f.attempts == 1) {
    ctx_.probe->batch_records.Observe(static_cast<double>(piece.records.size()));
    ctx_.probe->batch_bytes.Observe(static_cast<double>(piece.payload_bytes));
  }
  f.worker->submit(f.pieces.front());
}

void Poller::Impl::dispatch() {
  auto now = clock_.now();
  if (owner_.state_.load() != PollerState::kRunning || fatal_) {
    return;
  }
  if (hold_until_ && now < *hold_until_) {
    return;
  }
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (!it->running && !it->held && now >= it->retry_at && startAttempt(*it)) {
      it = in_flight_.erase(it);
    } else {
      ++it;
    }
  }
  while (in_flight_.size() < machine_.concurrencyLimit()) {
    auto busy = busyPartitions();
    if (!batcher_.ready(now, busy)) {
      return;
    }
    InvokeWorker* worker = freeWorker();
    if (worker == nullptr) {
      return;
    }
    Slot f;
    static_cast<InFlight&>(f) = openBatch(batcher_.cut(busy));
    if (f.filtered > 0) {
      ctx_.probe->events_filtered.Increment(static_cast<double>(f.filtered));
    }
    if (f.pieces.empty()) {
      // Every record matched no filter: committed, never sent.
      commits_.covered(f.covered, f.filtered);
      flushCommits();
      continue;
    }
    f.worker = worker;
    in_flight_.push_back(std::move(f));
    if (startAttempt(in_flight_.back())) {
      in_flight_.pop_back();
    }
  }
}

// True when the batch is finished (given up and committed) without an attempt.
bool Poller::Impl::startAttempt(Slot& f) {
  if (!f.to_destination) {
    const Batch& piece = f.piece();
    bool too_large = piece.records.size() == 1 && eventBytes(piece.records.front()) >
                                                      ctx_.mapping.batching.maximum_payload_bytes;
    // Only a bound (or a record too large) needs the ages: no scan on the usual path.
    auto age =
        too_large || ctx_.mapping.retry.maximum_record_age ? oldestAge(piece) : milliseconds(0);
    Step step = machine_.beforeAttempt(f, too_large, age, clock_.now());
    if (step.next != Next::kSend) {
      return follow(f, step, "");
    }
  }
  submitAttempt(f);
  return false;
}

// The exact size of the event holding only this record.
std::size_t Poller::Impl::eventBytes(const Record& r) const {
  return sizer_.envelope_bytes + sizer_.partition_bytes(TopicPartition{r.topic, r.partition}) +
         sizer_.record_bytes(r);
}

void Poller::Impl::note(const InFlight& f, const std::string& text) {
  if (ctx_.notes) {
    for (const auto& [tp, range] : f.ranges) {
      ctx_.notes->set(tp, text);
    }
  }
}

void Poller::Impl::clearNotes(const PartitionRanges& ranges) {
  if (ctx_.notes) {
    for (const auto& [tp, range] : ranges) {
      ctx_.notes->clear(tp);
    }
  }
}

// Takes finished attempts' results: commit on success, schedule a retry else.
void Poller::Impl::settleAttempts() {
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    std::optional<InvokeWorker::Outcome> outcome;
    if (it->running) {
      outcome = it->worker->take();
    }
    if (outcome && settle(*it, *outcome)) {
      it = in_flight_.erase(it);
    } else {
      ++it;
    }
  }
}

// True when every piece of the batch is settled and committed (the caller forgets it).
bool Poller::Impl::settle(Slot& f, const InvokeWorker::Outcome& outcome) {
  const auto& result = outcome.result;
  if (f.to_destination) {
    return settleDestinationWrite(f, result);
  }
  ctx_.probe->invocations(result.outcome).Increment();
  ctx_.probe->invocation_duration.Observe(outcome.elapsed.count());
  if (ctx_.invocations) {
    ctx_.invocations->add(outcome.elapsed.count());
  }
  const std::size_t sent = f.piece().records.size();
  auto age = milliseconds(0);
  if (result.outcome == invoker::InvokeOutcome::kPartialFailure) {
    age = oldestAge(splitAtFailures(f.piece(), result.item_failures).remainder);
  } else if (!result.ok()) {
    age = oldestAge(f.piece());
  }
  Step step = machine_.afterAttempt(f, result, age, clock_.now(), random01_());
  // After a partial failure the front piece holds only the records that failed.
  const std::size_t n = sent - step.succeeded_records;
  if (!result.ok()) {
    ctx_.probe->events_failed.Increment(static_cast<double>(n));
  }
  if (step.succeeded_records > 0) {
    clearNotes(step.succeeded);
    commits_.succeeded(step.succeeded);
    log(LogLevel::kInfo, "poller", ctx_.client_id, ": ", step.succeeded_records, " of ", sent,
        " records succeeded (", describe(step.succeeded), "); ", n, " reported failed, to retry (",
        describe(rangesOf(f.piece())), ")");
    flushCommits();
  }
  if (!result.ok() && step.failure == FailureClass::kThrottled) {
    ctx_.probe->invocations_throttled.Increment();
  }
  switch (step.next) {
  case Next::kDisable:
    reportFatal("the function answered HTTP " + std::to_string(result.http_status) + " (" +
                result.detail + "): retrying cannot fix it");
    return false; // kept uncommitted; abandoned when the poller stops
  case Next::kRetry:
    if (f.attempts == 0) {
      return false; // the rest of a partial failure, a new piece: said above
    }
    note(f, "retrying since attempt 1 failed; attempt " + std::to_string(f.attempts) + ": " +
                f.last_error);
    // The first failure and then every tenth, so a long outage does not flood the log.
    if (f.attempts == 1 || f.attempts % 10 == 0) {
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": batch of ", n, " records (",
          describe(rangesOf(f.piece())), ") failed attempt ", f.attempts, ": ", f.last_error,
          "; retrying in ", step.delay.count(), " ms");
    }
    return false;
  default:
    return follow(f, step, result.detail);
  }
}

// Does what a step other than kSend, kRetry (of an attempt) and kDisable (of an attempt) says.
// `too_large_answer`: the function's answer when it refused a record as too large.
bool Poller::Impl::follow(Slot& f, const Step& step, const std::string& too_large_answer) {
  if (step.too_large) {
    const Record& r = f.piece().records.front();
    ctx_.probe->records_oversized.Increment();
    f.last_error = too_large_answer.empty()
                       ? "record too large: its event is " + std::to_string(eventBytes(r)) +
                             " bytes, above the " +
                             std::to_string(ctx_.mapping.batching.maximum_payload_bytes) +
                             "-byte invocation payload limit; never sent"
                       : "the function refuses this record as too large (" + too_large_answer + ")";
    log(LogLevel::kError, "poller", ctx_.client_id, ": ", r.topic, "-", r.partition.value(), "@",
        r.offset.value(), ": ", f.last_error);
  }
  switch (step.next) {
  case Next::kBisect: {
    const Batch& whole = *step.split;
    log(LogLevel::kWarn, "poller", ctx_.client_id, ": batch of ", whole.records.size(),
        " records (", describe(rangesOf(whole)), ") failed: ", f.last_error, "; bisecting into ",
        f.piece().records.size(), " + ", whole.records.size() - f.piece().records.size());
    ctx_.probe->batches_bisected.Increment();
    return false;
  }
  case Next::kHold:
    // Nothing can move this batch: no attempt, no commit past it, said in /status and the log.
    note(f, "HELD: " + f.last_error +
                "; nothing after it is committed. Set onFailure, maximumRetryAttempts or "
                "maximumRecordAge and restart");
    log(LogLevel::kError, "poller", ctx_.client_id, ": partition(s) ", describe(f.ranges),
        " HELD: ", f.last_error,
        "; set onFailure, maximumRetryAttempts or maximumRecordAge and restart kesm");
    return false;
  case Next::kToDestination:
    log(LogLevel::kWarn, "poller", ctx_.client_id, ": giving up ", f.piece().records.size(),
        " records (", describe(rangesOf(f.piece())), ") after ", f.attempts,
        " attempt(s): ", f.last_error, "; writing them to ",
        ctx_.mapping.on_failure.destination_topic);
    return false;
  case Next::kDrop:
    // Only possible when the user bounded the retries. Nothing is skipped silently.
    ctx_.probe->events_dropped.Increment(static_cast<double>(f.piece().records.size()));
    log(LogLevel::kError, "poller", ctx_.client_id, ": DROPPED ", f.piece().records.size(),
        " records (", describe(rangesOf(f.piece())), ") after ", f.attempts,
        " attempt(s): ", f.last_error, "; no onFailure destination is configured");
    return pieceSucceeded(f);
  case Next::kPieceDone:
    return pieceSucceeded(f);
  case Next::kSend:
  case Next::kRetry:
  case Next::kDisable:
    break;
  }
  return false;
}

// The front piece succeeded (or was given up and dealt with): commit it, go on to the next.
bool Poller::Impl::pieceSucceeded(Slot& f) {
  int attempts = f.attempts;
  auto done = machine_.pieceDone(f, clock_.now());
  clearNotes(done.ranges);
  commits_.succeeded(done.ranges);
  if (logEnabled(LogLevel::kDebug)) {
    log(LogLevel::kDebug, "poller", ctx_.client_id, ": succeeded ", describe(done.ranges),
        " after ", attempts, " attempt(s)");
  }
  if (done.batch_done) {
    commits_.covered(f.covered, f.filtered); // filtered records after the last one sent
  }
  flushCommits();
  return done.batch_done;
}

bool Poller::Impl::settleDestinationWrite(Slot& f, const invoker::InvokeResult& result) {
  const Batch& piece = f.piece();
  DestinationWrite written = result.ok()                             ? DestinationWrite::kWritten
                             : result.outcome == kDestinationRefused ? DestinationWrite::kRefused
                                                                     : DestinationWrite::kRetriable;
  double random01 = written == DestinationWrite::kRetriable ? random01_() : 0.0;
  if (!result.ok()) {
    ctx_.probe->on_failure_delivery_errors.Increment();
  }
  Step step = machine_.afterDestinationWrite(f, written, clock_.now(), random01);
  switch (step.next) {
  case Next::kPieceDone:
    ctx_.probe->events_on_failure_delivered.Increment(static_cast<double>(piece.records.size()));
    log(LogLevel::kWarn, "poller", ctx_.client_id, ": wrote ", piece.records.size(),
        " failed records (", describe(rangesOf(piece)), ") to ",
        ctx_.mapping.on_failure.destination_topic);
    return pieceSucceeded(f);
  case Next::kDisable:
    // Writing again cannot help, and skipping the records would lose them: stop the mapping
    // with the reason, commit nothing of the batch.
    reportFatal("the onFailure topic " + ctx_.mapping.on_failure.destination_topic +
                " refused records given up (" + describe(rangesOf(piece)) + "): " + result.detail);
    return false;
  default:
    break;
  }
  // The first failure and then every tenth, so a long outage does not flood the log.
  if (f.destination_attempts == 1 || f.destination_attempts % 10 == 0) {
    log(LogLevel::kWarn, "poller", ctx_.client_id, ": writing ", piece.records.size(),
        " failed records (", describe(rangesOf(piece)), ") to ",
        ctx_.mapping.on_failure.destination_topic, " failed, attempt ", f.destination_attempts,
        " (", result.detail, "); nothing is committed; retrying in ", step.delay.count(), " ms");
  }
  return false;
}

Poller::Impl::milliseconds Poller::Impl::oldestAge(const Batch& piece) {
  std::int64_t oldest = std::numeric_limits<std::int64_t>::max();
  for (const auto& r : piece.records) {
    if (r.timestamp_type != TimestampType::kNotAvailable && r.timestamp_ms > 0) {
      oldest = std::min(oldest, r.timestamp_ms);
    }
  }
  if (oldest == std::numeric_limits<std::int64_t>::max()) {
    return milliseconds(0);
  }
  return milliseconds(std::max<std::int64_t>(0, epochMillisNow() - oldest));
}

std::int64_t Poller::Impl::epochMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace kesm::poller
