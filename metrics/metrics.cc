#include "metrics/metrics.h"

#include "invoker/invoker.h"
#include "metrics/process.h"
#include "net/http.h"

#include <prometheus/text_serializer.h>
#include <sstream>

namespace kesm::metrics {

struct Registry::Families {
  explicit Families(prometheus::Registry& r)
      : events_polled(prometheus::BuildCounter()
                          .Name("kesm_events_polled_total")
                          .Help("Records received from Kafka")
                          .Register(r)),
        events_invoked(prometheus::BuildCounter()
                           .Name("kesm_events_invoked_total")
                           .Help("Records sent to the function, counted once per attempt")
                           .Register(r)),
        events_failed(prometheus::BuildCounter()
                          .Name("kesm_events_failed_invoke_total")
                          .Help("Records in invocation attempts that failed")
                          .Register(r)),
        events_committed(prometheus::BuildCounter()
                             .Name("kesm_events_committed_total")
                             .Help("Records whose offsets were committed after success")
                             .Register(r)),
        events_filtered(prometheus::BuildCounter()
                            .Name("kesm_events_filtered_total")
                            .Help("Records that matched no filter, committed without invocation")
                            .Register(r)),
        events_dropped(prometheus::BuildCounter()
                           .Name("kesm_events_dropped_total")
                           .Help("Records given up after their retries with no onFailure "
                                 "destination: committed without success")
                           .Register(r)),
        events_on_failure_delivered(
            prometheus::BuildCounter()
                .Name("kesm_events_on_failure_delivered_total")
                .Help("Records given up after their retries and written to the onFailure "
                      "destination")
                .Register(r)),
        on_failure_delivery_errors(prometheus::BuildCounter()
                                       .Name("kesm_on_failure_delivery_errors_total")
                                       .Help("Failed writes to the onFailure destination "
                                             "(each retried; nothing is committed before one "
                                             "succeeds)")
                                       .Register(r)),
        batches_bisected(prometheus::BuildCounter()
                             .Name("kesm_batches_bisected_total")
                             .Help("Failing batches split in halves "
                                   "(bisectBatchOnFunctionError)")
                             .Register(r)),
        records_oversized(prometheus::BuildCounter()
                              .Name("kesm_records_oversized_total")
                              .Help("Records whose event alone exceeds the 6 MiB invocation "
                                    "payload limit: never sent, routed to onFailure, dropped "
                                    "when retries are bounded, or holding their partition")
                              .Register(r)),
        partition_stalled(prometheus::BuildGauge()
                              .Name("kesm_partition_stalled_seconds")
                              .Help("Seconds a partition has had lag without its committed "
                                    "offset moving, as the lag probe sees it; 0 when no lag")
                              .Register(r)),
        invocations_throttled(prometheus::BuildCounter()
                                  .Name("kesm_invocations_throttled_total")
                                  .Help("Invocations answered 429: retried later, with fewer "
                                        "batches in flight")
                                  .Register(r)),
        mapping_state(prometheus::BuildGauge()
                          .Name("kesm_mapping_state")
                          .Help("1 for the mapping's current state (Enabled, Disabled), else 0; "
                                "the reason is in the log and in /status")
                          .Register(r)),
        invocations(prometheus::BuildCounter()
                        .Name("kesm_invocations_total")
                        .Help("Invocation attempts by outcome, retries included")
                        .Register(r)),
        invocation_duration(prometheus::BuildHistogram()
                                .Name("kesm_invocation_duration_seconds")
                                .Help("Duration of one function invocation attempt")
                                .Register(r)),
        batch_records(prometheus::BuildHistogram()
                          .Name("kesm_batch_size_records")
                          .Help("Records per batch sent to the function")
                          .Register(r)),
        batch_bytes(prometheus::BuildHistogram()
                        .Name("kesm_batch_payload_bytes")
                        .Help("Encoded event size per batch")
                        .Register(r)),
        commits(prometheus::BuildCounter()
                    .Name("kesm_offset_commits_total")
                    .Help("Offset commits by outcome")
                    .Register(r)),
        batches_abandoned(prometheus::BuildCounter()
                              .Name("kesm_batches_abandoned_total")
                              .Help("Batches given up at a revoke or stop, left uncommitted "
                                    "for redelivery")
                              .Register(r)),
        rebalances(prometheus::BuildCounter()
                       .Name("kesm_rebalances_total")
                       .Help("Partition assignment changes seen by pollers")
                       .Register(r)),
        kafka_errors(prometheus::BuildCounter()
                         .Name("kesm_kafka_errors_total")
                         .Help("Errors reported by the Kafka client")
                         .Register(r)),
        poller_spawn_failures(prometheus::BuildCounter()
                                  .Name("kesm_poller_spawn_failures_total")
                                  .Help("Pollers the pool could not start for want of threads "
                                        "or file descriptors; it holds at what it has")
                                  .Register(r)),
        pollers(prometheus::BuildGauge()
                    .Name("kesm_pollers")
                    .Help("Pollers by state: desired, starting, running, stopping, and the min and "
                          "max bounds")
                    .Register(r)),
        lag(prometheus::BuildGauge()
                .Name("kesm_offset_lag")
                .Help("High watermark minus committed offset, per partition")
                .Register(r)),
        lag_total(prometheus::BuildGauge()
                      .Name("kesm_mapping_offset_lag")
                      .Help("Offset lag summed over the mapping's partitions")
                      .Register(r)),
        lag_max(prometheus::BuildGauge()
                    .Name("kesm_offset_lag_max")
                    .Help("Largest offset lag of one partition of the mapping")
                    .Register(r)),
        lag_stale(prometheus::BuildGauge()
                      .Name("kesm_offset_lag_stale")
                      .Help("1 while the last lag probe failed: lag values are the last good "
                            "ones, not current")
                      .Register(r)),
        lag_probe_duration(prometheus::BuildHistogram()
                               .Name("kesm_lag_probe_duration_seconds")
                               .Help("Duration of one lag probe (watermarks and committed "
                                     "offsets of every partition)")
                               .Register(r)),
        lag_probe_failures(prometheus::BuildCounter()
                               .Name("kesm_lag_probe_failures_total")
                               .Help("Lag probes that failed; the controller held its "
                                     "last decision")
                               .Register(r)),
        scaling_decisions(prometheus::BuildCounter()
                              .Name("kesm_scaling_decisions_total")
                              .Help("Controller evaluations by direction and reason")
                              .Register(r)),
        leader(prometheus::BuildGauge()
                   .Name("kesm_leader")
                   .Help("1 while this replica holds the leader election Lease and runs "
                         "pollers, 0 while it stands by")
                   .Register(r)),
        leader_transitions(prometheus::BuildCounter()
                               .Name("kesm_leader_transitions_total")
                               .Help("Times this replica became leader")
                               .Register(r)),
        lease_errors(prometheus::BuildCounter()
                         .Name("kesm_leader_lease_errors_total")
                         .Help("Lease reads and writes that failed (API server unreachable, "
                               "refused or conflicting)")
                         .Register(r)),
        scale_writes(prometheus::BuildCounter()
                         .Name("kesm_scale_writes_total")
                         .Help("Writes of a StatefulSet's replicas through its scale subresource "
                               "(pods mode), by outcome; a failed one is held and retried")
                         .Register(r)),
        scale_reads(prometheus::BuildCounter()
                        .Name("kesm_scale_reads_total")
                        .Help("Reads of a StatefulSet's scale subresource (pods mode), by "
                              "outcome")
                        .Register(r)),
        scale_write_pending(prometheus::BuildGauge()
                                .Name("kesm_scale_write_pending")
                                .Help("1 while the controller holds a replica count the API "
                                      "server has not accepted yet (pods mode)")
                                .Register(r)),
        pod_status_reads(prometheus::BuildCounter()
                             .Name("kesm_pod_status_reads_total")
                             .Help("Reads of a poller pod's /status by the controller (pods "
                                   "mode), by outcome")
                             .Register(r)),
        pod_status_list_errors(prometheus::BuildCounter()
                                   .Name("kesm_pod_status_list_errors_total")
                                   .Help("Rounds whose list of the poller pods (EndpointSlices) "
                                         "failed; the invocation totals held (pods mode)")
                                   .Register(r)),
        pods_seen(prometheus::BuildGauge()
                      .Name("kesm_pods_seen")
                      .Help("Poller pods the last successful EndpointSlice list named (pods "
                            "mode)")
                      .Register(r)) {}

  prometheus::Family<prometheus::Counter>& events_polled;
  prometheus::Family<prometheus::Counter>& events_invoked;
  prometheus::Family<prometheus::Counter>& events_failed;
  prometheus::Family<prometheus::Counter>& events_committed;
  prometheus::Family<prometheus::Counter>& events_filtered;
  prometheus::Family<prometheus::Counter>& events_dropped;
  prometheus::Family<prometheus::Counter>& events_on_failure_delivered;
  prometheus::Family<prometheus::Counter>& on_failure_delivery_errors;
  prometheus::Family<prometheus::Counter>& batches_bisected;
  prometheus::Family<prometheus::Counter>& records_oversized;
  prometheus::Family<prometheus::Gauge>& partition_stalled;
  prometheus::Family<prometheus::Counter>& invocations_throttled;
  prometheus::Family<prometheus::Gauge>& mapping_state;
  prometheus::Family<prometheus::Counter>& invocations;
  prometheus::Family<prometheus::Histogram>& invocation_duration;
  prometheus::Family<prometheus::Histogram>& batch_records;
  prometheus::Family<prometheus::Histogram>& batch_bytes;
  prometheus::Family<prometheus::Counter>& commits;
  prometheus::Family<prometheus::Counter>& batches_abandoned;
  prometheus::Family<prometheus::Counter>& rebalances;
  prometheus::Family<prometheus::Counter>& kafka_errors;
  prometheus::Family<prometheus::Counter>& poller_spawn_failures;
  prometheus::Family<prometheus::Gauge>& pollers;
  prometheus::Family<prometheus::Gauge>& lag;
  prometheus::Family<prometheus::Gauge>& lag_total;
  prometheus::Family<prometheus::Gauge>& lag_max;
  prometheus::Family<prometheus::Gauge>& lag_stale;
  prometheus::Family<prometheus::Histogram>& lag_probe_duration;
  prometheus::Family<prometheus::Counter>& lag_probe_failures;
  prometheus::Family<prometheus::Counter>& scaling_decisions;
  prometheus::Family<prometheus::Gauge>& leader;
  prometheus::Family<prometheus::Counter>& leader_transitions;
  prometheus::Family<prometheus::Counter>& lease_errors;
  prometheus::Family<prometheus::Counter>& scale_writes;
  prometheus::Family<prometheus::Counter>& scale_reads;
  prometheus::Family<prometheus::Gauge>& scale_write_pending;
  prometheus::Family<prometheus::Counter>& pod_status_reads;
  prometheus::Family<prometheus::Counter>& pod_status_list_errors;
  prometheus::Family<prometheus::Gauge>& pods_seen;
};

namespace {

const prometheus::Histogram::BucketBoundaries& durationBuckets() {
  static const prometheus::Histogram::BucketBoundaries b{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
  return b;
}

const prometheus::Histogram::BucketBoundaries& recordBuckets() {
  static const prometheus::Histogram::BucketBoundaries b{1,   2,   5,    10,   25,   50,   100,
                                                         250, 500, 1000, 2500, 5000, 10000};
  return b;
}

const prometheus::Histogram::BucketBoundaries& byteBuckets() {
  static const prometheus::Histogram::BucketBoundaries b{1024,    4096,    16384,   65536,  262144,
                                                         1048576, 2097152, 4194304, 6291456};
  return b;
}

} // namespace

Registry::Registry()
    : registry_(std::make_shared<prometheus::Registry>()),
      families_(std::make_unique<Families>(*registry_)) {
  registerBuildInfo(*registry_);
}

Registry::~Registry() = default;

std::string Registry::serialize() const {
  std::ostringstream out;
  auto families = registry_->Collect();
  for (auto& f : collectProcessMetrics()) {
    families.push_back(std::move(f));
  }
  prometheus::TextSerializer{}.Serialize(out, families);
  return out.str();
}

prometheus::Gauge& Registry::partitionStalled(const std::string& mapping, const std::string& topic,
                                              std::int32_t partition) {
  return families_->partition_stalled.Add(
      {{"mapping", mapping}, {"topic", topic}, {"partition", std::to_string(partition)}});
}

void Registry::removePartitionGauges(const std::string& mapping, const std::string& topic,
                                     std::int32_t partition) {
  const std::map<std::string, std::string> labels = {
      {"mapping", mapping}, {"topic", topic}, {"partition", std::to_string(partition)}};
  families_->lag.Remove(&families_->lag.Add(labels));
  families_->partition_stalled.Remove(&families_->partition_stalled.Add(labels));
}

LeaderMetrics Registry::leaderMetrics(const std::string& lease) {
  return LeaderMetrics{families_->leader.Add({{"lease", lease}}),
                       families_->leader_transitions.Add({{"lease", lease}}),
                       families_->lease_errors.Add({{"lease", lease}})};
}

ScaleProbe::ScaleProbe(Registry& registry, const std::string& mapping)
    : write_pending(registry.families().scale_write_pending.Add({{"mapping", mapping}})),
      registry_(registry), mapping_(mapping) {}

prometheus::Counter& ScaleProbe::writes(const std::string& outcome) {
  return registry_.families().scale_writes.Add({{"mapping", mapping_}, {"outcome", outcome}});
}

prometheus::Counter& ScaleProbe::reads(const std::string& outcome) {
  return registry_.families().scale_reads.Add({{"mapping", mapping_}, {"outcome", outcome}});
}

PodStatusProbe::PodStatusProbe(Registry& registry, const std::string& mapping)
    : list_errors(registry.families().pod_status_list_errors.Add({{"mapping", mapping}})),
      pods_seen(registry.families().pods_seen.Add({{"mapping", mapping}})), registry_(registry),
      mapping_(mapping) {}

prometheus::Counter& PodStatusProbe::reads(const std::string& outcome) {
  return registry_.families().pod_status_reads.Add({{"mapping", mapping_}, {"outcome", outcome}});
}

prometheus::Gauge& Registry::offsetLag(const std::string& mapping, const std::string& topic,
                                       std::int32_t partition) {
  return families_->lag.Add(
      {{"mapping", mapping}, {"topic", topic}, {"partition", std::to_string(partition)}});
}

MappingProbe::MappingProbe(Registry& registry, const std::string& mapping)
    : events_polled(registry.families().events_polled.Add({{"mapping", mapping}})),
      events_invoked(registry.families().events_invoked.Add({{"mapping", mapping}})),
      events_failed(registry.families().events_failed.Add({{"mapping", mapping}})),
      events_committed(registry.families().events_committed.Add({{"mapping", mapping}})),
      events_filtered(registry.families().events_filtered.Add({{"mapping", mapping}})),
      events_dropped(registry.families().events_dropped.Add({{"mapping", mapping}})),
      events_on_failure_delivered(
          registry.families().events_on_failure_delivered.Add({{"mapping", mapping}})),
      on_failure_delivery_errors(
          registry.families().on_failure_delivery_errors.Add({{"mapping", mapping}})),
      batches_bisected(registry.families().batches_bisected.Add({{"mapping", mapping}})),
      records_oversized(registry.families().records_oversized.Add({{"mapping", mapping}})),
      invocations_throttled(registry.families().invocations_throttled.Add({{"mapping", mapping}})),
      state_enabled(
          registry.families().mapping_state.Add({{"mapping", mapping}, {"state", "Enabled"}})),
      state_disabled(
          registry.families().mapping_state.Add({{"mapping", mapping}, {"state", "Disabled"}})),
      invocation_duration(
          registry.families().invocation_duration.Add({{"mapping", mapping}}, durationBuckets())),
      batch_records(registry.families().batch_records.Add({{"mapping", mapping}}, recordBuckets())),
      batch_bytes(registry.families().batch_bytes.Add({{"mapping", mapping}}, byteBuckets())),
      commits_ok(registry.families().commits.Add({{"mapping", mapping}, {"outcome", "ok"}})),
      commits_failed(registry.families().commits.Add({{"mapping", mapping}, {"outcome", "error"}})),
      batches_abandoned(registry.families().batches_abandoned.Add({{"mapping", mapping}})),
      rebalances_assign(
          registry.families().rebalances.Add({{"mapping", mapping}, {"kind", "assign"}})),
      rebalances_revoke(
          registry.families().rebalances.Add({{"mapping", mapping}, {"kind", "revoke"}})),
      kafka_errors(registry.families().kafka_errors.Add({{"mapping", mapping}})),
      poller_spawn_failures(registry.families().poller_spawn_failures.Add({{"mapping", mapping}})),
      pollers_starting(
          registry.families().pollers.Add({{"mapping", mapping}, {"state", "starting"}})),
      pollers_running(
          registry.families().pollers.Add({{"mapping", mapping}, {"state", "running"}})),
      pollers_stopping(
          registry.families().pollers.Add({{"mapping", mapping}, {"state", "stopping"}})),
      pollers_desired(
          registry.families().pollers.Add({{"mapping", mapping}, {"state", "desired"}})),
      pollers_min(registry.families().pollers.Add({{"mapping", mapping}, {"state", "min"}})),
      pollers_max(registry.families().pollers.Add({{"mapping", mapping}, {"state", "max"}})),
      lag_total(registry.families().lag_total.Add({{"mapping", mapping}})),
      lag_max(registry.families().lag_max.Add({{"mapping", mapping}})),
      lag_stale(registry.families().lag_stale.Add({{"mapping", mapping}})),
      lag_probe_duration(
          registry.families().lag_probe_duration.Add({{"mapping", mapping}}, durationBuckets())),
      lag_probe_failures(registry.families().lag_probe_failures.Add({{"mapping", mapping}})),
      registry_(registry), mapping_(mapping) {
  // Every outcome exists from the start so that rate() sees the first increment.
  for (auto outcome :
       {invoker::InvokeOutcome::kSuccess, invoker::InvokeOutcome::kFunctionError,
        invoker::InvokeOutcome::kHttpError, invoker::InvokeOutcome::kTimeout,
        invoker::InvokeOutcome::kConnectionError, invoker::InvokeOutcome::kPayloadTooLarge}) {
    invocations(outcome);
  }
}

prometheus::Counter& MappingProbe::scalingDecisions(const std::string& direction,
                                                    const std::string& reason) {
  return registry_.families().scaling_decisions.Add(
      {{"mapping", mapping_}, {"direction", direction}, {"reason", reason}});
}

prometheus::Counter& MappingProbe::invocations(invoker::InvokeOutcome outcome) {
  return registry_.families().invocations.Add(
      {{"mapping", mapping_}, {"outcome", invoker::toString(outcome)}});
}

struct MetricsServer::Impl {
  Impl(const std::string& listen, Registry& registry, EndpointHooks hooks)
      : registry_(registry), hooks_(std::move(hooks)),
        server_(listen, [this](const net::HttpRequest& r) { return handle(r); }) {}

  net::HttpResponse handle(const net::HttpRequest& request) {
    net::HttpResponse response;
    std::string path = request.target.substr(0, request.target.find('?'));
    if (request.method != "GET" && request.method != "HEAD") {
      response.status = 405;
      response.headers.emplace_back("Allow", "GET, HEAD");
      response.body = "method not allowed\n";
    } else if (path == "/metrics") {
      response.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      response.body = registry_.serialize();
    } else if (path == "/healthz") {
      response.body = "ok\n";
    } else if (path == "/readyz") {
      bool ready = !hooks_.ready || hooks_.ready();
      response.status = ready ? 200 : 503;
      response.body = ready ? "ready\n" : "not ready\n";
    } else if (path == "/status") {
      response.headers.emplace_back("Content-Type", "application/json");
      response.body = hooks_.status ? hooks_.status() : "{}";
    } else if (path == "/status/history" && hooks_.history) {
      response.headers.emplace_back("Content-Type", "application/json");
      response.body = hooks_.history();
    } else if (path == "/" && hooks_.page) {
      response.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
      response.headers.emplace_back("Content-Security-Policy",
                                    hooks_.page->content_security_policy);
      response.headers.emplace_back("X-Content-Type-Options", "nosniff");
      response.headers.emplace_back("Cache-Control", "no-cache");
      response.body = hooks_.page->html;
    } else {
      response.status = 404;
      response.body = "not found: try /, /metrics, /healthz, /readyz, /status, /status/history\n";
    }
    return response;
  }

  Registry& registry_;
  EndpointHooks hooks_;
  net::HttpServer server_;
};

MetricsServer::MetricsServer(const std::string& listen, Registry& registry, EndpointHooks hooks)
    : impl_(std::make_unique<Impl>(listen, registry, std::move(hooks))) {}

MetricsServer::~MetricsServer() = default;

std::uint16_t MetricsServer::port() const { return impl_->server_.port(); }

} // namespace kesm::metrics
