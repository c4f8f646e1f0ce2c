#pragma once

// A gate test handlers wait on (with a deadline) until the test opens it. Thread-safe.

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace kesm::test {

class Gate {
public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // True when opened within the limit.
  bool waitFor(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, limit, [this] { return open_; });
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

} // namespace kesm::test
