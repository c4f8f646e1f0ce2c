#pragma once

// What workers tell their mapping's controller directly (not through metrics): a fatal error,
// and how long their invocations took (capacity comes from it, scaler/decision.h). Both are
// called from worker threads: thread-safe and never blocking.

#include <cstdint>
#include <mutex>
#include <string>

namespace kesm::scaler {

// Receives an error retrying cannot fix (the function answered 404/401/403, the cluster
// refused access, the onFailure topic refused records for good); the mapping is to be
// disabled. `reason` is for the log and /status, never a secret.
class FatalSink {
public:
  virtual ~FatalSink() = default;
  virtual void reportFatal(const std::string& reason) = 0;
};

// Finished invocation attempts since start, all workers of a mapping.
struct InvocationTotals {
  std::int64_t count = 0;
  double seconds = 0; // their summed duration
};

class InvocationStats {
public:
  virtual ~InvocationStats() = default;
  virtual InvocationTotals invocationTotals() const = 0;
};

// In-process workers add each attempt here; the controller reads the totals.
class InvocationTally final : public InvocationStats {
public:
  void add(double seconds) {
    std::lock_guard lock(mutex_);
    totals_.count++;
    totals_.seconds += seconds;
  }
  InvocationTotals invocationTotals() const override {
    std::lock_guard lock(mutex_);
    return totals_;
  }

private:
  mutable std::mutex mutex_;
  InvocationTotals totals_;
};

} // namespace kesm::scaler
