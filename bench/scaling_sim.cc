// kesm_scaling_sim: a deterministic, time-stepped simulator that drives scaling policies with
// workload traces and reports how fast each drains and what it costs. Results and how to read
// them: docs/benchmarks.md, section "Scaling simulator".
//
// The model (all times are integer milliseconds, so runs are bit-for-bit repeatable):
//
// - Topic: P partitions. Each keeps its high watermark, its fetch position and its committed
//   offset, and a FIFO of chunks (produce time, count) of records not fetched yet. Ingest is
//   added at every step (rate x step, spread evenly over the partitions with a fractional
//   carry), stamped with the step's time. Lag = high watermark - committed, so a record in
//   flight still counts as lag, as it does for Kafka's offset lag.
// - Pollers: each partition is owned by exactly one assigned poller, round-robin (partition i
//   -> poller i mod n). A poller runs up to C batches at once, never two of one partition: C
//   is the product's scaling.maxConcurrentBatches (default 5) under kesm's policy, 1 under the
//   reference policies (Policy::maxConcurrentBatches). A batch is cut as the poller cuts it:
//   up to `batch_size` records, each owned partition's records taken whole in rotation,
//   skipping partitions with a batch in flight (so a backlog gives batches of one partition
//   each, a trickle batches spanning many). A batch takes `function_duration` whatever its size
//   (Lambda-style) and commits when it finishes. Batch completions are exact (a poller catches
//   up within a step), so the step only quantizes ingest and control events.
// - Scaling: a policy is evaluated every `interval`, with its first evaluation at half an
//   interval (a burst lands, on average, half an interval after an evaluation). It sees the
//   exact lag, partitions, lagging partitions, the sums of high watermarks and committed
//   offsets, and the active poller count (started or running, like WorkerPool::status().active).
//   Its decision takes effect at the time it says (at once for kesm and KEDA, +180 s for AWS).
//   kesm's policy is the product's: a config::Mapping at its defaults with the trace's
//   pollers and batch size, turned into a ScalingPolicy as the controller does.
// - Scale-up: a new poller joins `spawn_delay` (1 s) after the decision. Scale-down: the
//   retired poller leaves at once (a poller still starting is cancelled first); its batch in
//   flight still completes and commits. Each join or leave starts an eager rebalance: no poller
//   starts a batch until `rebalance_pause` (2 s) has passed and every batch in flight has
//   finished (its partitions may move; never two batches of one partition in flight), then
//   partitions are reassigned round-robin over the members.
//
// Figures:
// - drain: for each burst (the backlog at t=0, or a spike), the time from the burst until every
//   record produced up to and including it is committed; the worst burst is reported. "n/a"
//   for a trace without bursts.
// - full scale-out: first time min(max, partitions) pollers hold an assignment; "never" if never.
// - max event age: max over records of commit time - produce time.
// - poller-seconds: the integral of active pollers (started or running) over the run. Burst
//   traces run until everything is drained and the policy is back at its minimum, so the cost
//   of scaling down late is counted; the others run for their fixed duration.
// - peak pollers, and rebalances (membership changes, each pausing the whole group).

#include "config/config.h"
#include "scaler/controller_rules.h"
#include "scaler/decision.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kesm::bench {
namespace {

using Millis = std::int64_t;

constexpr Millis kSecond = 1000;
constexpr Millis kMinute = 60 * kSecond;
constexpr Millis kHour = 60 * kMinute;

// ---------------------------------------------------------------------------------------------
// Traces

struct Spike {
  Millis at = 0;
  std::int64_t records = 0;
};

struct Trace {
  std::string name;
  std::string summary;
  int partitions = 1;
  std::int64_t initial_backlog = 0; // records at t=0, spread evenly over the partitions
  int batch_size = 100;
  Millis function_duration = 100;
  int minimum_pollers = 1;
  int maximum_pollers = 1;
  Millis duration = 0; // 0: run until drained and back at the minimum
  // Total ingest in records/s at time t (before noise).
  std::function<double(Millis)> ingest_rate;
  double noise = 0; // relative standard deviation of the ingest, drawn once per second
  std::vector<Spike> spikes;
};

std::vector<Trace> traces() {
  std::vector<Trace> all;
  {
    Trace t;
    t.name = "aws-burst";
    t.summary = "2,000,000 records (1 KB) on 100 partitions at t=0, batch 100, 100 ms function";
    t.partitions = 100;
    t.initial_backlog = 2'000'000;
    t.batch_size = 100;
    t.function_duration = 100;
    t.minimum_pollers = 1;
    t.maximum_pollers = 100;
    all.push_back(t);
  }
  {
    Trace t;
    t.name = "lambda-1000";
    t.summary = "50,000,000 records on 1000 partitions at t=0, batch 1, 5 s function";
    t.partitions = 1000;
    t.initial_backlog = 50'000'000;
    t.batch_size = 1;
    t.function_duration = 5 * kSecond;
    t.minimum_pollers = 1;
    t.maximum_pollers = 1000;
    all.push_back(t);
  }
  {
    Trace t;
    t.name = "azure";
    t.summary = "5,000,000 records on 100 partitions at t=0, batch 1, 5 s function";
    t.partitions = 100;
    t.initial_backlog = 5'000'000;
    t.batch_size = 1;
    t.function_duration = 5 * kSecond;
    t.minimum_pollers = 1;
    t.maximum_pollers = 100;
    all.push_back(t);
  }
  {
    Trace t;
    t.name = "steady-noise";
    t.summary = "64 partitions, 3000 records/s +-10% gaussian noise per second, batch 100, "
                "100 ms function, 1 h";
    t.partitions = 64;
    t.batch_size = 100;
    t.function_duration = 100;
    t.minimum_pollers = 1;
    t.maximum_pollers = 64;
    t.duration = kHour;
    t.ingest_rate = [](Millis) { return 3000.0; };
    t.noise = 0.10;
    all.push_back(t);
  }
  {
    Trace t;
    t.name = "diurnal-spiky";
    t.summary = "32 partitions, sinusoid 500..8000 records/s (2 h period, trough at t=0) over "
                "6 h, +200,000 records every 45 min, batch 100, 100 ms function";
    t.partitions = 32;
    t.batch_size = 100;
    t.function_duration = 100;
    t.minimum_pollers = 1;
    t.maximum_pollers = 32;
    t.duration = 6 * kHour;
    t.ingest_rate = [](Millis at) {
      constexpr double kPi = 3.14159265358979323846;
      double phase = 2 * kPi * static_cast<double>(at) / static_cast<double>(2 * kHour);
      return 4250.0 - 3750.0 * std::cos(phase);
    };
    for (Millis at = 45 * kMinute; at < t.duration; at += 45 * kMinute) {
      t.spikes.push_back({at, 200'000});
    }
    all.push_back(t);
  }
  return all;
}

// ---------------------------------------------------------------------------------------------
// Policies

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
config::Mapping mappingOf(const Trace& trace, int max_concurrent_batches) {
  config::Mapping m;
  m.scaling.minimum_pollers = trace.minimum_pollers;
  m.scaling.maximum_pollers = trace.maximum_pollers;
  m.scaling.max_concurrent_batches = max_concurrent_batches;
  m.batching.batch_size = trace.batch_size;
  return m;
}

// kesm: the real decision (scaler/decision.cc) with the product's policy, applied at once.
class KesmPolicy final : public Policy {
public:
  KesmPolicy(const config::Mapping& mapping, Millis interval)
      : interval_(interval), max_concurrent_batches_(mapping.scaling.max_concurrent_batches),
        scaler_(scaler::policyOf(mapping)) {}

  Millis interval() const override { return interval_; }
  int maxConcurrentBatches() const override { return max_concurrent_batches_; }

  std::optional<Action> evaluate(const View& v) override {
    scaler::Observation o;
    o.at = Clock::time_point{} + std::chrono::milliseconds(v.now);
    o.partitions = v.partitions;
    o.lagging_partitions = v.lagging_partitions;
    o.total_lag = v.total_lag;
    o.high_watermark_sum = v.high_watermark_sum;
    o.committed_sum = v.committed_sum;
    o.active_pollers = v.active_pollers;
    o.invocations = v.invocations;
    o.invocation_seconds = v.invocation_seconds;
    scaler::Decision d = scaler_.decide(o);
    if (log_ != nullptr && d.desired != last_desired_) {
      std::fprintf(log_,
                   "t=%.1f lag=%lld lagging=%d active=%d ingest=%.0f drain=%.0f per_poller=%.1f "
                   "rec=%d desired=%d (%s)\n",
                   static_cast<double>(v.now) / 1000.0, static_cast<long long>(v.total_lag),
                   v.lagging_partitions, v.active_pollers, d.ingest_rate, d.drain_rate,
                   d.per_poller.value_or(-1), d.recommendation, d.desired,
                   scaler::toString(d.reason));
    }
    last_desired_ = d.desired;
    return Action{v.now, d.desired};
  }

  // Every change of the decision, with what the decision saw, goes to `log` (--log-decisions).
  void logTo(std::FILE* log) { log_ = log; }

private:
  Millis interval_;
  int max_concurrent_batches_;
  scaler::Scaler scaler_;
  std::FILE* log_ = nullptr;
  int last_desired_ = -1;
};

// KEDA's Kafka scaler behind the HPA, from its published rules: desired =
// ceil(totalLag / lagThreshold), at most one consumer per partition (allowIdleConsumers=false),
// within [min, max]; scale up at once, scale down only to the highest desired of the last
// 300 s (HPA's default scale-down stabilization).
class KedaPolicy final : public Policy {
public:
  static constexpr Millis kPollingInterval = 30 * kSecond;
  static constexpr std::int64_t kLagThreshold = 10;
  static constexpr Millis kStabilization = 300 * kSecond;

  explicit KedaPolicy(const Trace& trace) : trace_(trace), current_(trace.minimum_pollers) {}

  Millis interval() const override { return kPollingInterval; }

  std::optional<Action> evaluate(const View& v) override {
    std::int64_t want = (v.total_lag + kLagThreshold - 1) / kLagThreshold;
    want = std::min<std::int64_t>(want, std::min(v.partitions, trace_.maximum_pollers));
    int rec = static_cast<int>(std::max<std::int64_t>(want, trace_.minimum_pollers));
    history_.emplace_back(v.now, rec);
    while (!history_.empty() && history_.front().first < v.now - kStabilization) {
      history_.pop_front();
    }
    if (rec >= current_) {
      current_ = rec;
    } else {
      int stabilized = rec;
      for (const auto& [at, r] : history_) {
        stabilized = std::max(stabilized, r);
      }
      current_ = std::min(current_, stabilized);
    }
    return Action{v.now, current_};
  }

private:
  const Trace& trace_;
  int current_;
  std::deque<std::pair<Millis, int>> history_;
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

class AwsOnDemandPolicy final : public Policy {
public:
  AwsOnDemandPolicy(const Trace& trace, AwsModel model)
      : trace_(trace), model_(model), target_(trace.minimum_pollers) {}

  Millis interval() const override { return model_.interval; }

  std::optional<Action> evaluate(const View& v) override {
    // Before the first evaluation the topic was idle: lag 0.
    std::int64_t previous = previous_lag_.value_or(0);
    previous_lag_ = v.total_lag;
    int cap = std::max(trace_.minimum_pollers, std::min(v.partitions, trace_.maximum_pollers));
    int next = target_;
    if (v.total_lag > 0 && static_cast<double>(v.total_lag) >
                               (1.0 - model_.min_decrease) * static_cast<double>(previous)) {
      next = std::min(cap, target_ * 2);
    } else if (v.total_lag == 0) {
      next = std::max(trace_.minimum_pollers, target_ / 2);
    }
    if (next == target_) {
      return std::nullopt;
    }
    target_ = next;
    return Action{v.now + model_.delay, next};
  }

private:
  const Trace& trace_;
  AwsModel model_;
  int target_;
  std::optional<std::int64_t> previous_lag_;
};

// ---------------------------------------------------------------------------------------------
// The simulated consumer group

struct Chunk {
  Millis produced = 0;
  std::int64_t count = 0;
};

struct PartitionState {
  std::int64_t high = 0;      // high watermark: records produced
  std::int64_t fetched = 0;   // records handed to a batch
  std::int64_t committed = 0; // records whose batch finished
  std::deque<Chunk> unfetched;
  double carry = 0;       // fractional ingest not produced yet
  bool in_flight = false; // a batch of this partition is in flight (never two at once)
};

struct InFlight {
  Millis finish = 0;
  Millis oldest = 0; // produce time of the oldest record
  std::vector<std::pair<int, std::int64_t>> parts;
};

struct Poller {
  std::vector<int> owned;
  std::size_t cursor = 0;
  std::vector<InFlight> batches; // in flight, at most max_concurrent_batches
};

struct Burst {
  Millis at = 0;
  std::vector<std::int64_t> target; // high watermark per partition right after the burst
  int unsatisfied = 0;
  std::optional<Millis> drained_after;
};

struct Result {
  std::string policy;
  std::optional<Millis> drain;      // worst burst; nullopt: n/a (no burst)
  bool drained = true;              // every burst drained within the run
  double mean_drain_s = 0;          // mean over bursts
  std::optional<Millis> full_scale; // first time cap pollers held an assignment
  Millis max_age = 0;
  Millis max_age_at = 0; // when the oldest record was committed
  double poller_seconds = 0;
  int peak = 0;
  int rebalances = 0;
  Millis ran_for = 0;
};

class Simulation {
public:
  Simulation(const Trace& trace, Policy& policy, std::string name)
      : trace_(trace), max_concurrent_(std::max(1, policy.maxConcurrentBatches())), policy_(policy),
        parts_(static_cast<std::size_t>(trace.partitions)), rng_(0x6b65736d) {
    result_.policy = std::move(name);
    step_ = std::clamp<Millis>(trace.function_duration / 10, 100, 1000);
    cap_ = std::max(trace.minimum_pollers, std::min(trace.maximum_pollers, trace.partitions));
    if (trace.initial_backlog > 0) {
      produceBurst(0, trace.initial_backlog);
    }
    // The minimum pollers are in the group and assigned before t=0.
    pollers_.resize(static_cast<std::size_t>(trace.minimum_pollers));
    assign();
  }

  Result run() {
    Millis next_eval = policy_.interval() / 2;
    std::size_t next_spike = 0;
    const Millis safety = 1000 * kHour;
    for (now_ = 0;; now_ += step_) {
      // 1. Ingest of the step that ends now, and spikes due.
      if (now_ > 0 && trace_.ingest_rate) {
        ingest();
      }
      while (next_spike < trace_.spikes.size() && trace_.spikes[next_spike].at <= now_) {
        produceBurst(now_, trace_.spikes[next_spike].records);
        ++next_spike;
      }
      // 2. Control events: decisions that take effect, pollers that join, rebalance end.
      applyDueActions();
      while (!spawning_.empty() && spawning_.front() <= now_) {
        spawning_.pop_front();
        pollers_.emplace_back();
        startRebalance();
      }
      if (paused_ && rebalance_end_ <= now_) {
        paused_ = false;
        assign();
      }
      // 3. Pollers catch up to now.
      for (auto it = orphans_.begin(); it != orphans_.end();) {
        if (it->finish <= now_) {
          commit(*it);
          it = orphans_.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& p : pollers_) {
        runPoller(p);
      }
      // 4. The policy.
      if (now_ >= next_eval) {
        evaluate();
        applyDueActions(); // kesm and KEDA act at once
        next_eval += policy_.interval();
      }
      // 5. Accounting over the step that starts now.
      int active = activePollers();
      result_.peak = std::max(result_.peak, active);
      result_.poller_seconds += static_cast<double>(active) * static_cast<double>(step_) / 1000.0;
      // 6. The end.
      if (trace_.duration > 0) {
        if (now_ + step_ >= trace_.duration) {
          break;
        }
      } else if ((allDrained() && actions_.empty() && spawning_.empty() && !paused_ &&
                  static_cast<int>(pollers_.size()) == trace_.minimum_pollers) ||
                 now_ >= safety) {
        break;
      }
    }
    result_.ran_for = now_ + step_;
    summarize();
    return result_;
  }

private:
  int activePollers() const { return static_cast<int>(pollers_.size() + spawning_.size()); }

  bool allDrained() const {
    return std::all_of(bursts_.begin(), bursts_.end(),
                       [](const Burst& b) { return b.drained_after.has_value(); });
  }

  void produce(int p, Millis at, std::int64_t count) {
    if (count <= 0) {
      return;
    }
    auto& part = parts_[static_cast<std::size_t>(p)];
    if (part.high == part.committed) {
      ++lagging_;
    }
    part.high += count;
    high_sum_ += count;
    if (!part.unfetched.empty() && part.unfetched.back().produced == at) {
      part.unfetched.back().count += count;
    } else {
      part.unfetched.push_back({at, count});
    }
  }

  void produceBurst(Millis at, std::int64_t records) {
    auto n = static_cast<std::int64_t>(trace_.partitions);
    for (int p = 0; p < trace_.partitions; ++p) {
      produce(p, at, records / n + (p < records % n ? 1 : 0));
    }
    Burst b;
    b.at = at;
    for (const auto& part : parts_) {
      b.target.push_back(part.high);
      if (part.committed < part.high) {
        ++b.unsatisfied;
      }
    }
    bursts_.push_back(std::move(b));
    open_bursts_.push_back(bursts_.size() - 1);
  }

  // A standard normal draw from the fully specified mt19937_64 (Box-Muller), so that the noise
  // does not depend on the standard library's distributions.
  double gaussian() {
    auto uniform = [this] {
      return (static_cast<double>(rng_() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    };
    constexpr double kPi = 3.14159265358979323846;
    double u1 = uniform();
    double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * kPi * u2);
  }

  void ingest() {
    Millis from = now_ - step_;
    Millis second = from / kSecond;
    if (second != noise_second_) {
      noise_second_ = second;
      noise_factor_ = trace_.noise > 0 ? std::max(0.0, 1.0 + trace_.noise * gaussian()) : 1.0;
    }
    double rate = trace_.ingest_rate(from + step_ / 2) * noise_factor_;
    double per_partition = rate * static_cast<double>(step_) / 1000.0 / trace_.partitions;
    for (int p = 0; p < trace_.partitions; ++p) {
      auto& part = parts_[static_cast<std::size_t>(p)];
      part.carry += per_partition;
      auto whole = static_cast<std::int64_t>(part.carry);
      part.carry -= static_cast<double>(whole);
      produce(p, now_, whole);
    }
  }

  void applyDueActions() {
    while (!actions_.empty() && actions_.front().at <= now_) {
      applyDesired(actions_.front().desired);
      actions_.pop_front();
    }
  }

  void applyDesired(int desired) {
    desired = std::clamp(desired, trace_.minimum_pollers, cap_);
    int active = activePollers();
    if (desired > active) {
      for (int i = active; i < desired; ++i) {
        spawning_.push_back(now_ + kSpawnDelay);
      }
      return;
    }
    int retire = active - desired;
    while (retire > 0 && !spawning_.empty()) {
      spawning_.pop_back(); // a poller still starting is cancelled, no rebalance
      --retire;
    }
    if (retire == 0) {
      return;
    }
    for (; retire > 0; --retire) {
      Poller& p = pollers_.back();
      for (auto& b : p.batches) {
        orphans_.push_back(std::move(b)); // finishes and commits on its way out
      }
      pollers_.pop_back();
    }
    startRebalance();
  }

  // An eager rebalance: nobody starts a batch until the pause is over and every batch in flight
  // has finished; then partitions are reassigned.
  void startRebalance() {
    if (!paused_) {
      ++result_.rebalances; // a change during a rebalance only extends it
    }
    Millis end = now_ + kRebalancePause;
    for (const auto& p : pollers_) {
      for (const auto& b : p.batches) {
        end = std::max(end, b.finish);
      }
    }
    for (const auto& b : orphans_) {
      end = std::max(end, b.finish);
    }
    // Control events are handled on the step grid.
    end = (end + step_ - 1) / step_ * step_;
    rebalance_end_ = paused_ ? std::max(rebalance_end_, end) : end;
    paused_ = true;
  }

  void assign() {
    auto n = pollers_.size();
    for (auto& p : pollers_) {
      p.owned.clear();
      p.cursor = 0;
    }
    for (std::size_t i = 0; i < parts_.size(); ++i) {
      pollers_[i % n].owned.push_back(static_cast<int>(i));
    }
    if (static_cast<int>(n) == cap_ && !result_.full_scale) {
      result_.full_scale = now_;
    }
  }

  // Batches finish in time order; each frees a slot at its finish time, when the next batch
  // may start. Then the free slots fill at now.
  void runPoller(Poller& p) {
    for (;;) {
      auto done = std::min_element(
          p.batches.begin(), p.batches.end(),
          [](const InFlight& a, const InFlight& b) { return a.finish < b.finish; });
      if (done == p.batches.end() || done->finish > now_) {
        break;
      }
      std::swap(*done, p.batches.back());
      spare_.push_back(std::move(p.batches.back()));
      p.batches.pop_back();
      commit(spare_.back());
      fill(p, spare_.back().finish);
    }
    fill(p, now_);
  }

  // Each batch holds at least one partition of its own, so a poller with as many batches as
  // partitions has none free (the common case with one partition per poller: skip the scan).
  void fill(Poller& p, Millis at) {
    while (!paused_ && static_cast<int>(p.batches.size()) < max_concurrent_ &&
           p.batches.size() < p.owned.size() && startBatch(p, at)) {
    }
  }

  // Up to batch_size records as the poller cuts them: its intake takes up to a batch from each
  // owned partition in turn, and a batch is a prefix of what it holds, so each partition's
  // records come whole, in rotation, skipping partitions with a batch in flight. A partition
  // left with records starts the next batch.
  bool startBatch(Poller& p, Millis at) {
    std::size_t owned = p.owned.size();
    auto fetchable_now = [](const PartitionState& part) {
      return !part.in_flight && part.fetched < part.high;
    };
    // Batches are recycled: lambda-1000 runs 50 million of them per policy.
    if (spare_.empty()) {
      spare_.emplace_back();
    }
    InFlight& b = spare_.back();
    b.parts.clear();
    b.oldest = at;
    b.finish = at + trace_.function_duration;
    std::int64_t remaining = trace_.batch_size;
    std::size_t i = p.cursor;
    for (std::size_t visited = 0; remaining > 0 && visited < owned;
         ++visited, i = (i + 1) % owned) {
      int q = p.owned[i];
      auto& part = parts_[static_cast<std::size_t>(q)];
      if (!fetchable_now(part)) {
        continue;
      }
      std::int64_t available = part.high - part.fetched;
      std::int64_t take = std::min(available, remaining);
      part.fetched += take;
      remaining -= take;
      b.parts.emplace_back(q, take);
      for (std::int64_t left = take; left > 0;) {
        Chunk& c = part.unfetched.front();
        b.oldest = std::min(b.oldest, c.produced);
        std::int64_t n = std::min(left, c.count);
        c.count -= n;
        left -= n;
        if (c.count == 0) {
          part.unfetched.pop_front();
        }
      }
      p.cursor = take < available ? i : (i + 1) % owned;
    }
    if (b.parts.empty()) {
      return false;
    }
    p.batches.push_back(std::move(b));
    spare_.pop_back();
    for (const auto& [q, n] : p.batches.back().parts) {
      parts_[static_cast<std::size_t>(q)].in_flight = true;
    }
    return true;
  }

  void commit(const InFlight& b) {
    ++invocations_;
    invocation_ms_ += trace_.function_duration;
    if (b.finish - b.oldest > result_.max_age) {
      result_.max_age = b.finish - b.oldest;
      result_.max_age_at = b.finish;
    }
    for (const auto& [q, n] : b.parts) {
      auto& part = parts_[static_cast<std::size_t>(q)];
      part.in_flight = false;
      std::int64_t before = part.committed;
      part.committed += n;
      committed_sum_ += n;
      if (part.committed == part.high) {
        --lagging_;
      }
      for (std::size_t k = 0; k < open_bursts_.size();) {
        Burst& burst = bursts_[open_bursts_[k]];
        std::int64_t target = burst.target[static_cast<std::size_t>(q)];
        if (before < target && part.committed >= target && --burst.unsatisfied == 0) {
          burst.drained_after = b.finish - burst.at;
          open_bursts_.erase(open_bursts_.begin() + static_cast<std::ptrdiff_t>(k));
        } else {
          ++k;
        }
      }
    }
  }

  void evaluate() {
    View v;
    v.now = now_;
    v.partitions = trace_.partitions;
    v.lagging_partitions = lagging_;
    v.total_lag = high_sum_ - committed_sum_;
    v.high_watermark_sum = high_sum_;
    v.committed_sum = committed_sum_;
    v.active_pollers = activePollers();
    v.invocations = invocations_;
    v.invocation_seconds = static_cast<double>(invocation_ms_) / 1000.0;
    if (auto action = policy_.evaluate(v)) {
      // Changes apply in the order they were decided (the AWS model pipelines them).
      actions_.push_back(*action);
    }
  }

  void summarize() {
    if (bursts_.empty()) {
      return;
    }
    Millis worst = 0;
    double sum = 0;
    for (const auto& b : bursts_) {
      Millis d = b.drained_after.value_or(result_.ran_for - b.at);
      result_.drained = result_.drained && b.drained_after.has_value();
      worst = std::max(worst, d);
      sum += static_cast<double>(d) / 1000.0;
    }
    result_.drain = worst;
    result_.mean_drain_s = sum / static_cast<double>(bursts_.size());
  }

  static constexpr Millis kSpawnDelay = 1 * kSecond;
  static constexpr Millis kRebalancePause = 2 * kSecond;

  const Trace& trace_;
  int max_concurrent_;
  Policy& policy_;
  std::vector<PartitionState> parts_;
  std::vector<Poller> pollers_;
  std::vector<InFlight> orphans_;
  std::vector<InFlight> spare_; // finished batches, reused
  std::deque<Millis> spawning_; // join times of pollers still starting
  std::deque<Action> actions_;
  std::vector<Burst> bursts_;
  std::vector<std::size_t> open_bursts_;
  std::mt19937_64 rng_;
  Millis noise_second_ = -1;
  double noise_factor_ = 1.0;
  Millis step_ = 100;
  Millis now_ = 0;
  int cap_ = 1;
  bool paused_ = false;
  Millis rebalance_end_ = 0;
  int lagging_ = 0;
  std::int64_t high_sum_ = 0;
  std::int64_t committed_sum_ = 0;
  std::int64_t invocations_ = 0;
  Millis invocation_ms_ = 0;
  Result result_;
};

// ---------------------------------------------------------------------------------------------
// Output

std::string duration(Millis ms) {
  char buf[32];
  double s = static_cast<double>(ms) / 1000.0;
  if (s < 120) {
    std::snprintf(buf, sizeof buf, "%.1f s", s);
  } else if (s < 2 * 3600) {
    std::snprintf(buf, sizeof buf, "%.1f min", s / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  }
  return buf;
}

std::string thousands(double value) {
  auto n = static_cast<std::int64_t>(std::llround(value));
  std::string digits = std::to_string(n);
  std::string out;
  int count = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (count > 0 && count % 3 == 0) {
      out.insert(out.begin(), ',');
    }
    out.insert(out.begin(), *it);
    ++count;
  }
  return out;
}

Millis physicalBound(const Trace& t);

std::string drainText(const Trace& t, const Result& r, bool several) {
  if (!r.drain) {
    return "n/a";
  }
  std::string text = duration(*r.drain);
  if (t.initial_backlog > 0 && t.spikes.empty() && r.drained) {
    text += " (bound +" + duration(*r.drain - physicalBound(t)) + ")";
  }
  if (!r.drained) {
    text = "> " + text + " (not drained)";
  } else if (several) {
    text += " (mean " + duration(static_cast<Millis>(r.mean_drain_s * 1000)) + ")";
  }
  return text;
}

Millis physicalBound(const Trace& t) {
  // Every partition served by its own poller from t=0, no ingest: batches per partition x duration.
  std::int64_t per_partition = (t.initial_backlog + t.partitions - 1) / t.partitions;
  int pollers = std::min(t.maximum_pollers, t.partitions);
  std::int64_t partitions_per_poller = (t.partitions + pollers - 1) / pollers;
  std::int64_t records = per_partition * partitions_per_poller;
  return (records + t.batch_size - 1) / t.batch_size * t.function_duration;
}

void printTable(const Trace& t, const std::vector<Result>& results) {
  std::printf("### %s\n\n%s; min %d, max %d pollers.", t.name.c_str(), t.summary.c_str(),
              t.minimum_pollers, t.maximum_pollers);
  if (t.initial_backlog > 0) {
    std::printf(" Physical bound (all pollers from t=0): %s.", duration(physicalBound(t)).c_str());
  }
  std::printf(" Run: %s.\n\n", t.duration > 0 ? duration(t.duration).c_str()
                                              : "until drained and back at the minimum");
  std::printf("| policy | drain%s | full scale-out | max event age | poller-seconds | peak pollers "
              "| rebalances |\n",
              t.spikes.size() > 1 ? " (worst spike)" : "");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const auto& r : results) {
    std::printf("| %s | %s | %s | %s | %s | %d | %d |\n", r.policy.c_str(),
                drainText(t, r, t.spikes.size() > 1).c_str(),
                r.full_scale ? duration(*r.full_scale).c_str() : "never",
                duration(r.max_age).c_str(), thousands(r.poller_seconds).c_str(), r.peak,
                r.rebalances);
  }
  std::printf("\n");
}

std::string seconds(std::optional<Millis> ms) {
  if (!ms) {
    return "";
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(*ms) / 1000.0);
  return buf;
}

void printCsv(const Trace& t, const std::vector<Result>& results) {
  for (const auto& r : results) {
    std::printf("%s,%s,%s,%d,%.3f,%s,%s,%.1f,%d,%d,%s\n", t.name.c_str(), r.policy.c_str(),
                seconds(r.drain).c_str(), r.drained ? 1 : 0, r.mean_drain_s,
                seconds(r.full_scale).c_str(), seconds(r.max_age).c_str(), r.poller_seconds, r.peak,
                r.rebalances, seconds(r.ran_for).c_str());
  }
}

struct Options {
  AwsModel aws;
  bool log_decisions = false;
  // kesm's scaling.maxConcurrentBatches: in its policy and in its pollers.
  int max_concurrent_batches = config::ScalingConfig{}.max_concurrent_batches;
};

std::vector<Result> runTrace(const Trace& t, const Options& options) {
  const AwsModel& aws = options.aws;
  std::vector<Result> results;
  auto run = [&](Policy& policy, std::string name) {
    Simulation sim(t, policy, std::move(name));
    results.push_back(sim.run());
    if (options.log_decisions) {
      const Result& r = results.back();
      std::fprintf(stderr, "# %s: %s: max event age %.1f s, committed at t=%.1f s\n",
                   t.name.c_str(), r.policy.c_str(), static_cast<double>(r.max_age) / 1000.0,
                   static_cast<double>(r.max_age_at) / 1000.0);
    }
  };
  const config::Mapping mapping = mappingOf(t, options.max_concurrent_batches);
  const Millis default_interval = mapping.scaling.evaluation_interval.count();
  for (Millis interval : {1 * kSecond, default_interval}) {
    KesmPolicy p(mapping, interval);
    char name[64];
    std::snprintf(name, sizeof name, "kesm (eval %lld s%s)",
                  static_cast<long long>(interval / kSecond),
                  interval == default_interval ? ", default" : "");
    if (options.log_decisions) {
      std::fprintf(stderr, "# %s: %s\n", t.name.c_str(), name);
      p.logTo(stderr);
    }
    run(p, name);
  }
  {
    KedaPolicy p(t);
    run(p, "KEDA Kafka scaler (30 s, lagThreshold 10)");
  }
  {
    AwsOnDemandPolicy p(t, aws);
    char name[96];
    std::snprintf(name, sizeof name, "AWS on-demand (60 s, +180 s, min decrease %.0f%%)",
                  aws.min_decrease * 100);
    run(p, name);
  }
  return results;
}

int usage(const char* argv0, int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: %s [--trace NAME]... [--csv] [--aws-min-decrease F] [--log-decisions]\n"
               "          [--max-concurrent-batches C]\n"
               "  --trace NAME          run one trace (repeatable); default: all\n"
               "  --csv                 CSV instead of markdown tables\n"
               "  --aws-min-decrease F  AWS model: the fraction by which lag must fall per\n"
               "                        evaluation to avoid a scale-up (default 0.05; 0 = the\n"
               "                        literal \"lag did not decrease\")\n"
               "  --log-decisions       print every change of kesm's decision to stderr\n"
               "  --max-concurrent-batches C  kesm's scaling.maxConcurrentBatches, in its policy\n"
               "                        and its pollers (default %d, the product's)\n"
               "traces:",
               argv0, kesm::config::ScalingConfig{}.max_concurrent_batches);
  for (const auto& t : traces()) {
    std::fprintf(code == 0 ? stdout : stderr, " %s", t.name.c_str());
  }
  std::fprintf(code == 0 ? stdout : stderr, "\n");
  return code;
}

} // namespace
} // namespace kesm::bench

int main(int argc, char** argv) {
  using namespace kesm::bench;
  std::vector<std::string> wanted;
  bool csv = false;
  Options options;
  AwsModel& aws = options.aws;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--trace" && i + 1 < argc) {
      wanted.emplace_back(argv[++i]);
    } else if (arg == "--csv") {
      csv = true;
    } else if (arg == "--log-decisions") {
      options.log_decisions = true;
    } else if (arg == "--aws-min-decrease" && i + 1 < argc) {
      char* end = nullptr;
      aws.min_decrease = std::strtod(argv[++i], &end);
      if (*end != '\0' || aws.min_decrease < 0 || aws.min_decrease > 1) {
        std::fprintf(stderr, "--aws-min-decrease: expected a fraction in [0, 1], got %s\n",
                     argv[i]);
        return 2;
      }
    } else if (arg == "--max-concurrent-batches" && i + 1 < argc) {
      char* end = nullptr;
      long c = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || c < 1 || c > kesm::config::kMaxConcurrentBatches) {
        std::fprintf(stderr, "--max-concurrent-batches: expected 1..%d, got %s\n",
                     kesm::config::kMaxConcurrentBatches, argv[i]);
        return 2;
      }
      options.max_concurrent_batches = static_cast<int>(c);
    } else if (arg == "--help" || arg == "-h") {
      return usage(argv[0], 0);
    } else {
      std::fprintf(stderr, "unknown or incomplete argument: %s\n", argv[i]);
      return usage(argv[0], 2);
    }
  }
  auto all = traces();
  for (const auto& name : wanted) {
    if (std::none_of(all.begin(), all.end(), [&](const Trace& t) { return t.name == name; })) {
      std::fprintf(stderr, "unknown trace: %s\n", name.c_str());
      return usage(argv[0], 2);
    }
  }
  if (csv) {
    std::printf("trace,policy,drain_s,drained,mean_drain_s,full_scale_out_s,max_event_age_s,"
                "poller_seconds,peak_pollers,rebalances,ran_for_s\n");
  }
  for (const auto& t : all) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), t.name) == wanted.end()) {
      continue;
    }
    auto results = runTrace(t, options);
    if (csv) {
      printCsv(t, results);
    } else {
      printTable(t, results);
    }
    std::fflush(stdout);
  }
  return 0;
}
