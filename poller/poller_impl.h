#pragma once

// Internal to poller/: the state of one poller and the steps of its loop. The loop and the
// lifecycle are in poller.cc, the batches in flight in poller_batches.cc, commits and
// rebalances in poller_rebalance.cc. Everything here runs on the poller's own thread except
// wake() and the stop flag.

#include "poller/batcher.h"
#include "poller/commit_tracker.h"
#include "poller/in_flight.h"
#include "poller/invoke_worker.h"
#include "poller/poller.h"
#include "poller/wake_fd.h"

#include <condition_variable>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>
#include <limits>
#include <list>
#include <optional>
#include <set>

namespace kesm::poller {

// How long a cooperative-sticky poller that never got an assignment waits for one before it
// closes (librdkafka 2.0.2 aborts on destroying it otherwise, #4312). Cooperative rebalances
// take up to ~33 s to settle on the mock cluster; 15 s once fell short in CI.
inline constexpr std::chrono::milliseconds kFirstAssignmentWait{45000};

struct Poller::Impl : public RdKafka::RebalanceCb, public RdKafka::EventCb {
  using time_point = Clock::time_point;
  using milliseconds = std::chrono::milliseconds;

  Impl(Poller& owner, PollerContext context);

  // --- the loop (poller.cc) -------------------------------------------------------------------
  void run();
  void runConsumer();
  void wake() { wake_fd_.signal(); } // from any thread
  void step();
  bool readableQueueLeft() const;
  void serveConsumerQueue();
  void intake();
  milliseconds pollTimeout(time_point now) const;
  std::size_t holdLimit() const;
  std::size_t holdBytesLimit() const;
  std::size_t maxConcurrent() const;
  void handleMessage(const rd_kafka_message_t& msg);
  void accessRefused(const std::string& reason);
  void reportFatal(const std::string& reason);
  void shutdown();
  void pauseAll();
  void destroyConsumer();
  PayloadSizer makeSizer() const;

  // --- batches in flight (poller_batches.cc) ----------------------------------------------
  // A batch in flight and the worker that keeps it (and so its HTTP connection) across
  // retries.
  struct Slot : InFlight {
    InvokeWorker* worker = nullptr;
  };
  std::set<TopicPartition> busyPartitions() const;
  InvokeWorker* freeWorker();
  void dispatch();
  bool startAttempt(Slot& f);
  void submitAttempt(Slot& f);
  std::size_t eventBytes(const Record& r) const;
  void settleAttempts();
  bool settle(Slot& f, const InvokeWorker::Outcome& outcome);
  bool settleDestinationWrite(Slot& f, const invoker::InvokeResult& result);
  bool follow(Slot& f, const Step& step, const std::string& too_large_answer);
  bool pieceSucceeded(Slot& f);
  void note(const InFlight& f, const std::string& text);
  void clearNotes(const PartitionRanges& ranges);
  static milliseconds oldestAge(const Batch& piece);
  static std::int64_t epochMillisNow();

  // --- commits, rebalances, start positions (poller_rebalance.cc) ---------------------------
  void flushCommits();
  void serveCommitQueue(milliseconds timeout);
  void settleCommit(const CommitRequest& request, rd_kafka_resp_err_t err,
                    const rd_kafka_topic_partition_list_t* result);
  void commitBeforeRevoke(const std::set<TopicPartition>& revoked);
  void abandon(const std::set<TopicPartition>& revoked);
  void rewind(const TopicPartition& tp, Offset to);
  void splitPartitionQueues(const std::set<TopicPartition>& tps);
  void releasePartitionQueues(const std::set<TopicPartition>& tps);
  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override;
  std::optional<std::set<TopicPartition>>
  uncommitted(RdKafka::KafkaConsumer* consumer,
              const std::vector<RdKafka::TopicPartition*>& partitions);
  void startAtTimestamp(RdKafka::KafkaConsumer* consumer,
                        std::vector<RdKafka::TopicPartition*>& partitions);
  void startLatest(RdKafka::KafkaConsumer* consumer,
                   std::vector<RdKafka::TopicPartition*>& partitions);
  void finishRunningAttempts(const std::set<TopicPartition>& tps, time_point deadline);
  bool touchesAny(const std::set<TopicPartition>& tps) const;
  static bool touches(const InFlight& f, const std::set<TopicPartition>& tps);
  void reportAssignError(RdKafka::Error* error, RdKafka::ErrorCode code, const char* what);
  void event_cb(RdKafka::Event& event) override;
  static constexpr int kStartLookupTimeoutMs = 10000;

  Poller& owner_;
  PollerContext ctx_;
  SteadyClock steady_clock_;
  const Clock& clock_;               // ctx_.clock, or steady_clock_
  std::function<double()> random01_; // ctx_.random01, or a generator seeded at random
  Batcher batcher_;
  PayloadSizer sizer_; // exact event sizes, for the one-record check
  InFlightMachine machine_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  WakeFd wake_fd_;
  rd_kafka_queue_t* consumer_queue_ = nullptr;
  std::map<TopicPartition, rd_kafka_queue_t*> partition_queues_;
  TopicPartition intake_cursor_{};
  std::vector<std::unique_ptr<InvokeWorker>> workers_;
  bool worker_refused_ = false; // the last worker could not be started (logged once)
  std::list<Slot> in_flight_;   // at most maxConcurrent(), in cut order
  std::map<TopicPartition, Offset> next_expected_;
  // The owned partitions and their commit points. A succeeded batch only advances its
  // partitions' commit points; the commit itself is sent asynchronously, at most one request
  // in flight per poller, coalescing every partition that advanced meanwhile.
  CommitTracker commits_;
  std::optional<CommitRequest> pending_commit_; // at most one commit request in flight
  rd_kafka_queue_t* commit_queue_ = nullptr;
  time_point commit_retry_at_{};         // after a failed commit
  std::optional<time_point> hold_until_; // no new batches: group rebalancing
  bool more_to_take_ = false;            // a partition queue holds records intake has room for
  bool had_assignment_ = false;
  bool fatal_ = false; // met an error retrying cannot fix: send nothing more
  AccessRefusalWindow access_refusals_;
  time_point grace_deadline_{};

  std::atomic<bool> stop_requested_{false};
  // The earliest end of a grace that requestStop shortened (the clock's ticks since its
  // epoch); read while stopping, so a shorter one that comes later still applies.
  static constexpr time_point::rep kNoGraceCap = std::numeric_limits<time_point::rep>::max();
  std::atomic<time_point::rep> grace_cap_until_{kNoGraceCap};
  std::mutex stopped_mutex_;
  std::condition_variable stopped_cv_;
  bool stopped_ = false;
  std::thread thread_;
};

} // namespace kesm::poller
