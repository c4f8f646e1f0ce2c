#pragma once

// One mapping's controller: every evaluation interval it probes the lag, publishes it, decides
// the worker count (scaler/decision.h) and asks the pool for it (scaler/worker_pool.h). It is
// the mapping's FatalSink: a fatal error from a worker, or a fatal lag probe seen twice in a
// row, disables the mapping, whose pool then scales to zero until kesm restarts.
//
// Built from interfaces only; app/runtime.cc wires the real parts (threads as workers, the
// Kafka lag probe), unit tests fakes (tests/fakes/scaler.h) and call evaluate() directly.

#include "config/config.h"
#include "metrics/metrics.h"
#include "scaler/controller_rules.h"
#include "scaler/decision.h"
#include "scaler/history.h"
#include "scaler/lag_source.h"
#include "scaler/signals.h"
#include "scaler/stall.h"
#include "scaler/worker_pool.h"

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace kesm::scaler {

struct ControllerParts {
  // Builds the mapping's pool, whose workers report fatal errors to the sink passed (the
  // controller). Called once, by the constructor.
  std::function<std::unique_ptr<WorkerPool>(FatalSink&)> make_pool;
  std::unique_ptr<LagSource> lag_source;
  std::shared_ptr<const InvocationStats> invocations; // the workers add to it
  // startingPosition LATEST: filled by start() from a first probe, before the first worker
  // starts; the workers and the lag source share it. May be null otherwise.
  std::shared_ptr<PartitionsAtStart> partitions_at_start;
  const Clock* clock = nullptr;           // outlives the controller
  metrics::Registry* registry = nullptr;  // outlives; the per-partition gauges
  metrics::MappingProbe* probe = nullptr; // outlives; the mapping's metrics
  // Where each evaluation leaves a sample and each change of the desired count its reason
  // (/status/history); may be null.
  std::shared_ptr<StatusHistory> history;
  // Pods mode (k8s/statefulset_pool.h): the workers are pods this controller does not run, so
  // readiness needs the lag only, and a first scaleTo() that fails holds (the pool retries it
  // at every evaluation) instead of failing start().
  bool remote_workers = false;
};

// What /status and the live line show of a mapping's control.
struct ControllerSnapshot {
  int desired = 0;
  PoolStatus pool;
  std::optional<LagSample> lag; // last good probe
  bool lag_stale = true;        // the last probe failed or none succeeded yet
  bool disabled = false;
  std::string disabled_reason;
  // For each partition of `lag`: since when it has lagged without commit progress; nullopt
  // when it does not.
  std::map<TopicPartition, std::optional<Clock::time_point>> stalled_since;
};

// Whether start() runs evaluate() on a thread of its own every evaluation interval.
enum class Runner { kThread, kNone };

// Public methods are thread-safe, except that evaluate() is called by one thread at a time:
// the runner's, or a test's when started with Runner::kNone.
class Controller final : public FatalSink {
public:
  Controller(config::Mapping mapping, ControllerParts parts);
  ~Controller() override; // stop()
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Sizes the pool to the minimum, or keeps the workers it already has when more, and starts
  // the runner. Throws ResourceError when the minimum or the runner cannot start: at startup
  // that ends kesm with the reason; later, a pool short of threads holds instead.
  void start(Runner runner = Runner::kThread);
  // One evaluation: probe, publish, decide, scale (or, once disabled, retire every worker).
  void evaluate();
  // Stops the runner promptly, then shuts the pool down within the grace period plus 10 s.
  // True when every worker stopped in time. `grace` shortens the workers' grace period (a
  // leader whose term ended: app/leadership.h).
  bool stop(std::optional<std::chrono::milliseconds> grace = std::nullopt);

  // Moves the mapping to Disabled: its workers retire (a poller that met the fatal error
  // commits nothing of its failing batch) and none is spawned until a restart. Does not
  // block: workers call it from their own thread.
  void disable(const std::string& reason);
  void reportFatal(const std::string& reason) override { disable(reason); }
  bool disabled() const;

  ControllerSnapshot snapshot();
  // Ready when disabled (reported in /status and metrics; the other mappings are served), or
  // when the lag is known and a worker runs.
  bool ready();
  const config::Mapping& mapping() const { return mapping_; }

private:
  void notePartitionsAtStart();
  void loop();
  // Returns whether the mapping was disabled when the evaluation began.
  bool evaluateOnce();
  void decide(bool disabled);
  ScaleResult setDesired(int desired);
  // A change of the desired count, for /status/history (no-op without a history).
  void noteChange(int from, int to, std::string reason, std::string detail);
  void noteSample(const std::optional<std::int64_t>& lag_total);

  const config::Mapping mapping_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<LagSource> lag_source_;
  std::shared_ptr<const InvocationStats> invocations_;
  std::shared_ptr<PartitionsAtStart> partitions_at_start_;
  std::shared_ptr<StatusHistory> history_;
  const Clock& clock_;
  const bool remote_workers_;
  metrics::Registry& registry_;
  metrics::MappingProbe& probe_;
  Scaler scaler_;
  FatalProbes fatal_probes_; // evaluating thread only
  bool retired_ = false;     // evaluating thread only: the pool was scaled to zero on disable

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool disabled_ = false;
  std::string disabled_reason_;
  int desired_ = 0;
  std::optional<LagSample> last_sample_;
  // (topic, partition) of every per-partition series this controller set: withdrawn at stop.
  std::set<std::pair<std::string, std::int32_t>> published_partitions_;
  bool lag_stale_ = true;
  StallTracker stall_; // under mutex_
  std::thread thread_;
};

} // namespace kesm::scaler
