#pragma once

// Runs one invocation attempt at a time on its own thread, so that the poller thread keeps
// serving the consumer (heartbeats, rebalances) while a slow function runs. Owned by one
// poller thread, which submits and takes; the worker's own thread runs the attempt and calls
// `wake` when it ends. Destroying it joins that thread: bounded, as an attempt ends at the
// latest at the function timeout.

#include "common/types.h"
#include "invoker/invoker.h"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace kesm::poller {

class InvokeWorker {
public:
  struct Outcome {
    invoker::InvokeResult result;
    std::chrono::duration<double> elapsed{}; // seconds the attempt took
  };

  // `clock` outlives the worker.
  InvokeWorker(std::unique_ptr<invoker::FunctionInvoker> invoker, std::function<void()> wake,
               const Clock& clock);
  ~InvokeWorker();
  InvokeWorker(const InvokeWorker&) = delete;
  InvokeWorker& operator=(const InvokeWorker&) = delete;

  void submit(std::shared_ptr<const Batch> batch);
  // Any other blocking step of a batch (the write to the on-failure destination).
  void submitTask(std::function<invoker::InvokeResult()> task);

  bool busy() const;
  // The finished attempt's outcome, once.
  std::optional<Outcome> take();
  // Waits until the current attempt has finished or the deadline passes.
  std::optional<Outcome> waitFor(Clock::time_point deadline);
  // The result of the attempt now running will be dropped (its batch was abandoned).
  void discardCurrent();

private:
  struct Job {
    std::shared_ptr<const Batch> batch;
    std::function<invoker::InvokeResult()> task;
  };

  void submitJob(Job job);
  void run();

  std::unique_ptr<invoker::FunctionInvoker> invoker_;
  std::function<void()> wake_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<Job> job_;
  std::optional<Outcome> result_;
  bool busy_ = false;
  bool discard_ = false;
  bool stop_ = false;
  std::thread thread_; // last: started once the members above exist
};

} // namespace kesm::poller
