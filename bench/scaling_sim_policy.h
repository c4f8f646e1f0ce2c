#pragma once

// kesm_scaling_sim's scaling policies: kesm's own (the product's decision and policy) and two
// reference policies modelled from their published rules (KEDA's Kafka scaler, AWS Lambda's
// on-demand mode). Each is evaluated by the simulation (scaling_sim_model.h) on one thread.

#include "bench/scaling_sim_trace.h"
#include "config/config.h"
#include "scaler/decision.h"

#include <cstdint>
#include <cstdio>
#include <deque>
#include <optional>
#include <utility>

namespace kesm::bench::sim {

// What a policy sees at an evaluation.
struct View {
  Millis now = 0;
  int partitions = 0;
  int lagging_partitions = 0;
  std::int64_t total_lag = 0;
  std::int64_t high_watermark_sum = 0;
  std::int64_t committed_sum = 0;
  int active_pollers = 0;
  std::int64_t invocations = 0;  // finished batches
  double invocation_seconds = 0; // their summed duration
};

// A change of the poller count, effective at `at`.
struct Action {
  Millis at = 0;
  int desired = 0;
};

class Policy {
public:
  virtual ~Policy() = default;
  virtual Millis interval() const = 0;
  virtual std::optional<Action> evaluate(const View& view) = 0;
  // Batches each of its pollers runs at once. One for the reference policies: a KEDA-scaled
  // consumer runs one batch at a time, and the AWS model was calibrated so (benchmarks.md).
  virtual int maxConcurrentBatches() const { return 1; }
};

// A mapping at the product's defaults (config/config.h) but for the trace's pollers and batch
// size, and batches per poller when --max-concurrent-batches says.
config::Mapping mappingOf(const Trace& trace, int max_concurrent_batches);

// kesm: the real decision (scaler/decision.cc) with the product's policy, applied at once.
class KesmPolicy final : public Policy {
public:
  KesmPolicy(const config::Mapping& mapping, Millis interval);

  Millis interval() const override { return interval_; }
  int maxConcurrentBatches() const override { return max_concurrent_batches_; }
  std::optional<Action> evaluate(const View& v) override;

  // Every change of the decision, with what the decision saw, goes to `log` (--log-decisions).
  void logTo(std::FILE* log) { log_ = log; }

private:
  Millis interval_;
  int max_concurrent_batches_;
  scaler::Scaler scaler_;
  std::FILE* log_ = nullptr;
  int last_desired_ = -1;
};

// The simulator's first KEDA model (kept for the figures docs/benchmarks.md cites from it,
// --keda-simple): KEDA's Kafka scaler behind the HPA, from its published rules: desired =
// ceil(totalLag / lagThreshold), at most one consumer per partition (allowIdleConsumers=false),
// within [min, max]; scale up at once, scale down only to the highest desired of the last
// 300 s (HPA's default scale-down stabilization). Keeps a reference to the trace.
class KedaPolicy final : public Policy {
public:
  static constexpr Millis kPollingInterval = 30 * kSecond;
  static constexpr std::int64_t kLagThreshold = 10;
  static constexpr Millis kStabilization = 300 * kSecond;

  explicit KedaPolicy(const Trace& trace) : trace_(trace), current_(trace.minimum_pollers) {}

  Millis interval() const override { return kPollingInterval; }
  std::optional<Action> evaluate(const View& v) override;

private:
  const Trace& trace_;
  int current_;
  std::deque<std::pair<Millis, int>> history_;
};

// KEDA's Kafka scaler behind the HPA (autoscaling/v2) at their defaults, scaling pods of one
// consumer each; the simulation adds the pod start (Deployment). Every sync period the HPA
// fetches the scaler's metric, the total lag, capped by KEDA at partitions x lagThreshold
// (allowIdleConsumers false), with an AverageValue target of lagThreshold. Then, as the HPA's
// replica calculator and normalization do: keep the pods that exist (status.replicas) if
// metric / (target x status.replicas) is within 1 +- tolerance, else ceil(metric / target);
// scale-down stabilization (the highest recommendation of the last 300 s), no scale-up
// stabilization; scale-up limited per 15 s to max(+100 %, +4 pods) of the replicas at the
// period's start (the default scale-down policy, -100 % per 15 s, limits nothing); min, max.
// KEDA's own pollingInterval (30 s) only activates 0 <-> 1 replicas: the traces' minimum is 1.
// Keeps a reference to the trace.
class KedaHpaPolicy final : public Policy {
public:
  static constexpr Millis kSyncPeriod = 15 * kSecond; // --horizontal-pod-autoscaler-sync-period
  static constexpr std::int64_t kLagThreshold = 10;
  static constexpr double kTolerance = 0.1;
  static constexpr Millis kScaleDownStabilization = 300 * kSecond;
  static constexpr Millis kScaleUpPeriod = 15 * kSecond;
  static constexpr int kScaleUpPods = 4;
  static constexpr int kScaleUpPercent = 100;

  explicit KedaHpaPolicy(const Trace& trace) : trace_(trace), current_(trace.minimum_pollers) {}

  Millis interval() const override { return kSyncPeriod; }
  std::optional<Action> evaluate(const View& v) override;

private:
  const Trace& trace_;
  int current_;                                        // spec.replicas
  std::deque<std::pair<Millis, int>> recommendations_; // unstabilized, last 300 s
  std::deque<std::pair<Millis, int>> scale_up_events_; // (at, pods added), last 15 s
};

// AWS Lambda's on-demand mode, from its published rules: lag is evaluated once a minute and
// pollers are added or removed "within three minutes". Model: at each evaluation, if lag > 0
// and it fell by less than `min_decrease` (a fraction) since the previous evaluation, double
// the target (capped at the partitions and max); if lag is 0, halve it (min 1). Each change
// takes effect `delay` after its evaluation; changes pipeline (one per evaluation).
struct AwsModel {
  Millis interval = 60 * kSecond;
  Millis delay = 180 * kSecond;
  // The published rule adds pollers when "the offset lag is too high". Read literally as
  // "lag did not decrease" (0.0), a pure backlog never scales: one poller always makes some
  // progress. Calibrated on aws-burst against AWS's ~7 min (docs/benchmarks.md).
  double min_decrease = 0.05;
};

// Keeps a reference to the trace.
class AwsOnDemandPolicy final : public Policy {
public:
  AwsOnDemandPolicy(const Trace& trace, AwsModel model)
      : trace_(trace), model_(model), target_(trace.minimum_pollers) {}

  Millis interval() const override { return model_.interval; }
  std::optional<Action> evaluate(const View& v) override;

private:
  const Trace& trace_;
  AwsModel model_;
  int target_;
  std::optional<std::int64_t> previous_lag_;
};

} // namespace kesm::bench::sim
