#pragma once

// Wires a Config into running parts: the metrics endpoint, and per mapping a worker pool,
// a lag probe and the controller loop that sets the poller count.

#include "config/config.h"
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

struct RuntimeOptions {
  bool live_line = false; // print one status line per second on stdout
  // Mappings that start Disabled (by name), with the reason, e.g. a failed preflight.
  std::map<std::string, std::string> disabled_at_start;
  // Leader election (app/leadership.h): the Lease this replica competes for and its name in
  // it; null: off, the pollers start at once.
  std::unique_ptr<k8s::LeaseStore> lease_store;
  std::string identity;
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
