#pragma once

// Wires a Config into running parts: the metrics endpoint, and per mapping a worker pool,
// a lag probe and the controller loop that sets the poller count.

#include "config/config.h"
#include "k8s/in_cluster.h"
#include "k8s/lease.h"
#include "scaler/lag_source.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kesm::app {

// Pods mode (`kesm controller`, docs/kubernetes.md): every mapping's pollers are the pods of
// its StatefulSet (config: the mapping's pods section) in `ns` of `cluster`.
struct PodsTarget {
  k8s::InCluster cluster;
  std::string ns;
  std::chrono::milliseconds timeout{5000}; // each API request
};

struct RuntimeOptions {
  bool live_line = false; // print one status line per second on stdout
  // Mappings that start Disabled (by name), with the reason, e.g. a failed preflight.
  std::map<std::string, std::string> disabled_at_start;
  // Leader election (app/leadership.h): the Lease this replica competes for and its name in
  // it; null: off, the pollers start at once.
  std::unique_ptr<k8s::LeaseStore> lease_store;
  std::string identity;
  // Pods mode: the controller sizes StatefulSets instead of running pollers; nullopt: pollers
  // are threads of this process (`kesm run`).
  std::optional<PodsTarget> pods;
};

struct MappingSnapshot {
  std::string name;
  int desired = 0;
  int active = 0;
  int running = 0;
  int stopping = 0;
  std::optional<scaler::LagSample> lag; // last good probe
  bool lag_stale = true;                // the last probe failed or none succeeded yet
  bool disabled = false;
  std::string disabled_reason;
  bool standby = false; // leader election: another replica runs the pollers
  // Pods mode: why the mapping's StatefulSet could not be read yet (its controller starts once
  // it is, retried every few seconds); empty otherwise.
  std::string waiting;
  double polled = 0, invoked = 0, failed = 0, committed = 0;
};

// Owned by the main thread. start() throws on a startup failure (port in use, bad setting).
class Runtime {
public:
  Runtime(config::Config config, RuntimeOptions options);
  ~Runtime();

  void start();
  // Retires every poller (each finishes or abandons its batch within the grace period,
  // commits and leaves the group). Returns true when all stopped in time.
  bool stop();

  std::vector<MappingSnapshot> snapshot();
  std::uint16_t metricsPort() const;
  std::string statusJson();
  std::string historyJson(); // /status/history
  bool ready();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Applies every librdkafka setting of every mapping to a scratch configuration, so a bad
// key or value is a startup error naming the mapping. Throws std::runtime_error.
void checkLibrdkafkaSettings(const config::Config& config);

} // namespace kesm::app
