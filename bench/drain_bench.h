#pragma once

// bench/drain's run: the scenarios (drain.cc lists them), the steps they share (drain.cc) and
// the scenarios themselves (drain_scenarios.cc). Owned by the main thread.

#include "bench/drain_kafka.h"
#include "bench/drain_kesm.h"
#include "bench/drain_options.h"
#include "bench/drain_report.h"
#include "bench/drain_tally.h"
#include "bench/drain_util.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace kesm::bench::drain {

// Sets up the broker and the sample function, runs the chosen scenario and prints its report.
class Bench {
public:
  explicit Bench(Options o) : o_(std::move(o)) {}

  int run();

private:
  Backend chooseBackend();

  // librdkafka's mock cluster keeps about 5 MiB per partition and silently drops the oldest
  // records beyond it: refuse a load that would not fit.
  void checkMockSize(bool mock) const;

  std::string uniqueSuffix() const;

  // Creates and loads the topic, or reuses a topic on a kept broker that already holds
  // exactly the records asked for. Returns its watermarks.
  Watermarks loadTopic(std::int64_t records);

  struct Run {
    // One `kesm run`, or with --mode pods the `kesm poller` processes (pod 0 first), with
    // their logs and ports in the same order.
    std::vector<std::unique_ptr<KesmChild>> kesm;
    std::vector<std::string> logs;
    std::vector<std::uint16_t> ports;
    std::unique_ptr<Sampler> sampler;
    std::string group;
    Clock::time_point started; // the first spawn: time 0 of the samples
    std::vector<pid_t> pids() const;
  };

  // In pods mode (--mode pods) max_pollers / pollers_per_pod `kesm poller` processes.
  Run startKesm(int min_pollers, int max_pollers, const Watermarks& wm);

  // Checks kesm is alive; prints its log's tail and throws if it exited.
  void requireAlive(Run& run);

  // Stops the sampler, takes kesm's last CPU and memory readings (summed over the processes;
  // pss_mb and rebalances too), SIGTERMs every process at once and reports their exits.
  struct Stopped {
    ProcUsage usage;
    double pss_mb = 0;     // summed proportional set size (pssMb)
    double rebalances = 0; // summed kesm_rebalances_total
  };
  Stopped stopKesm(Run& run);

  static double firstTime(const std::vector<Sample>& samples,
                          const std::function<bool(const Sample&)>& pred);

  void reportDelivery(const Tally::Snapshot& t, std::int64_t expected);

  // drain and throughput: a preloaded backlog, kesm spawned after the load.
  int drain();

  // Records produced live at a steady rate while kesm runs; latency = receive time - CreateTime.
  int latency();

  // kesm idle at its minimum, then a burst: how fast do the running pollers reach `desired`?
  int scaleUp();

  // kesm at fixed poller counts with a light load: RSS per additional poller.
  int memory();

  Options o_;
  Report report_;
  Tally tally_;
  Broker* broker_ = nullptr;
  std::string bootstrap_, topic_, url_, value_;
  std::string exit_codes_; // of every kesm run, in order
};

} // namespace kesm::bench::drain
