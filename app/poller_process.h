#pragma once

// `kesm poller`: the process of one poller pod in pods mode (docs/kubernetes.md). It runs a
// fixed number of pollers of one mapping — the same Poller as `kesm run` — and serves their
// metrics, /healthz, /readyz and /status. No controller, no lag probe, no scaling: in pods
// mode `kesm controller` decides how many such processes run.

#include "config/config.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kesm::app {

// Bounds of --pollers: a pod with more pollers than this is a `kesm run` in disguise.
inline constexpr int kMinPodPollers = 1;
inline constexpr int kMaxPodPollers = 64;

struct PollerProcessOptions {
  std::string mapping; // the mapping's name in the config
  int pollers = 1;
  // The pod's name: the pollers' client ids are kesm-<mapping>-<instanceIds(instance_id)>;
  // empty: kesm-<mapping>-<pid>-<i>.
  std::string instance_id;
  // Static group membership (KIP-345): the pollers' group.instance.id are
  // instanceIds(instance_id, pollers). Needs an instance_id. Off: dynamic members.
  bool static_membership = false;
  std::string listen; // overrides server.listen when not empty
};

// The group.instance.id of each poller: `id` alone for one poller, else id-0 .. id-(n-1).
std::vector<std::string> instanceIds(const std::string& id, int pollers);

// Owned by the main thread; start() and stop() from it. ready() and statusJson() are called
// on the metrics server's thread. start() throws on a startup failure (unknown mapping, port
// in use, bad setting).
class PollerProcess {
public:
  PollerProcess(config::Config config, PollerProcessOptions options);
  ~PollerProcess();
  PollerProcess(const PollerProcess&) = delete;
  PollerProcess& operator=(const PollerProcess&) = delete;

  void start();
  // SIGTERM: every poller stops fetching, finishes (or past the mapping's grace period
  // abandons) its batches in flight, commits and leaves the group. True when all stopped in
  // time.
  bool stop();

  // Every poller has joined the group (had its first assignment, possibly empty: a pod with
  // more pollers than partitions is ready), or the mapping is disabled (reported, not retried).
  bool ready();
  std::string statusJson();
  std::uint16_t metricsPort() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace kesm::app
