#include "poller/wake_fd.h"

#include "common/resources.h"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <string>
#include <sys/eventfd.h>
#include <unistd.h>

namespace kesm::poller {

const std::uint64_t WakeFd::kWakeValue = 1;

WakeFd::WakeFd() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) {
    throw ResourceError(std::string("cannot create a poller's eventfd: ") + std::strerror(errno) +
                        " (" + describeResources() + ")");
  }
}

WakeFd::~WakeFd() { close(fd_); }

void WakeFd::signal() {
  std::uint64_t one = 1;
  (void)!write(fd_, &one, sizeof one);
}

void WakeFd::wait(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) > 0) {
    std::uint64_t value = 0;
    (void)!read(fd_, &value, sizeof value);
  }
}

} // namespace kesm::poller
