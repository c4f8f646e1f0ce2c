#include "bench/scaling_sim_model.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <random>
#include <utility>
#include <vector>

namespace kesm::bench::sim {
namespace {

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
  Millis oldest = 0;      // produce time of the oldest record
  bool abandoned = false; // a stopping pod's grace period ended first: rewound, not committed
  std::vector<std::pair<int, std::int64_t>> parts;
};

struct Poller {
  std::vector<int> owned;
  std::size_t cursor = 0;
  std::vector<InFlight> batches; // in flight, at most max_concurrent_batches
};

// A pod that got SIGTERM: its pollers take no new batch and leave the group at `leave`.
struct Stopping {
  Millis leave = 0;
  int pollers = 0;
};

struct Burst {
  Millis at = 0;
  std::vector<std::int64_t> target; // high watermark per partition right after the burst
  int unsatisfied = 0;
  std::optional<Millis> drained_after;
};

// One run of one policy on one trace: the topic, the group and the clock. Single-threaded.
class Simulation {
public:
  Simulation(const Trace& trace, Policy& policy, std::string name, const Deployment& deployment)
      : trace_(trace), deployment_(deployment),
        max_concurrent_(std::max(1, policy.maxConcurrentBatches())), policy_(policy),
        parts_(static_cast<std::size_t>(trace.partitions)), rng_(0x6b65736d) {
    result_.policy = std::move(name);
    step_ = std::clamp<Millis>(trace.function_duration / 10, 100, 1000);
    cap_ = std::max(trace.minimum_pollers, std::min(trace.maximum_pollers, trace.partitions));
    // Pollers come in units: one thread, or one pod of pollers_per_pod.
    unit_ = deployment.pods ? std::max(1, deployment.pollers_per_pod) : 1;
    min_units_ = (trace.minimum_pollers + unit_ - 1) / unit_;
    max_units_ = (cap_ + unit_ - 1) / unit_;
    if (trace.initial_backlog > 0) {
      produceBurst(0, trace.initial_backlog);
    }
    // The minimum pollers are in the group and assigned before t=0.
    pollers_.resize(static_cast<std::size_t>(min_units_ * unit_));
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
      // 2. Control events: decisions that take effect, pollers that join or leave, rebalance end.
      applyDueActions();
      leaveDue();
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
          if (it->abandoned) {
            rewind(*it);
          } else {
            commit(*it);
          }
          it = orphans_.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& p : pollers_) {
        runPoller(p);
      }
      // 4. The policy, after the scrapes due.
      while (deployment_.channel == StatsChannel::kScrape && next_scrape_ <= now_) {
        scraped_invocations_ = invocations_;
        scraped_invocation_ms_ = invocation_ms_;
        next_scrape_ += std::max<Millis>(deployment_.scrape_interval, step_);
      }
      if (now_ >= next_eval) {
        evaluate();
        applyDueActions(); // kesm and KEDA act at once
        leaveDue();
        next_eval += policy_.interval();
      }
      // 5. Accounting over the step that starts now: a stopping pod costs until it is gone.
      int active = activePollers() + stoppingPollers();
      result_.peak = std::max(result_.peak, active);
      result_.poller_seconds += static_cast<double>(active) * static_cast<double>(step_) / 1000.0;
      // 6. The end.
      if (trace_.duration > 0) {
        if (now_ + step_ >= trace_.duration) {
          break;
        }
      } else if ((allDrained() && actions_.empty() && spawning_.empty() && stopping_.empty() &&
                  !paused_ && static_cast<int>(pollers_.size()) == min_units_ * unit_) ||
                 now_ >= safety) {
        break;
      }
    }
    result_.ran_for = now_ + step_;
    checkRecords();
    summarize();
    return result_;
  }

private:
  int activePollers() const { return static_cast<int>(pollers_.size() + spawning_.size()); }

  int stoppingPollers() const {
    int n = 0;
    for (const auto& s : stopping_) {
      n += s.pollers;
    }
    return n;
  }

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

  // `desired` pollers, rounded up to whole units (pods).
  void applyDesired(int desired) {
    int units = std::clamp((desired + unit_ - 1) / unit_, min_units_, max_units_);
    desired = units * unit_;
    int active = activePollers();
    if (desired > active) {
      Millis join = now_ + (deployment_.pods ? deployment_.pod_start : 0) + kSpawnDelay;
      for (int i = active; i < desired; ++i) {
        spawning_.push_back(join);
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
    if (deployment_.pods) {
      for (; retire > 0; retire -= unit_) {
        stopPod();
      }
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

  // SIGTERM to the pod of the highest ordinal: its last `unit_` pollers start no new batch; each
  // batch in flight finishes and commits, or is abandoned at the grace period; then they leave.
  void stopPod() {
    Stopping s{now_, unit_};
    for (int i = 0; i < unit_; ++i) {
      Poller& p = pollers_.back();
      for (auto& b : p.batches) {
        if (b.finish - now_ > deployment_.grace_period) {
          b.finish = now_ + deployment_.grace_period;
          b.abandoned = true;
        }
        s.leave = std::max(s.leave, b.finish);
        orphans_.push_back(std::move(b));
      }
      pollers_.pop_back();
    }
    stopping_.push_back(s);
  }

  // Stopped pods whose pollers leave the group now: each leave is a rebalance.
  void leaveDue() {
    for (auto it = stopping_.begin(); it != stopping_.end();) {
      if (it->leave <= now_) {
        it = stopping_.erase(it);
        startRebalance();
      } else {
        ++it;
      }
    }
  }

  // An abandoned batch's records go back to their partition, to be fetched again.
  void rewind(const InFlight& b) {
    for (const auto& [q, n] : b.parts) {
      auto& part = parts_[static_cast<std::size_t>(q)];
      part.in_flight = false;
      part.fetched -= n;
      part.unfetched.push_front({b.oldest, n});
    }
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
    if (static_cast<int>(n) >= cap_ && !result_.full_scale) {
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
    b.abandoned = false;
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
    switch (deployment_.channel) {
    case StatsChannel::kInProcess:
      v.invocations = invocations_;
      v.invocation_seconds = static_cast<double>(invocation_ms_) / 1000.0;
      break;
    case StatsChannel::kScrape:
      v.invocations = scraped_invocations_;
      v.invocation_seconds = static_cast<double>(scraped_invocation_ms_) / 1000.0;
      break;
    case StatsChannel::kNone:
      break;
    }
    if (auto action = policy_.evaluate(v)) {
      // Changes apply in the order they were decided (the AWS model pipelines them).
      actions_.push_back(*action);
    }
  }

  // Every record produced is committed, in flight, or waiting, once (an abandoned batch is
  // rewound, never lost or committed twice). A broken model aborts rather than print figures.
  void checkRecords() const {
    for (std::size_t q = 0; q < parts_.size(); ++q) {
      const auto& part = parts_[q];
      std::int64_t waiting = 0;
      for (const auto& c : part.unfetched) {
        waiting += c.count;
      }
      if (part.committed > part.fetched || part.fetched > part.high ||
          waiting != part.high - part.fetched ||
          (part.in_flight == (part.committed == part.fetched))) {
        std::fprintf(stderr,
                     "scaling_sim: %s: partition %zu: committed %lld, fetched %lld, high %lld, "
                     "waiting %lld, in flight %d\n",
                     result_.policy.c_str(), q, static_cast<long long>(part.committed),
                     static_cast<long long>(part.fetched), static_cast<long long>(part.high),
                     static_cast<long long>(waiting), part.in_flight ? 1 : 0);
        std::abort();
      }
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
  Deployment deployment_;
  int max_concurrent_;
  Policy& policy_;
  std::vector<PartitionState> parts_;
  std::vector<Poller> pollers_;
  std::vector<InFlight> orphans_;
  std::vector<InFlight> spare_; // finished batches, reused
  std::deque<Millis> spawning_; // join times of pollers still starting
  std::vector<Stopping> stopping_;
  std::deque<Action> actions_;
  std::vector<Burst> bursts_;
  std::vector<std::size_t> open_bursts_;
  std::mt19937_64 rng_;
  Millis noise_second_ = -1;
  double noise_factor_ = 1.0;
  Millis step_ = 100;
  Millis now_ = 0;
  int cap_ = 1;       // pollers: min(max, partitions), at least the minimum
  int unit_ = 1;      // pollers started or stopped together (a pod's)
  int min_units_ = 1; // units at the minimum
  int max_units_ = 1; // units to reach cap_
  bool paused_ = false;
  Millis rebalance_end_ = 0;
  int lagging_ = 0;
  std::int64_t high_sum_ = 0;
  std::int64_t committed_sum_ = 0;
  std::int64_t invocations_ = 0;
  Millis invocation_ms_ = 0;
  Millis next_scrape_ = 0;
  std::int64_t scraped_invocations_ = 0;
  Millis scraped_invocation_ms_ = 0;
  Result result_;
};

} // namespace

Result simulate(const Trace& trace, Policy& policy, std::string name,
                const Deployment& deployment) {
  Simulation sim(trace, policy, std::move(name), deployment);
  return sim.run();
}

} // namespace kesm::bench::sim
