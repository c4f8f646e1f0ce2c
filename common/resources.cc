#include "common/resources.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <dirent.h>
#include <fstream>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace kesm {

namespace {

// The entries of a /proc directory; `own` is subtracted (opendir's own descriptor).
int entries(const char* dir, int own) {
  DIR* d = ::opendir(dir);
  if (d == nullptr) {
    return 0; // no descriptor left to read the directory: the caller will find out
  }
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    n += e->d_name[0] != '.';
  }
  ::closedir(d);
  return n - own;
}

std::optional<long> readNumber(const char* path) {
  std::ifstream in(path);
  long value = 0;
  if (in >> value && value > 0) {
    return value;
  }
  return std::nullopt; // absent, or "max"
}

} // namespace

ResourceUsage currentUsage() {
  return ResourceUsage{entries("/proc/self/task", 0), entries("/proc/self/fd", 1)};
}

ResourceLimits currentLimits() {
  ResourceLimits limits;
  auto consider = [&](std::optional<long> value, const char* name) {
    if (value && (!limits.threads || *value < *limits.threads)) {
      limits.threads = value;
      limits.threads_from = name;
    }
  };
  rlimit nproc{};
  if (::geteuid() != 0 && ::getrlimit(RLIMIT_NPROC, &nproc) == 0 &&
      nproc.rlim_cur != RLIM_INFINITY) {
    consider(static_cast<long>(nproc.rlim_cur), "RLIMIT_NPROC, per user");
  }
  consider(readNumber("/proc/sys/kernel/threads-max"), "kernel.threads-max, system wide");
  consider(readNumber("/sys/fs/cgroup/pids.max"), "cgroup pids.max");
  consider(readNumber("/sys/fs/cgroup/pids/pids.max"), "cgroup pids.max");
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
    limits.descriptors = static_cast<long>(nofile.rlim_cur);
  }
  return limits;
}

std::string describeResources() {
  ResourceUsage usage = currentUsage();
  ResourceLimits limits = currentLimits();
  std::string out = std::to_string(usage.threads) + " threads and " +
                    std::to_string(usage.descriptors) + " descriptors in use; limits: threads ";
  out += limits.threads ? std::to_string(*limits.threads) + " (" + limits.threads_from + ")"
                        : std::string("none");
  out += ", descriptors ";
  out += limits.descriptors ? std::to_string(*limits.descriptors) + " (RLIMIT_NOFILE)"
                            : std::string("none");
  return out;
}

void ensureHeadroom(const std::string& what, int threads, int descriptors) {
  ResourceLimits limits = currentLimits();
  if (limits.descriptors && currentUsage().descriptors + descriptors > *limits.descriptors) {
    throw ResourceError("cannot start " + what + ": it needs about " + std::to_string(descriptors) +
                        " more file descriptors (" + describeResources() + ")");
  }
  // The threads are started for real: only the system knows whether it will give them.
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::thread> started;
  started.reserve(static_cast<std::size_t>(threads));
  std::string refused;
  for (int i = 0; i < threads; ++i) {
    try {
      started.emplace_back([&] {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return release; });
      });
    } catch (const std::system_error& e) {
      refused = e.code().message();
      break;
    }
  }
  // Measured while they all run, for the message.
  std::string usage = refused.empty() ? "" : describeResources();
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_all();
  for (auto& t : started) {
    t.join();
  }
  if (!refused.empty()) {
    throw ResourceError("cannot start " + what + ": " + refused + " (it needs " +
                        std::to_string(threads) + " threads, the system gave " +
                        std::to_string(started.size()) + "; " + usage + ")");
  }
}

namespace {
struct RecentClient {
  std::chrono::steady_clock::time_point created;
  int growth; // threads it may still start
};
std::deque<RecentClient>& recentClients() { // under kafkaClientCreation()
  static std::deque<RecentClient> clients;
  return clients;
}
} // namespace

void ensureKafkaClientHeadroom(const std::string& what, int bootstrap_servers) {
  const auto now = std::chrono::steady_clock::now();
  auto& recent = recentClients();
  // Brokers are learned from the first metadata answer: milliseconds on a healthy cluster.
  while (!recent.empty() && now - recent.front().created > std::chrono::seconds(10)) {
    recent.pop_front();
  }
  int growth = 0;
  for (const auto& c : recent) {
    growth += c.growth;
  }
  ensureHeadroom(what, kafkaClientThreads(bootstrap_servers) + growth, 0);
  // Its broker threads start as it learns the cluster (kafkaClientThreads counts them).
  recent.push_back({now, 1 + bootstrap_servers});
}

std::mutex& kafkaClientCreation() {
  static std::mutex mutex;
  return mutex;
}

} // namespace kesm
