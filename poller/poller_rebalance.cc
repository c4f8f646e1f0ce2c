// One poller's commits, rebalances and start positions: the librdkafka side of
// CommitTracker (poller/commit_tracker.h), of partition ownership and of startingPosition.
//
// A succeeded batch only advances its partitions' commit point; the commit itself is sent
// asynchronously, at most one request in flight per poller, coalescing every partition
// that advanced meanwhile. The poller thread never waits on the coordinator, so the next
// batch goes out while the previous one is being committed (a synchronous commit per batch
// cost a broker round trip and an fsync of the offsets topic before every dispatch).
// Order holds: one request at a time, and a partition's batches succeed in order. Before
// partitions move (revoke, close) the request in flight is awaited and the rest committed
// synchronously, so the next owner starts exactly after the last success.

#include "common/log.h"
#include "kafka/kafka.h"
#include "poller/poller_impl.h"

namespace kesm::poller {

namespace {

rd_kafka_topic_partition_list_t* toList(const CommitRequest& request) {
  auto* list = rd_kafka_topic_partition_list_new(static_cast<int>(request.offsets.size()));
  for (const auto& o : request.offsets) {
    rd_kafka_topic_partition_list_add(list, o.tp.topic.c_str(), o.tp.partition.value())->offset =
        o.next.value();
  }
  return list;
}

bool isRebalanceError(rd_kafka_resp_err_t code) {
  return code == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
         code == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
         code == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID;
}

} // namespace

void Poller::Impl::flushCommits() {
  if (pending_commit_ || clock_.now() < commit_retry_at_) {
    return;
  }
  CommitRequest request = commits_.take();
  if (request.empty()) {
    return;
  }
  rd_kafka_topic_partition_list_t* list = toList(request);
  rd_kafka_resp_err_t err =
      rd_kafka_commit_queue(consumer_->c_ptr(), list, commit_queue_, nullptr, nullptr);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    settleCommit(request, err, list); // not sent: counts as a failed request
  } else {
    pending_commit_ = std::move(request);
  }
  rd_kafka_topic_partition_list_destroy(list);
}

// Serves commit results; blocks up to `timeout` for the one in flight (0: does not block).
void Poller::Impl::serveCommitQueue(milliseconds timeout) {
  while (pending_commit_) {
    rd_kafka_event_t* ev = rd_kafka_queue_poll(commit_queue_, static_cast<int>(timeout.count()));
    if (ev == nullptr) {
      return;
    }
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
      CommitRequest request = std::move(*pending_commit_);
      pending_commit_.reset();
      settleCommit(request, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev));
    }
    rd_kafka_event_destroy(ev);
  }
}

void Poller::Impl::settleCommit(const CommitRequest& request, rd_kafka_resp_err_t err,
                                const rd_kafka_topic_partition_list_t* result) {
  bool ok = err == RD_KAFKA_RESP_ERR_NO_ERROR;
  bool rebalancing = isRebalanceError(err);
  std::vector<CommitAnswer> answers;
  for (int i = 0; result != nullptr && i < result->cnt; ++i) {
    const auto& e = result->elems[i];
    bool accepted = err == RD_KAFKA_RESP_ERR_NO_ERROR && e.err == RD_KAFKA_RESP_ERR_NO_ERROR;
    answers.push_back(
        CommitAnswer{TopicPartition{e.topic, Partition{e.partition}}, Offset{e.offset}, accepted});
    if (!accepted) {
      ok = false;
      rebalancing = rebalancing || isRebalanceError(e.err);
    }
  }
  ctx_.probe->events_committed.Increment(commits_.settle(request, answers));
  if (ok) {
    ctx_.probe->commits_ok.Increment();
    return;
  }
  // Not lost: the offsets stay due and go out with the next request, before the
  // partitions are revoked at the latest, or the records are delivered again.
  ctx_.probe->commits_failed.Increment();
  std::string why = err != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(err) : "";
  for (int i = 0; why.empty() && result != nullptr && i < result->cnt; ++i) {
    if (result->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      why = rd_kafka_err2str(result->elems[i].err);
    }
  }
  log(rebalancing ? LogLevel::kInfo : LogLevel::kWarn, "poller", ctx_.client_id, ": commit of ",
      result == nullptr ? 0 : result->cnt, " partition(s) failed (", why, "); retried");
  if (rebalancing) {
    // The group is rebalancing: every batch sent now would be committed after the
    // partitions moved, i.e. delivered twice. Wait for the rebalance (bounded).
    hold_until_ = clock_.now() + milliseconds(10000);
  } else {
    commit_retry_at_ = clock_.now() + milliseconds(500);
  }
}

// Inside a revoke (or close): waits for the request in flight, then commits what is still
// due for `revoked` synchronously. The member still belongs to its generation until it
// rejoins, so the coordinator accepts it even when the group is rebalancing.
void Poller::Impl::commitBeforeRevoke(const std::set<TopicPartition>& revoked) {
  auto wait_until = clock_.now() + milliseconds(5000);
  while (pending_commit_ && clock_.now() < wait_until) {
    serveCommitQueue(milliseconds(100));
  }
  CommitRequest sync = commits_.take(&revoked);
  if (sync.empty()) {
    return;
  }
  rd_kafka_topic_partition_list_t* list = toList(sync);
  rd_kafka_resp_err_t err = rd_kafka_commit(consumer_->c_ptr(), list, 0);
  hold_until_.reset(); // the partitions are moving now in any case
  settleCommit(sync, err, list);
  log(LogLevel::kInfo, "poller", ctx_.client_id, ": committed ", list->cnt,
      " partition(s) before they move: ", rd_kafka_err2str(err));
  rd_kafka_topic_partition_list_destroy(list);
}

// Gives up, without committing, every batch in flight that touches `revoked`. Retained
// partitions of those batches are rewound to the batch's first offset: nothing is skipped.
void Poller::Impl::abandon(const std::set<TopicPartition>& revoked) {
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (!touches(*it, revoked)) {
      ++it;
      continue;
    }
    ctx_.probe->batches_abandoned.Increment();
    log(LogLevel::kWarn, "poller", ctx_.client_id, ": abandoning batch ", describe(it->ranges),
        " after ", it->attempts, " attempt(s); it will be delivered again");
    if (it->running) {
      it->worker->discardCurrent();
    }
    clearNotes(it->ranges); // the next owner says its own
    for (const auto& [tp, range] : it->ranges) {
      if (!revoked.count(tp) && commits_.owns(tp)) {
        rewind(tp, range.first);
      }
    }
    it = in_flight_.erase(it);
  }
}

void Poller::Impl::rewind(const TopicPartition& tp, Offset to) {
  batcher_.drop(tp);
  next_expected_[tp] = to;
  std::unique_ptr<RdKafka::TopicPartition> p(
      RdKafka::TopicPartition::create(tp.topic, tp.partition.value(), to.value()));
  RdKafka::ErrorCode code = consumer_->seek(*p, 0);
  if (code != RdKafka::ERR_NO_ERROR) {
    log(LogLevel::kWarn, "poller", ctx_.client_id, ": rewind of ", tp.topic, "-",
        tp.partition.value(), " failed: ", RdKafka::err2str(code));
  }
}

// --- partition queues ------------------------------------------------------------------

// Gives each assigned partition its own queue, no longer forwarded to the consumer queue,
// before the assignment starts fetching into it.
void Poller::Impl::splitPartitionQueues(const std::set<TopicPartition>& tps) {
  for (const auto& tp : tps) {
    if (partition_queues_.count(tp)) {
      continue;
    }
    rd_kafka_queue_t* q =
        rd_kafka_queue_get_partition(consumer_->c_ptr(), tp.topic.c_str(), tp.partition.value());
    if (q == nullptr) {
      continue; // stays forwarded: its messages still arrive on the consumer queue
    }
    rd_kafka_queue_forward(q, nullptr);
    rd_kafka_queue_io_event_enable(q, wake_fd_.get(), &WakeFd::kWakeValue,
                                   sizeof WakeFd::kWakeValue);
    partition_queues_.emplace(tp, q);
  }
}

void Poller::Impl::releasePartitionQueues(const std::set<TopicPartition>& tps) {
  for (const auto& tp : tps) {
    auto it = partition_queues_.find(tp);
    if (it == partition_queues_.end()) {
      continue;
    }
    rd_kafka_queue_io_event_enable(it->second, -1, nullptr, 0);
    rd_kafka_queue_destroy(it->second);
    partition_queues_.erase(it);
  }
}

// --- rebalances (called on the poller thread, inside consume() or close()) ---------------

void Poller::Impl::rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                                std::vector<RdKafka::TopicPartition*>& partitions) {
  bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
  std::set<TopicPartition> changed;
  for (auto* p : partitions) {
    changed.insert(TopicPartition{p->topic(), Partition{p->partition()}});
  }
  hold_until_.reset();
  if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
    ctx_.probe->rebalances_assign.Increment();
    for (const auto& tp : changed) {
      commits_.assign(tp);
      next_expected_.erase(tp); // start from the group's committed offset
    }
    splitPartitionQueues(changed);
    if (ctx_.mapping.source.starting_position == config::StartingPosition::kAtTimestamp) {
      startAtTimestamp(consumer, partitions);
    } else if (ctx_.mapping.source.starting_position == config::StartingPosition::kLatest) {
      startLatest(consumer, partitions);
    }
    RdKafka::Error* error = nullptr;
    RdKafka::ErrorCode code = RdKafka::ERR_NO_ERROR;
    if (cooperative) {
      error = consumer->incremental_assign(partitions);
    } else {
      code = consumer->assign(partitions);
    }
    reportAssignError(error, code, "assign");
    if (owner_.state_.load() == PollerState::kStopping && !partitions.empty()) {
      consumer->pause(partitions);
    }
    had_assignment_ = true;
    owner_.assigned_ = commits_.owned().size();
    if (owner_.state_.load() == PollerState::kStarting) {
      owner_.state_ = PollerState::kRunning;
    }
    log(LogLevel::kInfo, "poller", ctx_.client_id, ": assigned ", changed.size(),
        " partition(s), owns ", commits_.owned().size());
    return;
  }
  // Revoke (or lost): settle the batch in flight before the partitions move, and commit
  // inside this callback — after unassign the commit would fail (librdkafka #4059).
  ctx_.probe->rebalances_revoke.Increment();
  if (touchesAny(changed)) {
    time_point deadline =
        owner_.state_.load() == PollerState::kStopping
            ? grace_deadline_
            : clock_.now() + std::min<milliseconds>(ctx_.mapping.scaling.grace_period,
                                                    ctx_.mapping.function.timeout);
    if (consumer->assignment_lost()) {
      deadline = clock_.now(); // lost partitions cannot be committed any more
    }
    finishRunningAttempts(changed, deadline);
    abandon(changed); // what did not finish, or failed
  }
  if (!consumer->assignment_lost()) {
    commitBeforeRevoke(changed);
  }
  for (const auto& tp : changed) {
    batcher_.drop(tp);
    commits_.revoke(tp);
    next_expected_.erase(tp);
  }
  RdKafka::Error* error = nullptr;
  RdKafka::ErrorCode code = RdKafka::ERR_NO_ERROR;
  if (cooperative) {
    error = consumer->incremental_unassign(partitions);
  } else {
    code = consumer->unassign();
  }
  reportAssignError(error, code, "unassign");
  releasePartitionQueues(changed);
  owner_.assigned_ = commits_.owned().size();
  log(LogLevel::kInfo, "poller", ctx_.client_id, ": revoked ", changed.size(),
      " partition(s), owns ", commits_.owned().size());
}

// The assigned partitions the group never committed; nullopt when that cannot be read.
std::optional<std::set<TopicPartition>>
Poller::Impl::uncommitted(RdKafka::KafkaConsumer* consumer,
                          const std::vector<RdKafka::TopicPartition*>& partitions) {
  std::vector<RdKafka::TopicPartition*> probe;
  for (auto* p : partitions) {
    probe.push_back(RdKafka::TopicPartition::create(p->topic(), p->partition()));
  }
  RdKafka::ErrorCode code = consumer->committed(probe, kStartLookupTimeoutMs);
  std::set<TopicPartition> out;
  for (auto* p : probe) {
    if (code == RdKafka::ERR_NO_ERROR && p->err() == RdKafka::ERR_NO_ERROR && p->offset() < 0) {
      out.insert(TopicPartition{p->topic(), Partition{p->partition()}});
    }
  }
  RdKafka::TopicPartition::destroy(probe);
  if (code != RdKafka::ERR_NO_ERROR) {
    log(LogLevel::kWarn, "poller", ctx_.client_id, ": reading committed offsets failed (",
        RdKafka::err2str(code), "); partitions without one start at the earliest record");
    return std::nullopt;
  }
  return out;
}

// AT_TIMESTAMP: partitions the group never committed start at the first record at or after
// the timestamp; the others resume from their committed offset, as in Lambda. On an error
// the offsets stay unset and auto.offset.reset (earliest) applies: nothing is skipped.
void Poller::Impl::startAtTimestamp(RdKafka::KafkaConsumer* consumer,
                                    std::vector<RdKafka::TopicPartition*>& partitions) {
  auto never_committed = uncommitted(consumer, partitions);
  if (!never_committed || never_committed->empty()) {
    return;
  }
  std::vector<RdKafka::TopicPartition*> fresh;
  for (const auto& tp : *never_committed) {
    fresh.push_back(RdKafka::TopicPartition::create(
        tp.topic, tp.partition.value(), ctx_.mapping.source.starting_position_timestamp_ms));
  }
  RdKafka::ErrorCode code = consumer->offsetsForTimes(fresh, kStartLookupTimeoutMs);
  for (auto* f : fresh) {
    if (code != RdKafka::ERR_NO_ERROR || f->err() != RdKafka::ERR_NO_ERROR) {
      continue;
    }
    for (auto* p : partitions) {
      if (p->topic() == f->topic() && p->partition() == f->partition()) {
        // -1: no record at or after the timestamp, so start at the end.
        p->set_offset(f->offset() >= 0 ? f->offset() : RdKafka::Topic::OFFSET_END);
      }
    }
  }
  if (code != RdKafka::ERR_NO_ERROR) {
    log(LogLevel::kWarn, "poller", ctx_.client_id, ": offsets for AT_TIMESTAMP failed (",
        RdKafka::err2str(code), "); partitions without one start at the earliest record");
  }
  RdKafka::TopicPartition::destroy(fresh);
}

// LATEST: a partition the group never committed starts at its end when it existed as the
// mapping started in this process, at its beginning when it was added since (it holds only
// records produced after the start, and waiting for the consumer to notice it would skip
// them). The offset chosen is committed with the next commit request, so a restart resumes
// there instead of skipping what was produced while kesm was down. On an error the offsets
// stay unset and auto.offset.reset (earliest) applies: nothing is skipped.
void Poller::Impl::startLatest(RdKafka::KafkaConsumer* consumer,
                               std::vector<RdKafka::TopicPartition*>& partitions) {
  auto never_committed = uncommitted(consumer, partitions);
  if (!never_committed || never_committed->empty()) {
    return;
  }
  const auto* at_start = ctx_.partitions_at_start.get();
  std::vector<RdKafka::TopicPartition*> fresh;
  for (const auto& tp : *never_committed) {
    bool added = at_start != nullptr && at_start->addedSince(tp);
    // ListOffsets by timestamp: -1 asks for the end, -2 for the beginning.
    fresh.push_back(RdKafka::TopicPartition::create(tp.topic, tp.partition.value(),
                                                    added ? RdKafka::Topic::OFFSET_BEGINNING
                                                          : RdKafka::Topic::OFFSET_END));
  }
  RdKafka::ErrorCode code = consumer->offsetsForTimes(fresh, kStartLookupTimeoutMs);
  for (auto* f : fresh) {
    TopicPartition tp{f->topic(), Partition{f->partition()}};
    bool added = at_start != nullptr && at_start->addedSince(tp);
    bool resolved =
        code == RdKafka::ERR_NO_ERROR && f->err() == RdKafka::ERR_NO_ERROR && f->offset() >= 0;
    for (auto* p : partitions) {
      if (p->topic() == f->topic() && p->partition() == f->partition()) {
        // Unresolved: the logical offset, which librdkafka resolves itself (not committed).
        p->set_offset(
            resolved ? f->offset()
                     : (added ? RdKafka::Topic::OFFSET_BEGINNING : RdKafka::Topic::OFFSET_END));
      }
    }
    if (resolved) {
      commits_.startAt(tp, Offset{f->offset()});
    }
    log(LogLevel::kInfo, "poller", ctx_.client_id, ": ", tp.topic, "-", tp.partition.value(),
        " has no committed offset; LATEST: starts at its ",
        added ? "beginning (added since the mapping started)" : "end",
        resolved ? ", offset " + std::to_string(f->offset()) : std::string(" (unresolved)"));
  }
  if (code != RdKafka::ERR_NO_ERROR) {
    log(LogLevel::kWarn, "poller", ctx_.client_id, ": resolving LATEST start offsets failed (",
        RdKafka::err2str(code), "); librdkafka resolves them");
  }
  RdKafka::TopicPartition::destroy(fresh);
}

// During a revoke only the attempts already running may finish; no new retries. Waiting
// on each in turn against one deadline waits for them concurrently.
void Poller::Impl::finishRunningAttempts(const std::set<TopicPartition>& tps, time_point deadline) {
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    std::optional<InvokeWorker::Outcome> outcome;
    if (it->running && touches(*it, tps)) {
      outcome = it->worker->waitFor(deadline);
    }
    if (outcome && settle(*it, *outcome)) {
      it = in_flight_.erase(it);
    } else {
      ++it;
    }
  }
}

bool Poller::Impl::touchesAny(const std::set<TopicPartition>& tps) const {
  return std::any_of(in_flight_.begin(), in_flight_.end(),
                     [&](const Slot& f) { return touches(f, tps); });
}

bool Poller::Impl::touches(const InFlight& f, const std::set<TopicPartition>& tps) {
  for (const auto& [tp, range] : f.ranges) {
    if (tps.count(tp)) {
      return true;
    }
  }
  return false;
}

void Poller::Impl::reportAssignError(RdKafka::Error* error, RdKafka::ErrorCode code,
                                     const char* what) {
  if (error != nullptr) {
    log(LogLevel::kWarn, "poller", ctx_.client_id, ": ", what, " failed: ", error->str());
    delete error;
  } else if (code != RdKafka::ERR_NO_ERROR) {
    log(LogLevel::kWarn, "poller", ctx_.client_id, ": ", what, " failed: ", RdKafka::err2str(code));
  }
}

void Poller::Impl::event_cb(RdKafka::Event& event) {
  switch (event.type()) {
  case RdKafka::Event::EVENT_ERROR:
    ctx_.probe->kafka_errors.Increment();
    if (kafka::isAccessRefused(event.err())) {
      accessRefused("the cluster refused access: " + event.str());
    }
    if (event.err() == RdKafka::ERR__ALL_BROKERS_DOWN || event.fatal()) {
      log(LogLevel::kError, "poller", ctx_.client_id, ": kafka: ", event.str());
    } else {
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": kafka: ", event.str());
    }
    break;
  case RdKafka::Event::EVENT_LOG:
    log(event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING ? LogLevel::kWarn
                                                                   : LogLevel::kDebug,
        "poller", ctx_.client_id, ": kafka ", event.fac(), ": ", event.str());
    break;
  default:
    break;
  }
}

} // namespace kesm::poller
