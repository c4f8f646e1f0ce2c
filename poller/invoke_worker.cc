#include "poller/invoke_worker.h"

namespace kesm::poller {

InvokeWorker::InvokeWorker(std::unique_ptr<invoker::FunctionInvoker> invoker,
                           std::function<void()> wake, const Clock& clock)
    : invoker_(std::move(invoker)), wake_(std::move(wake)), clock_(clock),
      thread_([this] { run(); }) {}

InvokeWorker::~InvokeWorker() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  // Bounded: an attempt in flight ends at the latest at the function timeout.
  thread_.join();
}

void InvokeWorker::submit(std::shared_ptr<const Batch> batch) {
  submitJob(Job{std::move(batch), {}});
}

void InvokeWorker::submitTask(std::function<invoker::InvokeResult()> task) {
  submitJob(Job{nullptr, std::move(task)});
}

bool InvokeWorker::busy() const {
  std::lock_guard lock(mutex_);
  return busy_;
}

std::optional<InvokeWorker::Outcome> InvokeWorker::take() {
  std::lock_guard lock(mutex_);
  auto out = std::move(result_);
  result_.reset();
  return out;
}

std::optional<InvokeWorker::Outcome> InvokeWorker::waitFor(Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  cv_.wait_until(lock, deadline, [this] { return !busy_; });
  auto out = std::move(result_);
  result_.reset();
  return out;
}

void InvokeWorker::discardCurrent() {
  std::lock_guard lock(mutex_);
  discard_ = busy_;
  result_.reset();
}

void InvokeWorker::submitJob(Job job) {
  {
    std::lock_guard lock(mutex_);
    job_ = std::move(job);
    busy_ = true;
    result_.reset();
  }
  cv_.notify_all();
}

void InvokeWorker::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || job_.has_value(); });
    if (stop_) {
      return;
    }
    Job job = std::move(*job_);
    job_.reset();
    lock.unlock();
    auto started = clock_.now();
    invoker::InvokeResult result = job.task ? job.task() : invoker_->invoke(*job.batch);
    auto elapsed = clock_.now() - started;
    lock.lock();
    if (!discard_) {
      result_ = Outcome{std::move(result), elapsed};
    }
    discard_ = false;
    busy_ = false;
    cv_.notify_all();
    if (wake_) {
      wake_();
    }
  }
}

} // namespace kesm::poller
