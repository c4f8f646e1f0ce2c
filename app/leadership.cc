#include "app/leadership.h"

#include "common/log.h"
#include "common/resources.h"
#include "k8s/in_cluster.h"

#include <algorithm>
#include <cstdlib>
#include <unistd.h>

namespace kesm::app {

using std::chrono::milliseconds;

std::string electionIdentity() {
  if (const char* pod = std::getenv("POD_NAME"); pod != nullptr && *pod != '\0') {
    return pod;
  }
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof host, "kesm");
  }
  return std::string(host) + "-" + std::to_string(getpid());
}

std::unique_ptr<k8s::LeaseStore> leaseStoreFor(const config::Config& config,
                                               std::string& off_reason) {
  const auto& le = config.leader_election;
  using Mode = config::LeaderElectionConfig::Mode;
  if (le.enabled == Mode::kOff) {
    off_reason = "leaderElection.enabled: false";
    return nullptr;
  }
  std::string why;
  auto cluster = k8s::detectInCluster(
      [](const std::string& name) -> std::optional<std::string> {
        const char* v = std::getenv(name.c_str());
        return v ? std::optional<std::string>(v) : std::nullopt;
      },
      why);
  if (!cluster) {
    if (le.enabled == Mode::kOn) {
      const auto& at = le.at;
      throw config::ConfigError(
          {config::Diagnostic{config.file, at.line, at.column, "leaderElection.enabled",
                              "is true, but kesm does not run in a Kubernetes pod (" + why +
                                  "); set it to auto to run without leader election outside "
                                  "Kubernetes"}});
    }
    off_reason = "not in a Kubernetes pod: " + why;
    return nullptr;
  }
  const std::string ns = le.ns.empty() ? cluster->ns : le.ns;
  // Every call ends well within the renew deadline, so a leader notices its end in time.
  const auto timeout = std::clamp(std::min(le.retry_period, le.renew_deadline / 3),
                                  milliseconds(500), milliseconds(5000));
  return k8s::makeApiLeaseStore(*cluster, ns, le.lease_name, timeout);
}

namespace {

k8s::ElectionTimings timingsOf(const config::LeaderElectionConfig& c) {
  return {c.lease_duration, c.renew_deadline, c.retry_period};
}

} // namespace

Leadership::Leadership(std::unique_ptr<k8s::LeaseStore> store, std::string identity,
                       const config::LeaderElectionConfig& config, const Clock& clock,
                       metrics::Registry& registry, std::function<void()> on_change)
    : store_(std::move(store)), config_(config), clock_(clock),
      metrics_(registry.leaderMetrics(store_->describe())), on_change_(std::move(on_change)),
      elector_(*store_, std::move(identity), timingsOf(config), clock),
      random_(std::random_device{}()) {
  metrics_.leader.Set(0);
}

Leadership::~Leadership() { stopAndRelease(); }

void Leadership::start() {
  log(LogLevel::kInfo, "leader", "leader election on: Lease ", store_->describe(), " as ",
      elector_.status().identity, " (lease ", config_.lease_duration.count() / 1000,
      " s, renew deadline ", config_.renew_deadline.count(), " ms, retry ",
      config_.retry_period.count(), " ms)");
  thread_ = startThread("the leader election", [this] { loop(); });
}

void Leadership::loop() {
  std::uniform_real_distribution<double> jitter(0.0, 0.2);
  std::unique_lock lock(mutex_);
  while (!stop_) {
    lock.unlock();
    const auto before = elector_.status();
    const auto role = elector_.step();
    const auto after = elector_.status();
    metrics_.leader.Set(role == k8s::Role::kLeader ? 1 : 0);
    metrics_.transitions.Increment(static_cast<double>(after.transitions - before.transitions));
    metrics_.lease_errors.Increment(static_cast<double>(after.lease_errors - before.lease_errors));
    if (!after.last_error.empty() && after.last_error != before.last_error) {
      log(LogLevel::kWarn, "leader", "Lease ", after.lease, ": ", after.last_error);
    }
    on_change_();
    // A standby waits a little longer, at random, so standbys do not all write at once.
    auto wait = config_.retry_period;
    if (role == k8s::Role::kStandby) {
      wait += milliseconds(static_cast<long>(config_.retry_period.count() * jitter(random_)));
    }
    lock.lock();
    cv_.wait_for(lock, wait, [this] { return stop_; });
  }
}

void Leadership::stopAndRelease() {
  {
    std::lock_guard lock(mutex_);
    if (stop_) {
      return;
    }
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  elector_.release();
  metrics_.leader.Set(0);
}

k8s::ElectionStatus Leadership::status() const { return elector_.status(); }

bool Leadership::leading(Clock::time_point now) const {
  const auto s = elector_.status();
  return s.role == k8s::Role::kLeader && s.valid_until && now < *s.valid_until;
}

milliseconds Leadership::stopBudget() const {
  const auto gap = config_.lease_duration - config_.renew_deadline;
  return std::max(milliseconds(0), gap - std::min(gap / 4, milliseconds(1000)));
}

} // namespace kesm::app
