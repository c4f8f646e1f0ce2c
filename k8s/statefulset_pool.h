#pragma once

// A mapping's pollers as the pods of one StatefulSet (pods mode): the controller's count
// becomes the StatefulSet's spec.replicas, written through the scale subresource
// (k8s/statefulset_scale.h). The pods run `kesm poller`; this pool only sizes them.
//
// The count is the controller's: scaleTo() compares what it is asked with the spec.replicas
// the API server last returned, never with what it was asked before, so a write that failed
// is sent again at the next scaleTo() (the controller calls it at every evaluation) even when
// the decision did not change, and a count changed by someone else is set back (and logged).
// A failure holds: nothing is written in its place, the pods keep running, the error is in
// ScaleResult::error and PoolStatus::spawn_error, logged once per episode.
//
// shutdown() leaves the replicas alone: a controller that stops, or loses its Lease, must not
// stop the pollers; the next leader seeds from the count that runs (docs/scaling.md rule 7).

#include "common/log.h"
#include "k8s/statefulset_scale.h"
#include "metrics/metrics.h"
#include "scaler/worker_pool.h"

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace kesm::k8s {

struct StatefulSetPoolOptions {
  std::string mapping; // for logs and the metrics' mapping label
  // A desired count above this (the mapping's maximumPollers; the config allows up to 2000)
  // or below 0 is refused and never written: kInvalid in the metrics.
  int max_replicas = 2000;
  // Pollers each pod runs (`kesm poller --pollers`): scaleTo(n) writes ceil(n / this) replicas
  // and status() counts pollers (replicas times this). 1..64.
  int pollers_per_pod = 1;
  metrics::ScaleProbe* probe = nullptr; // outlives the pool; null: no metrics
  // Where log lines go; empty: kesm::log(level, "pool", line). Never called under the lock
  // status() takes.
  std::function<void(LogLevel, const std::string&)> log;
};

// Thread-safe. scaleTo() and seed() block on the API server (a request, two and a read when
// a write meets a 409, each within the client's timeout) and run one at a time; status() and
// shutdown() never wait for them.
class StatefulSetPool final : public scaler::WorkerPool {
public:
  StatefulSetPool(std::unique_ptr<ScaleClient> client, StatefulSetPoolOptions options);

  // Reads the Scale so that status().active is the spec.replicas that runs: call it (until it
  // succeeds, or leadership is lost) before Controller::start, whose first decision starts
  // from status().active. Writes nothing. The error says why when the read failed.
  scaler::ScaleResult seed();

  // `desired` counts pollers: ceil(desired / pollers_per_pod) is the replica count. (Below,
  // "desired" is that count.) Writes `desired` as spec.replicas when it differs from the count last
  // read or written; otherwise re-reads the Scale (one GET) to refresh status() and to see a count
  // changed by someone else. Before any successful read it reads first and never writes blind.
  // active: spec.replicas as the API server last returned it.
  scaler::ScaleResult scaleTo(int desired) override;

  // Counts are pollers (replicas times pollers_per_pod); below, in replicas.
  // active: spec.replicas as last read or written; running: status.replicas up to that (pods
  // the StatefulSet controller created, not pods known to consume: the scale subresource
  // tells no more); stopping: status.replicas above it; pollers: one entry per ordinal
  // NAME-0, NAME-1, ... derived from those counts (highest ordinals start last and stop first),
  // partitions unknown (0). spawn_error: why the last write failed; empty once one succeeded.
  scaler::PoolStatus status() override;

  // Returns true at once; never writes. Later scaleTo() calls write nothing.
  using scaler::WorkerPool::shutdown;
  bool shutdown(std::chrono::milliseconds timeout,
                std::optional<std::chrono::milliseconds> grace) override;

  // The count held because the API server has not accepted it yet.
  std::optional<int> pendingWrite() const;

private:
  struct Read {
    bool ok = false;
    ScaleOutcome outcome = ScaleOutcome::kOther;
    std::string error;
  };
  Read readLocked(const char* why); // io_mutex_ held
  scaler::ScaleResult seedReplicas();
  scaler::ScaleResult scaleReplicas(int replicas);
  enum class Attempt {
    kSent,       // the write reached the API server and was refused or failed
    kReadFailed, // the read a first write needs failed: nothing was sent
    kRefused,    // out of range, refused before sending; not held
  };
  scaler::ScaleResult failWrite(int desired, ScaleOutcome outcome, const std::string& message,
                                Attempt attempt);
  void writeSucceeded(int desired, const ScaleCallResult& result);
  int activeNow() const;
  void emit(LogLevel level, const std::string& line);

  std::unique_ptr<ScaleClient> client_;
  StatefulSetPoolOptions options_;
  std::string statefulset_; // NAME, for the pods' names

  std::mutex io_mutex_; // one API call sequence at a time; never held by status()

  mutable std::mutex mutex_; // the state below
  std::optional<ScaleState> known_;
  std::optional<int> pending_;
  std::string write_error_;
  std::optional<ScaleOutcome> write_episode_; // the kind of the failing episode, for logs
  int failed_writes_ = 0;                     // in the current episode
  std::optional<ScaleOutcome> read_episode_;
  bool shut_down_ = false;
};

} // namespace kesm::k8s
