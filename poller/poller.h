#pragma once

// One poller: a Kafka consumer in the mapping's group, its batcher, up to
// maxConcurrentBatches batches in flight (on partitions no two share), commit after success.
// The poller does not know how many pollers exist. Its parts: the loop (poller.cc), batches
// in flight (poller_batches.cc, decided by poller/in_flight.h), commits and rebalances
// (poller_rebalance.cc, bookkept by poller/commit_tracker.h), the invoke workers
// (poller/invoke_worker.h) and the wake-up fd (poller/wake_fd.h).

#include "common/types.h"
#include "config/config.h"
#include "invoker/invoker.h"
#include "kafka/kafka.h"
#include "metrics/metrics.h"
#include "poller/dead_letter.h"
#include "poller/invoker_factory.h"
#include "scaler/signals.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kesm::poller {

enum class PollerState {
  kStarting, // consumer created, waiting for its first assignment
  kRunning,  // in the group, fetching and invoking
  kStopping, // retiring: no more fetching, finishing the batch in flight
  kStopped,  // left the group; thread finished
};

const char* toString(PollerState state);

// What pollers say of partitions they cannot move past (a batch retried, a record too large
// held): read by /status. Thread-safe; shared by a mapping's pollers.
class PartitionNotes {
public:
  void set(const TopicPartition& tp, std::string note);
  void clear(const TopicPartition& tp);
  std::map<TopicPartition, std::string> snapshot() const;

private:
  mutable std::mutex mutex_;
  std::map<TopicPartition, std::string> notes_;
};

struct PollerContext {
  config::Mapping mapping;
  InvokerFactory make_invoker;
  metrics::MappingProbe* probe = nullptr; // outlives the poller
  std::string client_id;                  // e.g. "kesm-orders-3"
  // Static group membership (KIP-345): the consumer's group.instance.id, e.g. the pod name in
  // pods mode. Empty: a dynamic member (what `kesm run` uses).
  std::string group_instance_id;
  // Where given-up batches go; null when the mapping has no onFailure destination.
  std::shared_ptr<DeadLetterSink> dead_letters;
  std::shared_ptr<PartitionNotes> notes; // may be null
  // Told on the poller's thread when it meets a fatal error (scaler/signals.h). The poller
  // then sends nothing more and commits nothing of the failing batch; the caller stops it.
  // May be null; outlives the poller.
  scaler::FatalSink* fatal = nullptr;
  // Each finished invocation attempt's duration is added here; may be null.
  std::shared_ptr<scaler::InvocationTally> invocations;
  // startingPosition LATEST: where partitions the group never committed start. Null: at
  // their end.
  std::shared_ptr<const PartitionsAtStart> partitions_at_start;
  // Time for timers, retries and attempt durations; null: the steady clock. Outlives the
  // poller.
  const Clock* clock = nullptr;
  // Uniform in [0, 1), for backoff jitter; called on the poller thread. Null: a generator
  // seeded at random.
  std::function<double()> random01;
};

// The event's shape for this mapping's function (function.nullValues).
invoker::EventFormat eventFormat(const config::Mapping& mapping);

// What every poller of `mapping` shares, in `kesm run` and `kesm poller` alike: the mapping,
// its HTTP invoker and, with an onFailure destination, its dead-letter producer. The caller
// adds the probe, ids, sinks and tallies.
PollerContext basePollerContext(const config::Mapping& mapping);

// Owns one thread, which alone owns the consumer. Public methods are thread-safe.
class Poller {
public:
  explicit Poller(PollerContext context);
  ~Poller(); // requestStop() and waits up to the grace period plus the function timeout
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  void start();
  // Retire: stop fetching, finish (or, past the grace period, abandon without committing)
  // the batch in flight, commit, and leave the group. Does not block. `grace` shortens the
  // mapping's grace period for this stop (also when the retire has begun already).
  void requestStop(std::optional<std::chrono::milliseconds> grace = std::nullopt);
  // Waits until the thread has finished, up to the deadline. True when stopped.
  bool waitStopped(std::chrono::milliseconds timeout);

  PollerState state() const { return state_.load(); }
  std::size_t assignedPartitions() const { return assigned_.load(); }
  const std::string& clientId() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<PollerState> state_{PollerState::kStarting};
  std::atomic<std::size_t> assigned_{0};
};

} // namespace kesm::poller
