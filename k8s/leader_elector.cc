#include "k8s/leader_elector.h"

#include "common/log.h"

namespace kesm::k8s {

using std::chrono::milliseconds;
using std::chrono::seconds;

LeaderElector::LeaderElector(LeaseStore& store, std::string identity, ElectionTimings timings,
                             const Clock& clock, WallClock wall)
    : store_(store), identity_(std::move(identity)), timings_(timings), clock_(clock),
      wall_(std::move(wall)) {
  status_.identity = identity_;
  status_.lease = store_.describe();
}

Role LeaderElector::step() {
  const auto now = clock_.now();
  taken_by_other_ = false;
  const bool held = tryAcquireOrRenew(now);
  std::lock_guard lock(mutex_);
  if (held) {
    status_.last_error.clear();
    if (status_.role != Role::kLeader) {
      status_.role = Role::kLeader;
      ++status_.transitions;
      log(LogLevel::kInfo, "leader", identity_, " now holds the Lease ", status_.lease);
    }
    // Counted from before the write: the server stored it no earlier, so no standby can have
    // seen it before either.
    status_.valid_until = now + timings_.renew_deadline;
  } else if (status_.role == Role::kLeader) {
    if (taken_by_other_ || clock_.now() >= *status_.valid_until) {
      status_.role = Role::kStandby;
      status_.valid_until.reset();
      log(LogLevel::kWarn, "leader", identity_, " lost the Lease ", status_.lease, ": ",
          taken_by_other_ ? "held by " + status_.holder
                          : "not renewed within the renew deadline (" + status_.last_error + ")");
    }
  }
  return status_.role;
}

bool LeaderElector::tryAcquireOrRenew(Clock::time_point now) {
  const auto wall = formatMicroTime(wall_());
  LeaseRecord desired;
  desired.holder = identity_;
  desired.lease_duration_seconds =
      static_cast<int>(std::chrono::duration_cast<seconds>(timings_.lease_duration).count());
  desired.acquire_time = wall;
  desired.renew_time = wall;

  LeaseResult got = store_.get();
  if (got.outcome == LeaseOutcome::kNotFound) {
    LeaseResult created = store_.create(desired);
    if (created.outcome != LeaseOutcome::kOk || !created.lease) {
      fail("create: " + created.message);
      return false;
    }
    observe(*created.lease, now);
    return true;
  }
  if (got.outcome != LeaseOutcome::kOk || !got.lease) {
    fail("get: " + got.message);
    return false;
  }
  const LeaseRecord& current = *got.lease;
  observe(current, now);
  const auto held_for = current.lease_duration_seconds > 0
                            ? milliseconds(seconds(current.lease_duration_seconds))
                            : timings_.lease_duration;
  if (!current.holder.empty() && current.holder != identity_ && now < observed_at_ + held_for) {
    taken_by_other_ = true;
    std::lock_guard lock(mutex_);
    status_.last_error.clear(); // standing by is no error
    return false;
  }
  desired.resource_version = current.resource_version;
  if (current.holder == identity_) {
    desired.acquire_time = current.acquire_time;
    desired.lease_transitions = current.lease_transitions;
  } else {
    desired.lease_transitions = current.lease_transitions + 1;
  }
  LeaseResult updated = store_.update(desired);
  if (updated.outcome != LeaseOutcome::kOk || !updated.lease) {
    fail("update: " + updated.message);
    return false;
  }
  observe(*updated.lease, now);
  return true;
}

void LeaderElector::observe(const LeaseRecord& lease, Clock::time_point now) {
  // Only a change restarts the wait: a holder that stopped renewing leaves it unchanged.
  if (!observed_ || observed_->resource_version != lease.resource_version) {
    observed_ = lease;
    observed_at_ = now;
  }
  std::lock_guard lock(mutex_);
  status_.holder = lease.holder;
}

void LeaderElector::fail(const std::string& what) {
  std::lock_guard lock(mutex_);
  status_.last_error = what;
  ++status_.lease_errors;
}

void LeaderElector::release() {
  {
    std::lock_guard lock(mutex_);
    if (status_.role != Role::kLeader) {
      return;
    }
    status_.role = Role::kStandby;
    status_.valid_until.reset();
  }
  LeaseResult got = store_.get();
  if (got.outcome != LeaseOutcome::kOk || !got.lease || got.lease->holder != identity_) {
    return; // gone or taken: nothing of ours to give up
  }
  LeaseRecord released = *got.lease;
  released.holder.clear();
  released.lease_duration_seconds = 1;
  released.renew_time = formatMicroTime(wall_());
  LeaseResult updated = store_.update(released);
  if (updated.outcome == LeaseOutcome::kOk) {
    log(LogLevel::kInfo, "leader", identity_, " released the Lease ", status_.lease);
  } else {
    log(LogLevel::kWarn, "leader", identity_, " could not release the Lease ", status_.lease, " (",
        updated.message, "): a standby takes over when it expires");
  }
}

ElectionStatus LeaderElector::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

} // namespace kesm::k8s
