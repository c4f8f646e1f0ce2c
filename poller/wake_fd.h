#pragma once

// The poller thread sleeps on one eventfd, signalled by librdkafka (consumer and partition
// queues) and by other threads (invocation finished, stop requested). signal() is
// thread-safe; wait() is called by the owning poller thread only.

#include <chrono>
#include <cstdint>

namespace kesm::poller {

class WakeFd {
public:
  // What librdkafka writes to the fd when a queue becomes non-empty: an eventfd takes
  // exactly one 8-byte counter increment per write.
  static const std::uint64_t kWakeValue;

  WakeFd(); // throws ResourceError when no eventfd can be had
  ~WakeFd();
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;

  int get() const { return fd_; }
  void signal();
  // Waits until signalled or the timeout passes, and resets the signal.
  void wait(std::chrono::milliseconds timeout);

private:
  int fd_;
};

} // namespace kesm::poller
