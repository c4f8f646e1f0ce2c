// bench/drain's scenarios, each a member of Bench (drain_bench.h).

#include "bench/drain_bench.h"

#include <algorithm>
#include <cmath>
#include <thread>

namespace kesm::bench::drain {

using namespace std::chrono_literals;

int Bench::drain() {
  auto wm = loadTopic(o_.records);
  const std::int64_t expected = sumRecords(wm);
  tally_.reset(wm, expected);
  pid_t broker_pid = broker_->pid();
  ProcUsage broker0 = broker_pid ? procUsage(broker_pid) : ProcUsage{};
  ProcUsage self0 = procUsage(0);

  Run run = startKesm(o_.min_pollers, o_.max_pollers, wm);
  auto spawned = run.started;
  auto committed = [&] {
    auto s = run.sampler->last();
    return s && s->committed_lag && *s->committed_lag == 0;
  };
  auto lag_zero = [&] {
    auto s = run.sampler->last();
    return s && s->metric_lag_stale == 0 && s->metric_lag_sum == 0;
  };
  std::int64_t last_distinct = -1;
  auto last_report = Clock::now();
  bool finished = waitFor(o_.timeout, [&] {
    requireAlive(run);
    if (Clock::now() - last_report >= 5s) {
      last_report = Clock::now();
      auto t = tally_.snapshot();
      auto s = run.sampler->last();
      if (t.distinct != last_distinct) {
        note(std::llround(secondsSince(spawned, Clock::now())), " s: delivered ", t.distinct, "/",
             expected, ", pollers running ", s ? s->running : -1);
        last_distinct = t.distinct;
      }
    }
    return tally_.snapshot().done && committed();
  });
  // Read at once, before kesm run's wait for its lag metric below (pods have none): the
  // figure both modes are compared on.
  const ProcUsage at_drained = procUsageSum(run.pids());
  const double at_drained_s = secondsSince(spawned, Clock::now());
  if (finished && !o_.pods) {
    finished = waitFor(o_.timeout, [&] {
      requireAlive(run);
      return lag_zero();
    });
  }
  ProcUsage self1 = procUsage(0);
  ProcUsage broker1 = broker_pid ? procUsage(broker_pid) : ProcUsage{};
  const Stopped stopped = stopKesm(run);
  const ProcUsage& kesm_usage = stopped.usage;
  auto samples = run.sampler->samples();
  auto t = tally_.snapshot(true);
  if (!finished) {
    note("NOT DRAINED within --timeout (or interrupted): figures below are partial");
  }
  report_.str("drained", finished ? "yes" : "NO");

  const double latency_s = std::chrono::duration<double>(o_.latency).count();
  const auto batches_per_partition =
      (expected + static_cast<std::int64_t>(o_.batch_size) * o_.partitions - 1) /
      (static_cast<std::int64_t>(o_.batch_size) * o_.partitions);
  const double bound = static_cast<double>(batches_per_partition) * latency_s;
  const double delivered_s = t.done ? secondsSince(spawned, *t.done) : std::nan("");
  const double committed_s =
      firstTime(samples, [](const Sample& s) { return s.committed_lag && *s.committed_lag == 0; });
  const double lag0_s = firstTime(
      samples, [](const Sample& s) { return s.metric_lag_stale == 0 && s.metric_lag_sum == 0; });
  const double first_running_s = firstTime(samples, [](const Sample& s) { return s.running > 0; });
  const int pollers = o_.max_pollers;
  const int assignable = std::min(pollers, o_.partitions);
  const double all_assigned_s =
      firstTime(samples, [&](const Sample& s) { return s.pollers_assigned == assignable; });
  double peak_rss_sum = 0;
  int peak_threads = 0;
  for (const auto& s : samples) {
    peak_rss_sum = std::max(peak_rss_sum, s.rss_mb);
    peak_threads = std::max(peak_threads, s.threads);
  }
  int peak = 0;
  double poller_seconds = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    peak = std::max(peak, samples[i].running);
    if (i > 0 && !(samples[i].t > committed_s)) {
      poller_seconds += std::max(0, samples[i - 1].active) * (samples[i].t - samples[i - 1].t);
    }
  }
  const int initial = o_.min_pollers;
  const double first_scale_up_s =
      firstTime(samples, [&](const Sample& s) { return s.running > initial; });
  const double peak_s = firstTime(samples, [&](const Sample& s) { return s.running == peak; });

  report_.num("records", static_cast<double>(expected), 0);
  report_.num("record_bytes", o_.record_bytes, 0);
  report_.num("partitions", o_.partitions, 0);
  report_.num("batch_size", o_.batch_size, 0);
  report_.num("function_latency_ms", static_cast<double>(o_.latency.count()), 0, "ms");
  report_.num("min_pollers", o_.min_pollers, 0);
  report_.num("max_pollers", o_.max_pollers, 0);
  report_.str("mode", o_.pods ? "pods" : "inprocess");
  report_.num("processes", static_cast<double>(run.kesm.size()), 0,
              o_.pods ? "`kesm poller` processes" : "`kesm run` process");
  report_.num("pollers_per_process", o_.pods ? o_.pollers_per_pod : o_.max_pollers, 0);
  report_.str("max_concurrent_batches", o_.max_concurrent_batches
                                            ? std::to_string(*o_.max_concurrent_batches)
                                            : "not set (kesm's default)");
  report_.num("evaluation_interval_s",
              std::chrono::duration<double>(o_.evaluation_interval).count(), 1, "s");
  report_.num("first_poller_running_s", first_running_s, 2, "s after spawn");
  report_.num("all_pollers_assigned_s", all_assigned_s, 2,
              "s after spawn (" + std::to_string(assignable) +
                  " pollers each own a partition, /status; 1 s resolution in pods mode once met)");
  report_.num("drain_delivered_s", delivered_s, 2, "s (spawn -> every record received once)");
  report_.num("drain_committed_s", committed_s, 2,
              "s (spawn -> every offset committed, OffsetFetch every 250 ms)");
  report_.num("drain_lag_metric_zero_s", lag0_s, 2,
              "s (spawn -> kesm_mapping_offset_lag 0; updated once per evaluation)");
  report_.num("drain_from_first_running_s", delivered_s - first_running_s, 2, "s");
  if (o_.scenario == Scenario::kDrain) {
    report_.num("bound_s", bound, 2, "s (ceil(records/batch/partitions) x latency)");
    report_.num("ratio_delivered_to_bound", delivered_s / bound, 2, "x");
    report_.num("ratio_committed_to_bound", committed_s / bound, 2, "x");
    report_.num("ratio_from_first_running_to_bound", (delivered_s - first_running_s) / bound, 2,
                "x");
  }
  report_.num("peak_pollers_running", peak, 0);
  report_.num("first_scale_up_s", first_scale_up_s, 2, "s after spawn");
  report_.num("peak_pollers_reached_s", peak_s, 2, "s after spawn");
  report_.num("poller_seconds", poller_seconds, 1, "(active pollers, spawn -> committed)");
  report_.num("kesm_cpu_s", kesm_usage.cpu_seconds, 2, "s (every kesm process, at the SIGTERM)");
  report_.num("kesm_cpu_s_at_drained", at_drained.cpu_seconds, 2,
              "s (every kesm process, utime + stime, once delivered and committed)");
  report_.num("kesm_cpu_read_at_s", at_drained_s, 2, "s after spawn");
  report_.num("kesm_cpu_s_per_poller", at_drained.cpu_seconds / pollers, 3, "s (at drained)");
  report_.num("kesm_peak_rss_MB", kesm_usage.hwm_mb, 1, "MB (VmHWM, summed over processes)");
  report_.num("kesm_peak_rss_sum_MB", peak_rss_sum, 1,
              "MB (largest sum of VmRSS over processes at one sample)");
  report_.num("kesm_rss_MB_at_end", kesm_usage.rss_mb, 1, "MB (VmRSS, summed)");
  report_.num("kesm_pss_MB_at_end", stopped.pss_mb, 1,
              "MB (Pss, summed: shared pages counted once)");
  report_.num("kesm_peak_rss_MB_per_poller", kesm_usage.hwm_mb / pollers, 2,
              "MB (VmHWM sum / pollers)");
  report_.num("kesm_pss_MB_per_poller", stopped.pss_mb / pollers, 2, "MB");
  report_.num("kesm_threads_at_end", kesm_usage.threads, 0);
  report_.num("kesm_peak_threads", peak_threads, 0, "(summed, largest sample)");
  report_.num("rebalance_callbacks", stopped.rebalances, 0,
              "(kesm_rebalances_total, assign + revoke, summed over processes)");
  report_.num("function_process_cpu_s", self1.cpu_seconds - self0.cpu_seconds, 2,
              "s (this process: sample function, sampler" +
                  std::string(broker_->isMock() ? ", mock broker)" : ")"));
  if (broker_pid) {
    report_.num("broker_cpu_s", broker1.cpu_seconds - broker0.cpu_seconds, 2, "s");
  }
  if (o_.scenario == Scenario::kThroughput && t.first && t.last) {
    const double span = secondsSince(*t.first, *t.last);
    const double rate = static_cast<double>(t.distinct) / span;
    const double gb = static_cast<double>(expected) * o_.record_bytes / 1e9;
    report_.num("throughput_records_per_s", rate, 0, "records/s (first to last delivery)");
    report_.num("throughput_MBps", rate * o_.record_bytes / 1e6, 1, "MB/s of record values");
    report_.num("throughput_records_per_s_from_spawn", static_cast<double>(expected) / delivered_s,
                0, "records/s");
    report_.num("kesm_cpu_s_per_GB", kesm_usage.cpu_seconds / gb, 2, "CPU s per GB of values");
  }
  reportDelivery(t, expected);
  report_.str("kesm_log", run.logs[0]);
  return finished && t.distinct == expected ? 0 : 1;
}

int Bench::latency() {
  topic_ = o_.topic.empty() ? "drain-latency-" + uniqueSuffix() : o_.topic;
  broker_->createTopic(topic_, o_.partitions);
  auto wm = watermarks(bootstrap_, topic_).value();
  tally_.reset(wm, 0);
  Run run = startKesm(o_.min_pollers, o_.max_pollers, wm);
  bool assigned = waitFor(60s, [&] {
    requireAlive(run);
    auto s = run.sampler->last();
    return s && s->running >= o_.min_pollers && s->assigned_partitions == o_.partitions;
  });
  if (!assigned) {
    throw std::runtime_error("kesm's pollers did not own every partition within 60 s");
  }
  std::this_thread::sleep_for(2s); // let the fetchers settle into their long polls
  const std::int64_t count =
      static_cast<std::int64_t>(o_.rate * std::chrono::duration<double>(o_.duration).count());
  note("producing ", count, " records at ", o_.rate, "/s for ", o_.duration.count() / 1000.0,
       " s (linger 0: CreateTime is the moment of sending)");
  {
    LoadProducer producer(bootstrap_, true);
    auto t0 = Clock::now();
    for (std::int64_t i = 0; i < count && !g_interrupted; ++i) {
      std::this_thread::sleep_until(
          t0 + std::chrono::microseconds(static_cast<std::int64_t>(1e6 * i / o_.rate)));
      producer.produce(topic_, static_cast<int>(i % o_.partitions), value_.data(), value_.size());
      producer.poll();
    }
    producer.flush();
  }
  tally_.setTarget(count);
  bool done = waitFor(60s, [&] { return tally_.snapshot().done.has_value(); });
  stopKesm(run);
  auto t = tally_.snapshot(true);
  report_.num("rate_per_s", o_.rate, 0);
  report_.num("duration_s", std::chrono::duration<double>(o_.duration).count(), 1, "s");
  report_.num("partitions", o_.partitions, 0);
  report_.num("pollers", o_.min_pollers, 0);
  report_.num("batch_size", o_.batch_size, 0);
  report_.num("window_ms", static_cast<double>(o_.window.count()), 0, "ms");
  report_.num("latency_p90_ms", percentile(t.latencies_ms, 0.90), 1, "ms");
  report_.num("latency_p999_ms", percentile(t.latencies_ms, 0.999), 1, "ms");
  report_.str("drained", done ? "yes" : "NO");
  reportDelivery(t, count);
  report_.str("kesm_log", run.logs[0]);
  return done ? 0 : 1;
}

int Bench::scaleUp() {
  topic_ = o_.topic.empty() ? "drain-scaleup-" + uniqueSuffix() : o_.topic;
  broker_->createTopic(topic_, o_.partitions);
  auto wm = watermarks(bootstrap_, topic_).value();
  tally_.reset(wm, 0);
  Run run = startKesm(o_.min_pollers, o_.max_pollers, wm);
  bool idle = waitFor(60s, [&] {
    requireAlive(run);
    auto s = run.sampler->last();
    return s && s->running == o_.min_pollers && s->assigned_partitions == o_.partitions &&
           s->metric_lag_stale == 0;
  });
  if (!idle) {
    throw std::runtime_error("kesm did not settle at its minimum within 60 s");
  }
  std::this_thread::sleep_for(o_.idle);
  note("burst: ", o_.records, " records of ", o_.record_bytes, " bytes");
  const double burst_start = secondsSince(run.started, Clock::now());
  const double burst_s = produceBurst(bootstrap_, topic_, o_.partitions, o_.records, value_);
  auto grown = watermarks(bootstrap_, topic_).value();
  run.sampler->setWatermarks(grown);
  tally_.setTarget(sumRecords(grown));
  bool drained = waitFor(o_.timeout, [&] {
    requireAlive(run);
    auto s = run.sampler->last();
    return tally_.snapshot().done && s && s->committed_lag && *s->committed_lag == 0;
  });
  ProcUsage usage = stopKesm(run).usage;
  auto samples = run.sampler->samples();
  auto t = tally_.snapshot(true);
  // The first decision above the minimum, the first time running pollers met it, and the
  // largest decision of the burst and when running pollers met that one.
  double first_up = std::nan(""), met_first = std::nan(""), met_peak = std::nan("");
  int first_desired = 0, peak_desired = 0;
  for (const auto& s : samples) {
    if (s.t < burst_start) {
      continue;
    }
    if (std::isnan(first_up) && s.desired > o_.min_pollers) {
      first_up = s.t;
      first_desired = s.desired;
    }
    peak_desired = std::max(peak_desired, s.desired);
  }
  for (const auto& s : samples) {
    if (s.t < burst_start || std::isnan(first_up)) {
      continue;
    }
    if (std::isnan(met_first) && s.t >= first_up && s.running >= first_desired) {
      met_first = s.t;
    }
    if (std::isnan(met_peak) && s.running >= peak_desired) {
      met_peak = s.t;
    }
  }
  const double drained_s = t.done ? secondsSince(run.started, *t.done) : std::nan("");
  report_.num("records", static_cast<double>(o_.records), 0);
  report_.num("partitions", o_.partitions, 0);
  report_.num("batch_size", o_.batch_size, 0);
  report_.num("function_latency_ms", static_cast<double>(o_.latency.count()), 0, "ms");
  report_.num("min_pollers", o_.min_pollers, 0);
  report_.num("max_pollers", o_.max_pollers, 0);
  report_.num("evaluation_interval_s",
              std::chrono::duration<double>(o_.evaluation_interval).count(), 1, "s");
  report_.num("burst_produce_s", burst_s, 2, "s (the burst itself)");
  report_.num("first_desired_above_min_s", first_up - burst_start, 2, "s after burst start");
  report_.num("first_desired", first_desired, 0);
  report_.num("running_reached_first_desired_s", met_first - burst_start, 2, "s after burst start");
  report_.num("peak_desired", peak_desired, 0);
  report_.num("running_reached_peak_desired_s", met_peak - burst_start, 2, "s after burst start");
  report_.num("burst_drained_s", drained_s - burst_start, 2,
              "s after burst start (every record received)");
  report_.num("kesm_cpu_s", usage.cpu_seconds, 2, "s");
  report_.num("kesm_peak_rss_MB", usage.hwm_mb, 1, "MB");
  report_.str("drained", drained ? "yes" : "NO");
  reportDelivery(t, sumRecords(grown));
  report_.str("kesm_log", run.logs[0]);
  return drained ? 0 : 1;
}

int Bench::memory() {
  auto wm = loadTopic(o_.records);
  std::vector<std::pair<int, double>> points;
  bool ok = true;
  for (int n : o_.poller_counts) {
    tally_.reset(wm, sumRecords(wm));
    Run run = startKesm(n, n, wm);
    bool settled = waitFor(o_.timeout, [&] {
      requireAlive(run);
      auto s = run.sampler->last();
      return s && s->running == n && tally_.snapshot().done && s->committed_lag &&
             *s->committed_lag == 0;
    });
    std::this_thread::sleep_for(o_.settle);
    ProcUsage u = stopKesm(run).usage;
    ok = ok && settled;
    note(n, " pollers: RSS ", u.rss_mb, " MB, VmHWM ", u.hwm_mb, " MB, ", u.threads, " threads",
         settled ? "" : " (did NOT settle)");
    report_.num("rss_MB_at_" + std::to_string(n), u.rss_mb, 1, "MB");
    report_.num("hwm_MB_at_" + std::to_string(n), u.hwm_mb, 1, "MB");
    report_.num("threads_at_" + std::to_string(n), u.threads, 0);
    points.emplace_back(n, u.rss_mb);
  }
  if (points.size() >= 2) {
    // Least-squares slope of RSS over pollers.
    double mx = 0, my = 0;
    for (const auto& [x, y] : points) {
      mx += x;
      my += y;
    }
    mx /= static_cast<double>(points.size());
    my /= static_cast<double>(points.size());
    double sxy = 0, sxx = 0;
    for (const auto& [x, y] : points) {
      sxy += (x - mx) * (y - my);
      sxx += (x - mx) * (x - mx);
    }
    report_.num("rss_MB_per_additional_poller", sxx > 0 ? sxy / sxx : std::nan(""), 2,
                "MB (least-squares slope)");
  }
  report_.num("records_per_partition",
              static_cast<double>(sumRecords(wm)) / static_cast<double>(o_.partitions), 0);
  report_.str("settled", ok ? "yes" : "NO");
  return ok ? 0 : 1;
}

} // namespace kesm::bench::drain
