#pragma once

// kesm's Prometheus metrics and its HTTP endpoints. A probe per mapping holds references
// to the metric children it updates; families are built once per Registry.
// Names: kesm_<what>_<unit>, counters end in _total; labels are bounded
// (mapping, outcome, state) — never offsets or keys.

#include <cstdint>
#include <functional>
#include <memory>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <string>

namespace kesm::invoker {
enum class InvokeOutcome;
}

namespace kesm::metrics {

class Registry;

// Metric children for one mapping. Thread-safe (prometheus-cpp metrics are atomic).
// Owned by the Registry, which outlives every poller.
class MappingProbe {
public:
  MappingProbe(Registry& registry, const std::string& mapping);

  prometheus::Counter& events_polled;    // records received from Kafka
  prometheus::Counter& events_invoked;   // records sent in invocation attempts (retries too)
  prometheus::Counter& events_failed;    // records in failed invocation attempts
  prometheus::Counter& events_committed; // records whose offsets were committed
  prometheus::Counter& events_filtered;  // matched no filter: committed without invocation
  prometheus::Counter& events_dropped;   // retries exhausted, no destination: committed, lost
  prometheus::Counter& events_on_failure_delivered; // retries exhausted, written to onFailure
  prometheus::Counter& on_failure_delivery_errors;  // failed writes to onFailure (retried)
  prometheus::Counter& batches_bisected;
  prometheus::Counter& records_oversized;     // event alone above 6 MiB: never sent
  prometheus::Counter& invocations_throttled; // 429s: in-flight batches were reduced
  // 1 for the mapping's current state (Enabled or Disabled), 0 for the other.
  prometheus::Gauge& state_enabled;
  prometheus::Gauge& state_disabled;
  prometheus::Histogram& invocation_duration;
  prometheus::Histogram& batch_records;
  prometheus::Histogram& batch_bytes;
  prometheus::Counter& commits_ok;
  prometheus::Counter& commits_failed;
  prometheus::Counter& batches_abandoned; // in flight at a revoke/stop past the grace period
  prometheus::Counter& rebalances_assign;
  prometheus::Counter& rebalances_revoke;
  prometheus::Counter& kafka_errors;
  prometheus::Counter& poller_spawn_failures; // no thread or descriptor for another poller
  prometheus::Gauge& pollers_starting;        // spawned, waiting for their first assignment
  prometheus::Gauge& pollers_running;
  prometheus::Gauge& pollers_stopping; // retiring, finishing their batch in flight
  prometheus::Gauge& pollers_desired;
  prometheus::Gauge& pollers_min;
  prometheus::Gauge& pollers_max;
  prometheus::Gauge& lag_total;
  prometheus::Gauge& lag_max;
  prometheus::Gauge& lag_stale; // 1 while the last lag probe failed
  prometheus::Histogram& lag_probe_duration;
  prometheus::Counter& lag_probe_failures;

  prometheus::Counter& invocations(invoker::InvokeOutcome outcome);
  // direction: up, down, hold; reason: the decision's reason (bounded set).
  prometheus::Counter& scalingDecisions(const std::string& direction, const std::string& reason);

private:
  Registry& registry_;
  std::string mapping_;
};

// kesm_build_info{version, revision, librdkafka_version} 1 (build_info.cc).
void registerBuildInfo(prometheus::Registry& registry);

// Leader election (app/leadership.h): children of the one Lease this process takes part in.
struct LeaderMetrics {
  prometheus::Gauge& leader; // 1 leader, 0 standby
  prometheus::Counter& transitions;
  prometheus::Counter& lease_errors;
};

// The pods pool's reads and writes of a StatefulSet's replicas (k8s/statefulset_pool.h), for
// one mapping. outcome: ok, conflict, forbidden, not_found, invalid, unauthorized, throttled,
// timeout, unreachable, server_error, other (k8s::toString(ScaleOutcome)).
class ScaleProbe {
public:
  ScaleProbe(Registry& registry, const std::string& mapping);
  prometheus::Counter& writes(const std::string& outcome); // kesm_scale_writes_total
  prometheus::Counter& reads(const std::string& outcome);  // kesm_scale_reads_total
  prometheus::Gauge& write_pending; // kesm_scale_write_pending: 1 while a count is held unwritten

private:
  Registry& registry_;
  std::string mapping_;
};

// What `kesm controller` reads of one mapping's poller pods (k8s/pod_status_scraper.h).
// outcome: ok, http_error, timeout, unreachable, io_error, too_large, malformed,
// wrong_mapping, skipped (k8s::toString(PodReadOutcome)).
class PodStatusProbe {
public:
  PodStatusProbe(Registry& registry, const std::string& mapping);
  prometheus::Counter& reads(const std::string& outcome); // kesm_pod_status_reads_total
  prometheus::Counter& list_errors; // kesm_pod_status_list_errors_total: rounds whose list failed
  prometheus::Gauge& pods_seen;     // kesm_pods_seen: endpoints the last good list named

private:
  Registry& registry_;
  std::string mapping_;
};

class Registry {
public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  // Prometheus text exposition format (0.0.4).
  std::string serialize() const;

  // Families, built once. Public so probes can add their children.
  struct Families;
  Families& families() { return *families_; }

  // Per-partition lag gauge child (topic and partition are bounded by the topic layout).
  prometheus::Gauge& offsetLag(const std::string& mapping, const std::string& topic,
                               std::int32_t partition);
  // Seconds the partition has been lagging without commit progress (0 when not lagging).
  prometheus::Gauge& partitionStalled(const std::string& mapping, const std::string& topic,
                                      std::int32_t partition);
  // Removes the partition's two series above (a controller that stops withdraws them).
  void removePartitionGauges(const std::string& mapping, const std::string& topic,
                             std::int32_t partition);
  // lease: "namespace/name".
  LeaderMetrics leaderMetrics(const std::string& lease);

private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
};

// A page served as is, with its Content-Security-Policy header.
struct StaticPage {
  std::string html;
  std::string content_security_policy;
};

struct EndpointHooks {
  std::function<bool()> ready;          // /readyz: 200 when true, 503 otherwise
  std::function<std::string()> status;  // /status: JSON document
  std::function<std::string()> history; // /status/history: JSON document; empty: 404
  const StaticPage* page = nullptr;     // GET /: outlives the server; null: 404
};

// Serves /, /metrics, /healthz, /readyz, /status and /status/history on one listener.
class MetricsServer {
public:
  MetricsServer(const std::string& listen, Registry& registry, EndpointHooks hooks);
  ~MetricsServer();
  std::uint16_t port() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace kesm::metrics
