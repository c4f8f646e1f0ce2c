#pragma once

// Where pollers run. The controller asks for a count; the pool spawns or retires pollers.
// In-process threads today; a Kubernetes scale-subresource backend fits the same seam.

#include "poller/poller.h"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kesm::scaler {

struct PollerInfo {
  std::string id;
  poller::PollerState state;
  std::size_t partitions = 0;
};

struct PoolStatus {
  int active = 0;   // starting or running: counts toward the desired number
  int running = 0;  // in the group with an assignment
  int stopping = 0; // retiring, finishing their batch in flight
  // Why the last poller could not be started (no thread or descriptor left); empty once one
  // started again. The pool holds at the pollers it has meanwhile.
  std::string spawn_error;
  std::vector<PollerInfo> pollers;
};

class WorkerPool {
public:
  virtual ~WorkerPool() = default;
  // Spawns or retires pollers until `desired` are active. Does not block on a retire. When
  // the process has no thread or descriptor for another poller it stops there, logs it once
  // and reports it in status().spawn_error; it never throws for that.
  virtual void scaleTo(int desired) = 0;
  virtual PoolStatus status() = 0;
  // Retires every poller and waits for them, up to the timeout. True when all stopped.
  virtual bool stopAll(std::chrono::milliseconds timeout) = 0;
};

// Pollers as threads of this process. Thread-safe.
class InProcessWorkerPool final : public WorkerPool {
public:
  // `base` is copied into every poller; its client_id is used as a prefix.
  explicit InProcessWorkerPool(poller::PollerContext base);
  ~InProcessWorkerPool() override;

  void scaleTo(int desired) override;
  PoolStatus status() override;
  bool stopAll(std::chrono::milliseconds timeout) override;

private:
  void reapLocked();
  void spawnFailedLocked(const std::string& reason);

  poller::PollerContext base_;
  std::mutex mutex_;
  int next_id_ = 1;
  std::string spawn_error_;
  std::vector<std::unique_ptr<poller::Poller>> active_;   // oldest first
  std::vector<std::unique_ptr<poller::Poller>> retiring_; // stop requested
};

} // namespace kesm::scaler
