#include "bench/scaling_sim_report.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace kesm::bench::sim {
namespace {

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

std::string seconds(std::optional<Millis> ms) {
  if (!ms) {
    return "";
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(*ms) / 1000.0);
  return buf;
}

} // namespace

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

void printVerdicts(const Trace& t, const std::vector<Result>& results, std::FILE* out) {
  if (t.name != "aws-burst") {
    return;
  }
  for (const auto& r : results) {
    if (r.family != Result::Family::kKesmPods) {
      continue;
    }
    auto keda = std::find_if(results.begin(), results.end(), [&](const Result& k) {
      return k.family == Result::Family::kKedaPods && k.pod_start == r.pod_start;
    });
    if (keda == results.end()) {
      continue;
    }
    const Millis limit = physicalBound(t) + r.pod_start + 5 * kSecond;
    const bool fast = r.drained && r.drain && *r.drain <= limit;
    const bool cheap = r.poller_seconds < keda->poller_seconds;
    std::fprintf(out,
                 "verdict: %s: drain %s against %s (bound %s + pod start %s + 5 s): %s; %s "
                 "poller-seconds against KEDA's %s: %s. Goal %s.\n",
                 r.policy.c_str(), r.drain ? duration(*r.drain).c_str() : "n/a",
                 duration(limit).c_str(), duration(physicalBound(t)).c_str(),
                 duration(r.pod_start).c_str(), fast ? "within" : "over",
                 thousands(r.poller_seconds).c_str(), thousands(keda->poller_seconds).c_str(),
                 cheap ? "fewer" : "not fewer", fast && cheap ? "MET" : "MISSED");
  }
}

void printCsvHeader() {
  std::printf("trace,policy,drain_s,drained,mean_drain_s,full_scale_out_s,max_event_age_s,"
              "poller_seconds,peak_pollers,rebalances,ran_for_s\n");
}

void printCsv(const Trace& t, const std::vector<Result>& results) {
  for (const auto& r : results) {
    std::printf("%s,%s,%s,%d,%.3f,%s,%s,%.1f,%d,%d,%s\n", t.name.c_str(), r.policy.c_str(),
                seconds(r.drain).c_str(), r.drained ? 1 : 0, r.mean_drain_s,
                seconds(r.full_scale).c_str(), seconds(r.max_age).c_str(), r.poller_seconds, r.peak,
                r.rebalances, seconds(r.ran_for).c_str());
  }
}

} // namespace kesm::bench::sim
