#include "poller/in_process_pool.h"

#include "common/log.h"
#include "common/resources.h"

#include <algorithm>

namespace kesm::poller {

namespace {

scaler::WorkerState workerState(PollerState state) {
  switch (state) {
  case PollerState::kStarting:
    return scaler::WorkerState::kStarting;
  case PollerState::kRunning:
    return scaler::WorkerState::kRunning;
  case PollerState::kStopping:
    return scaler::WorkerState::kStopping;
  case PollerState::kStopped:
    return scaler::WorkerState::kStopped;
  }
  return scaler::WorkerState::kStopped;
}

scaler::WorkerInfo infoOf(const Poller& p) {
  return scaler::WorkerInfo{p.clientId(), workerState(p.state()), p.assignedPartitions()};
}

} // namespace

InProcessWorkerPool::InProcessWorkerPool(PollerContext base) : base_(std::move(base)) {}

InProcessWorkerPool::~InProcessWorkerPool() {
  shutdown(base_.mapping.scaling.grace_period + base_.mapping.function.timeout);
}

scaler::ScaleResult InProcessWorkerPool::scaleTo(int desired) {
  std::lock_guard lock(mutex_);
  reapLocked();
  const int servers = static_cast<int>(base_.mapping.source.bootstrap_servers.size());
  scaler::ScaleResult result;
  while (static_cast<int>(active_.size()) < desired) {
    PollerContext ctx = base_;
    ctx.client_id = base_.client_id + "-" + std::to_string(next_id_++);
    try {
      // Room for the whole poller first: a Kafka client that cannot start a thread aborts.
      ensureHeadroom("poller " + ctx.client_id + " of mapping " + base_.mapping.name,
                     pollerThreads(servers), pollerDescriptors(servers));
      auto p = std::make_unique<Poller>(std::move(ctx));
      p->start();
      active_.push_back(std::move(p));
    } catch (const std::exception& e) {
      spawnFailedLocked(e.what());
      result.error = e.what();
      break;
    }
    if (!spawn_error_.empty()) {
      log(LogLevel::kInfo, "pool", base_.mapping.name, ": pollers start again (", active_.size(),
          " active)");
      spawn_error_.clear();
    }
  }
  // Retire the newest first: long-lived members keep their partitions and warm connections.
  while (static_cast<int>(active_.size()) > desired && !active_.empty()) {
    active_.back()->requestStop();
    retiring_.push_back(std::move(active_.back()));
    active_.pop_back();
  }
  result.active = static_cast<int>(active_.size());
  return result;
}

void InProcessWorkerPool::spawnFailedLocked(const std::string& reason) {
  if (base_.probe != nullptr) {
    base_.probe->poller_spawn_failures.Increment();
  }
  // Once per episode: the controller asks again every evaluation.
  if (spawn_error_.empty()) {
    log(LogLevel::kError, "pool", base_.mapping.name, ": holding at ", active_.size(),
        " poller(s): ", reason);
  }
  spawn_error_ = reason;
}

void InProcessWorkerPool::reapLocked() {
  std::erase_if(retiring_, [](const std::unique_ptr<Poller>& p) {
    return p->state() == PollerState::kStopped;
  });
  // A poller whose thread ended on its own (e.g. a fatal consumer error) is replaced.
  std::erase_if(active_, [](const std::unique_ptr<Poller>& p) {
    return p->state() == PollerState::kStopped;
  });
}

scaler::PoolStatus InProcessWorkerPool::status() {
  std::lock_guard lock(mutex_);
  reapLocked();
  scaler::PoolStatus s;
  s.spawn_error = spawn_error_;
  for (const auto& p : active_) {
    s.active++;
    if (p->state() == PollerState::kRunning) {
      s.running++;
    }
    s.pollers.push_back(infoOf(*p));
  }
  for (const auto& p : retiring_) {
    s.stopping++;
    s.pollers.push_back(infoOf(*p));
  }
  return s;
}

bool InProcessWorkerPool::shutdown(std::chrono::milliseconds timeout,
                                   std::optional<std::chrono::milliseconds> grace) {
  std::vector<std::unique_ptr<Poller>> all;
  {
    std::lock_guard lock(mutex_);
    for (auto& p : active_) {
      p->requestStop(grace);
      all.push_back(std::move(p));
    }
    for (auto& p : retiring_) {
      if (grace) {
        p->requestStop(grace); // already retiring: only shortens its grace
      }
      all.push_back(std::move(p));
    }
    active_.clear();
    retiring_.clear();
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool all_stopped = true;
  for (auto& p : all) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    all_stopped = p->waitStopped(std::max(left, std::chrono::milliseconds(0))) && all_stopped;
  }
  return all_stopped; // destructors of `all` join (bounded) here
}

std::unique_ptr<scaler::WorkerPool> makeInProcessWorkerPool(PollerContext base) {
  return std::make_unique<InProcessWorkerPool>(std::move(base));
}

} // namespace kesm::poller
