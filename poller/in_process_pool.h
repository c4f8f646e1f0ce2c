#pragma once

// The in-process implementation of the controller's seam (scaler/worker_pool.h): each worker
// is a Poller, a thread of this process.

#include "poller/poller.h"
#include "scaler/worker_pool.h"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kesm::poller {

// Pollers as threads of this process. Thread-safe. Its destructor shuts down what is left,
// bounded by the grace period plus the function timeout.
class InProcessWorkerPool final : public scaler::WorkerPool {
public:
  // `base` is copied into every poller; its client_id is used as a prefix.
  explicit InProcessWorkerPool(PollerContext base);
  ~InProcessWorkerPool() override;

  scaler::ScaleResult scaleTo(int desired) override;
  scaler::PoolStatus status() override;
  using scaler::WorkerPool::shutdown;
  bool shutdown(std::chrono::milliseconds timeout,
                std::optional<std::chrono::milliseconds> grace) override;

private:
  void reapLocked();
  void spawnFailedLocked(const std::string& reason);

  PollerContext base_;
  std::mutex mutex_;
  int next_id_ = 1;
  std::string spawn_error_;
  std::vector<std::unique_ptr<Poller>> active_;   // oldest first
  std::vector<std::unique_ptr<Poller>> retiring_; // stop requested
};

// The factory the runtime wires a mapping with.
std::unique_ptr<scaler::WorkerPool> makeInProcessWorkerPool(PollerContext base);

} // namespace kesm::poller
