// kesm_scaling_sim: a deterministic, time-stepped simulator that drives scaling policies with
// workload traces and reports how fast each drains and what it costs. Results and how to read
// them: docs/benchmarks.md, section "Scaling simulator". This file holds the options and main;
// scaling_sim_trace.h the workloads, scaling_sim_policy.h the policies, scaling_sim_model.h the
// simulated group, scaling_sim_report.h the tables and CSV.
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
// - Pods (issue 17; Deployment in scaling_sim_model.h): pollers in pods of a StatefulSet, each
//   starting --pod-start after its replica is set, then joining as above; scale-down by the
//   highest ordinal through SIGTERM (batches in flight finish or are abandoned at the grace
//   period, then the pod's pollers leave: the rebalance starts then). The controller of pods
//   learns invocation statistics through a channel: in-process (ideal), scraped /metrics
//   (the last scrape's totals), or none (capacity from committed offsets only).
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

#include "bench/scaling_sim_model.h"
#include "bench/scaling_sim_policy.h"
#include "bench/scaling_sim_report.h"
#include "bench/scaling_sim_trace.h"
#include "config/config.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kesm::bench::sim {
namespace {

struct Options {
  AwsModel aws;
  bool log_decisions = false;
  // kesm's scaling.maxConcurrentBatches: in its policy and in its pollers.
  int max_concurrent_batches = config::ScalingConfig{}.max_concurrent_batches;
  std::vector<Millis> pod_starts; // empty: 10 s
  int pollers_per_pod = 1;
  bool keda_simple = false;     // also the first KEDA model (30 s, no HPA limits, no pod start)
  int kesm_maximum_pollers = 0; // > 0: kesm's scaling.maximumPollers instead of the trace's
  Millis pods_interval = 0;     // > 0: the kesm-pods rows' evaluation interval; else the default
  Millis grace_period = Deployment{}.grace_period;
};

std::string secondsText(Millis ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::vector<Result> runTrace(const Trace& t, const Options& options) {
  const AwsModel& aws = options.aws;
  std::vector<Result> results;
  auto run = [&](Policy& policy, std::string name, const Deployment& deployment = {},
                 Result::Family family = Result::Family::kOther) {
    results.push_back(simulate(t, policy, std::move(name), deployment));
    results.back().family = family;
    results.back().pod_start = deployment.pods ? deployment.pod_start : 0;
    if (options.log_decisions) {
      const Result& r = results.back();
      std::fprintf(stderr, "# %s: %s: max event age %.1f s, committed at t=%.1f s\n",
                   t.name.c_str(), r.policy.c_str(), static_cast<double>(r.max_age) / 1000.0,
                   static_cast<double>(r.max_age_at) / 1000.0);
    }
  };
  config::Mapping mapping = mappingOf(t, options.max_concurrent_batches);
  if (options.kesm_maximum_pollers > 0) {
    mapping.scaling.maximum_pollers = options.kesm_maximum_pollers;
  }
  const Millis default_interval = mapping.scaling.evaluation_interval.count();
  for (Millis interval : {1 * kSecond, default_interval}) {
    KesmPolicy p(mapping, interval);
    char name[64];
    std::snprintf(name, sizeof name, "kesm-threads (eval %lld s%s)",
                  static_cast<long long>(interval / kSecond),
                  interval == default_interval ? ", default" : "");
    if (options.log_decisions) {
      std::fprintf(stderr, "# %s: %s\n", t.name.c_str(), name);
      p.logTo(stderr);
    }
    run(p, name);
  }
  // Pods: the decision at the default interval, with each channel for invocation statistics.
  struct Channel {
    StatsChannel kind;
    Millis scrape;
    const char* label;
  };
  const Channel channels[] = {{StatsChannel::kInProcess, 0, "ideal stats"},
                              {StatsChannel::kScrape, 5 * kSecond, "/metrics every 5 s"},
                              {StatsChannel::kScrape, 15 * kSecond, "/metrics every 15 s"},
                              {StatsChannel::kNone, 0, "offsets only"}};
  std::vector<Millis> starts = options.pod_starts;
  if (starts.empty()) {
    starts.push_back(10 * kSecond);
  }
  for (Millis start : starts) {
    Deployment pods;
    pods.pods = true;
    pods.pod_start = start;
    pods.pollers_per_pod = options.pollers_per_pod;
    pods.grace_period = options.grace_period;
    std::string per_pod = options.pollers_per_pod == 1
                              ? ""
                              : ", " + std::to_string(options.pollers_per_pod) + " pollers/pod";
    for (const Channel& c : channels) {
      pods.channel = c.kind;
      pods.scrape_interval = c.scrape;
      const Millis interval = options.pods_interval > 0 ? options.pods_interval : default_interval;
      KesmPolicy p(mapping, interval);
      std::string eval = interval == default_interval ? "" : ", eval " + secondsText(interval);
      std::string name =
          "kesm-pods (start " + secondsText(start) + per_pod + eval + ", " + c.label + ")";
      if (options.log_decisions) {
        std::fprintf(stderr, "# %s: %s\n", t.name.c_str(), name.c_str());
        p.logTo(stderr);
      }
      run(p, name, pods, Result::Family::kKesmPods);
    }
    Deployment keda = pods;
    keda.pollers_per_pod = 1;
    keda.channel = StatsChannel::kInProcess;
    KedaHpaPolicy p(t);
    run(p, "KEDA + HPA (pods, start " + secondsText(start) + ", 15 s sync, lagThreshold 10)", keda,
        Result::Family::kKedaPods);
  }
  if (options.keda_simple) {
    KedaPolicy p(t);
    run(p, "KEDA simple (threads, 30 s, lagThreshold 10)");
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
  std::fprintf(
      code == 0 ? stdout : stderr,
      "usage: %s [--trace NAME]... [--csv] [--aws-min-decrease F] [--log-decisions]\n"
      "          [--max-concurrent-batches C] [--pod-start S]... [--pollers-per-pod N]\n"
      "          [--keda-simple] [--kesm-max-pollers N] [--pods-eval-interval S]\n"
      "          [--grace-period S]\n"
      "  --trace NAME          run one trace (repeatable); default: all\n"
      "  --csv                 CSV instead of markdown tables\n"
      "  --aws-min-decrease F  AWS model: the fraction by which lag must fall per\n"
      "                        evaluation to avoid a scale-up (default 0.05; 0 = the\n"
      "                        literal \"lag did not decrease\")\n"
      "  --log-decisions       print every change of kesm's decision to stderr\n"
      "  --max-concurrent-batches C  kesm's scaling.maxConcurrentBatches, in its policy\n"
      "                        and its pollers (default %d, the product's)\n"
      "  --pod-start S         pods: seconds from replicas set to the pod's pollers\n"
      "                        joining, e.g. 10s (repeatable: rows for each; default 10s)\n"
      "  --pollers-per-pod N   pods: kesm's pollers per pod (default 1)\n"
      "  --kesm-max-pollers N  kesm's scaling.maximumPollers (threads and pods rows)\n"
      "                        instead of the trace's maximum\n"
      "  --pods-eval-interval S  kesm-pods rows: the evaluation interval (default: the\n"
      "                        product's evaluationInterval)\n"
      "  --grace-period S      pods: a stopping pod abandons (uncommitted) the batches that\n"
      "                        would finish later than this (default 30s)\n"
      "  --keda-simple         also the first KEDA model (30 s polling, no HPA\n"
      "                        tolerance or rate limits, no pod start)\n"
      "traces:",
      argv0, kesm::config::ScalingConfig{}.max_concurrent_batches);
  for (const auto& t : traces()) {
    std::fprintf(code == 0 ? stdout : stderr, " %s", t.name.c_str());
  }
  std::fprintf(code == 0 ? stdout : stderr, "\n");
  return code;
}

} // namespace
} // namespace kesm::bench::sim

int main(int argc, char** argv) {
  using namespace kesm::bench::sim;
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
    } else if (arg == "--pod-start" && i + 1 < argc) {
      char* end = nullptr;
      double s = std::strtod(argv[++i], &end);
      if (end == argv[i] || (std::string_view(end) != "" && std::string_view(end) != "s") ||
          s < 0 || s > 600) {
        std::fprintf(stderr, "--pod-start: expected seconds in [0, 600] (e.g. 10s), got %s\n",
                     argv[i]);
        return 2;
      }
      options.pod_starts.push_back(static_cast<Millis>(s * 1000));
    } else if (arg == "--pollers-per-pod" && i + 1 < argc) {
      char* end = nullptr;
      long n = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || n < 1 || n > 1000) {
        std::fprintf(stderr, "--pollers-per-pod: expected 1..1000, got %s\n", argv[i]);
        return 2;
      }
      options.pollers_per_pod = static_cast<int>(n);
    } else if (arg == "--kesm-max-pollers" && i + 1 < argc) {
      char* end = nullptr;
      long n = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || n < 1 || n > 100000) {
        std::fprintf(stderr, "--kesm-max-pollers: expected a positive count, got %s\n", argv[i]);
        return 2;
      }
      options.kesm_maximum_pollers = static_cast<int>(n);
    } else if (arg == "--pods-eval-interval" && i + 1 < argc) {
      char* end = nullptr;
      double s = std::strtod(argv[++i], &end);
      if (end == argv[i] || (std::string_view(end) != "" && std::string_view(end) != "s") ||
          s < 0.1 || s > 600) {
        std::fprintf(stderr, "--pods-eval-interval: expected seconds in [0.1, 600], got %s\n",
                     argv[i]);
        return 2;
      }
      options.pods_interval = static_cast<Millis>(s * 1000);
    } else if (arg == "--grace-period" && i + 1 < argc) {
      char* end = nullptr;
      double s = std::strtod(argv[++i], &end);
      if (end == argv[i] || (std::string_view(end) != "" && std::string_view(end) != "s") ||
          s < 0 || s > 3600) {
        std::fprintf(stderr, "--grace-period: expected seconds in [0, 3600], got %s\n", argv[i]);
        return 2;
      }
      options.grace_period = static_cast<Millis>(s * 1000);
    } else if (arg == "--keda-simple") {
      options.keda_simple = true;
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
    printCsvHeader();
  }
  for (const auto& t : all) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), t.name) == wanted.end()) {
      continue;
    }
    auto results = runTrace(t, options);
    if (csv) {
      printCsv(t, results);
      printVerdicts(t, results, stderr);
    } else {
      printTable(t, results);
      printVerdicts(t, results, stdout);
      std::printf("\n");
    }
    std::fflush(stdout);
  }
  return 0;
}
