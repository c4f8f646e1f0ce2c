#pragma once

// Whether this replica holds the Lease, decided one step at a time as client-go's
// leaderelection does. A Lease held by another replica is taken over only once this replica
// has seen it unchanged (same resourceVersion) for the lease duration on its own clock, so
// the replicas' clocks need not agree. A leader that has not renewed for the renew deadline
// is no longer leader: it stops its pollers before any standby may take over
// (leaseDuration > renewDeadline). Writes carry the resourceVersion read, so two replicas
// never both win one round.

#include "common/types.h"
#include "k8s/lease.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace kesm::k8s {

struct ElectionTimings {
  std::chrono::milliseconds lease_duration{15000}; // whole seconds
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
};

enum class Role { kStandby, kLeader };

struct ElectionStatus {
  Role role = Role::kStandby;
  std::string identity;
  std::string lease;  // "namespace/name"
  std::string holder; // as last read; empty: free or unknown
  // Leader: its term ends (pollers stop) at this time unless renewed before.
  std::optional<Clock::time_point> valid_until;
  std::string last_error;         // the last failed step; empty after a good one
  std::uint64_t transitions = 0;  // times this replica became leader
  std::uint64_t lease_errors = 0; // failed Lease calls
};

// step() and release() are called by one thread (the election's); status() by any.
class LeaderElector {
public:
  using WallClock = std::function<std::chrono::system_clock::time_point()>;

  // `store` and `clock` outlive the elector.
  LeaderElector(
      LeaseStore& store, std::string identity, ElectionTimings timings, const Clock& clock,
      WallClock wall = [] { return std::chrono::system_clock::now(); });

  // One try to acquire the Lease (standby) or renew it (leader); the role after it.
  Role step();
  // Gives the Lease up when this replica holds it (holder emptied, duration 1 s), so a
  // standby takes over at its next try instead of after the lease duration. Call after the
  // pollers stopped. Not leader afterwards.
  void release();
  ElectionStatus status() const;

private:
  // True when this replica holds the Lease after the call.
  bool tryAcquireOrRenew(Clock::time_point now);
  void observe(const LeaseRecord& lease, Clock::time_point now);
  void fail(const std::string& what);

  LeaseStore& store_;
  const std::string identity_;
  const ElectionTimings timings_;
  const Clock& clock_;
  const WallClock wall_;

  // The election thread's view.
  std::optional<LeaseRecord> observed_;
  Clock::time_point observed_at_{};
  bool taken_by_other_ = false; // this step found the Lease held, unexpired, by another

  mutable std::mutex mutex_;
  ElectionStatus status_; // under mutex_
};

} // namespace kesm::k8s
