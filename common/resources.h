#pragma once

// Threads and file descriptors: what this process uses, the limits on them, and starting a
// thread or a Kafka client so that running out is an error with a clear message, never an
// abort. librdkafka 2.0.2 asserts (aborts the process) when it cannot create a thread while
// a client is being created, so kesm checks there is room first (ensureHeadroom) and creates
// its clients one at a time (kafkaClientCreation): no other client of kesm takes the room
// between the check and the creation. docs/operations.md, "Resources", has the figures.

#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

namespace kesm {

// A thread or descriptor could not be had. what(): "cannot start WHAT: REASON (USAGE)".
class ResourceError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct ResourceUsage {
  int threads = 0;     // /proc/self/task
  int descriptors = 0; // /proc/self/fd
};
ResourceUsage currentUsage();

// The limits that bound this process; nullopt where there is none.
struct ResourceLimits {
  // The smallest of RLIMIT_NPROC (per user; root is exempt), kernel.threads-max (system
  // wide) and the cgroup's pids.max; `threads_from` names which.
  std::optional<long> threads;
  std::string threads_from;
  std::optional<long> descriptors; // RLIMIT_NOFILE, soft
};
ResourceLimits currentLimits();

// "412 threads and 980 descriptors in use; limits: threads 4096 (RLIMIT_NPROC, per user),
// descriptors 1024 (RLIMIT_NOFILE)", for error messages.
std::string describeResources();

// Throws ResourceError naming `what` unless `threads` more threads can be started now (they
// are started, and end at once) and `descriptors` more descriptors fit under RLIMIT_NOFILE.
void ensureHeadroom(const std::string& what, int threads, int descriptors);

// Held while a Kafka client is checked for and created (see the top of this file).
std::mutex& kafkaClientCreation();

// ensureHeadroom for a Kafka client about to be created, under kafkaClientCreation(). A
// client keeps starting threads after its creation (one per broker it learns of), so room is
// also kept for that growth of every client created in the last few seconds: a client made
// right after others must not take the threads they are about to start (librdkafka aborts
// the one that cannot start its thread).
void ensureKafkaClientHeadroom(const std::string& what, int bootstrap_servers);

// Every Kafka client of kesm is made here: under kafkaClientCreation(), after
// ensureKafkaClientHeadroom, `create()` makes it and its result is returned. When there is no
// room, `refused()` frees what `create` would have taken over (its settings), and the
// ResourceError goes on to the caller.
template <class Create, class Refused>
auto createKafkaClient(const std::string& what, int bootstrap_servers, Create&& create,
                       Refused&& refused) {
  std::lock_guard creating(kafkaClientCreation());
  try {
    ensureKafkaClientHeadroom(what, bootstrap_servers);
  } catch (const ResourceError&) {
    refused();
    throw;
  }
  return create();
}

// Threads librdkafka 2.0.2 creates for one client, with room for the brokers it learns of
// later: its main thread, the internal broker, the group coordinator, and one thread per
// bootstrap server and per broker (taken as many as the bootstrap servers).
constexpr int kafkaClientThreads(int bootstrap_servers) { return 3 + 2 * bootstrap_servers; }

// What one poller needs, measured on the mock cluster (docs/operations.md, "Resources"): its
// own thread, an invoke worker and its Kafka client; its descriptors with one broker are 13,
// and two more for each further broker.
constexpr int pollerThreads(int bootstrap_servers) {
  return 2 + kafkaClientThreads(bootstrap_servers);
}
constexpr int pollerDescriptors(int bootstrap_servers) { return 11 + 2 * bootstrap_servers; }

// std::thread(f), or ResourceError "cannot start WHAT: Resource temporarily unavailable
// (USAGE)" when the system refuses the thread.
template <class F> std::thread startThread(const std::string& what, F&& f) {
  try {
    return std::thread(std::forward<F>(f));
  } catch (const std::system_error& e) {
    throw ResourceError("cannot start " + what + ": " + e.code().message() + " (" +
                        describeResources() + ")");
  }
}

} // namespace kesm
