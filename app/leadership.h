#pragma once

// Leader election for `kesm run` (docs/kubernetes.md, "Leader election"): when it is on, only
// the replica holding the Lease runs pollers; the others serve /healthz, /metrics and /status
// and stand by. A thread steps the elector (k8s/leader_elector.h) every retry period and
// calls `on_change` after each step, so the Runtime can start or stop its pollers.

#include "config/config.h"
#include "k8s/leader_elector.h"
#include "metrics/metrics.h"

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>

namespace kesm::app {

// The Lease this replica competes for, or null when leader election is off: `enabled: false`,
// or `auto` outside a Kubernetes pod. `enabled: true` outside a pod throws
// a ConfigError pointing at the leaderElection section.
// `off_reason` says why it is off (for the log, once kesm starts).
std::unique_ptr<k8s::LeaseStore> leaseStoreFor(const config::Config& config,
                                               std::string& off_reason);

// This replica's name in the Lease: POD_NAME (the downward API) or, outside a pod,
// hostname-pid.
std::string electionIdentity();

class Leadership {
public:
  // `clock` and `registry` outlive it. on_change is called on the election thread, must not
  // block.
  Leadership(std::unique_ptr<k8s::LeaseStore> store, std::string identity,
             const config::LeaderElectionConfig& config, const Clock& clock,
             metrics::Registry& registry, std::function<void()> on_change);
  ~Leadership(); // stop()

  void start();
  // Ends the election thread, then gives the Lease up if held, so a standby takes over at
  // its next try. Call after this replica's pollers have stopped.
  void stopAndRelease();

  k8s::ElectionStatus status() const;
  // Whether this replica may run pollers now: it leads and its term has not passed the renew
  // deadline (checked against the clock, not only at the last step).
  bool leading(Clock::time_point now) const;
  // The time the pollers get to stop when the term ends: what is left of the lease duration
  // after the renew deadline, less a margin, so they are gone before a standby may start.
  std::chrono::milliseconds stopBudget() const;
  const config::LeaderElectionConfig& config() const { return config_; }

private:
  void loop();

  std::unique_ptr<k8s::LeaseStore> store_;
  const config::LeaderElectionConfig config_;
  const Clock& clock_;
  metrics::LeaderMetrics metrics_;
  std::function<void()> on_change_;
  k8s::LeaderElector elector_;
  std::mt19937 random_;

  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

} // namespace kesm::app
