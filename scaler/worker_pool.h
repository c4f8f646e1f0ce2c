#pragma once

// Where a mapping's workers (pollers) run: the seam between the controller, which asks for a
// count, and whatever runs them. One implementation today: threads of this process
// (poller/in_process_pool.h), chosen by app/runtime.cc. Nothing here names a poller type, so
// another backend (pods, say) can implement these three calls; its workers would also have to
// reach the controller's FatalSink and InvocationStats (scaler/signals.h) from afar.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace kesm::scaler {

enum class WorkerState {
  kStarting, // spawned, waiting for its first assignment
  kRunning,  // in the group with an assignment
  kStopping, // retiring: finishing its batches in flight
  kStopped,  // gone
};

// "starting", "running", "stopping", "stopped": the words /status shows.
const char* toString(WorkerState state);

struct WorkerInfo {
  std::string id;
  WorkerState state = WorkerState::kStarting;
  std::size_t partitions = 0; // assigned now
};

struct PoolStatus {
  int active = 0;   // starting or running: counts toward the desired number
  int running = 0;  // in the group with an assignment
  int stopping = 0; // retiring, finishing their batch in flight
  // Why the last worker could not be started (no thread or descriptor left); empty once one
  // started again. The pool holds at the workers it has meanwhile. Pods
  // (k8s/statefulset_pool.h): why the last write of the replica count failed.
  std::string spawn_error;
  std::vector<WorkerInfo> pollers; // the active ones, oldest first, then the retiring ones
};

// What scaleTo() reached.
struct ScaleResult {
  int active = 0;    // workers now counted toward the desired number
  std::string error; // why fewer than asked are active; empty when the count was reached
  bool ok() const { return error.empty(); }
};

// Implementations are thread-safe.
class WorkerPool {
public:
  virtual ~WorkerPool() = default;
  // Spawns or retires workers until `desired` are active; 0 retires them all (a disabled
  // mapping) and the pool stays usable. Does not block on a retire. When no worker can be
  // started (no thread or descriptor left) it holds at what runs, logs that once per episode
  // and says so in the result and in status().spawn_error; it never throws for that.
  virtual ScaleResult scaleTo(int desired) = 0;
  virtual PoolStatus status() = 0;
  // Stopping the process: retires every worker and waits for them, up to `timeout`. True
  // when all stopped in time. Called once, last. `grace`, when given and shorter than the
  // mapping's grace period, is the time workers get to finish their batches instead (a
  // leader whose Lease ran out must be gone before a standby starts).
  bool shutdown(std::chrono::milliseconds timeout) { return shutdown(timeout, std::nullopt); }
  virtual bool shutdown(std::chrono::milliseconds timeout,
                        std::optional<std::chrono::milliseconds> grace) = 0;
};

} // namespace kesm::scaler
