#pragma once

// kesm as bench/drain runs it: a child process with its config, and the sampler that reads its
// /metrics, /status, the group's commits and /proc while it runs.

#include "bench/drain_kafka.h"
#include "bench/drain_options.h"
#include "bench/drain_util.h"
#include "net/http.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>
#include <thread>
#include <vector>

namespace kesm::bench::drain {

// CPU seconds (user + system) and memory of a process, from /proc.
struct ProcUsage {
  double cpu_seconds = std::nan("");
  double rss_mb = std::nan("");
  double hwm_mb = std::nan("");
  int threads = 0;
};

// `pid`'s usage now; pid 0 reads this process. Fields it cannot read stay NaN or 0.
ProcUsage procUsage(pid_t pid);

// The sum over `pids` (RSS and VmHWM summed too: each process's own peak, not a joint one).
ProcUsage procUsageSum(const std::vector<pid_t>& pids);

// Proportional set size in MB (/proc/PID/smaps_rollup): shared pages (the kesm binary, its
// libraries) divided among the processes mapping them, so a sum over processes is the memory
// they take together. NaN when unreadable. Walks the page tables: not for every sample.
double pssMb(pid_t pid);

// kesm spawned with stdout and stderr to `log_file`; SIGKILLed if still running when
// destroyed. Owned by the main thread.
class KesmChild {
public:
  KesmChild(const std::string& binary, const std::vector<std::string>& args,
            const std::string& log_file);
  ~KesmChild();
  KesmChild(const KesmChild&) = delete;
  KesmChild& operator=(const KesmChild&) = delete;

  pid_t pid() const { return pid_; }
  Clock::time_point started() const { return started_; }
  bool running();
  int exitCode() const;
  // SIGTERM, then waits; SIGKILL after the timeout. Returns the exit code (-1: killed).
  int terminate(milliseconds timeout);

private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
  Clock::time_point started_;
};

struct MappingSpec {
  std::string bootstrap, topic, group, url;
  std::uint16_t port = 0;
  bool mock = false;
};

// kesm's YAML config: one mapping of `m`'s topic to `m`'s function, with the options' batching
// and scaling.
std::string kesmYaml(const Options& o, const MappingSpec& m, int min_pollers, int max_pollers);

// One reading of kesm every 250 ms.
struct Sample {
  double t = 0;                                                          // seconds since the spawn
  int running = -1, active = -1, desired = -1, assigned_partitions = -1; // /status, live
  int pollers_assigned = -1; // pollers owning at least one partition (/status), live
  double metric_running = std::nan(""), metric_desired = std::nan(""); // once per evaluation
  double metric_lag_sum = std::nan(""), metric_lag_stale = std::nan("");
  std::optional<std::int64_t> committed_lag; // OffsetFetch, independent of kesm
  double cpu_seconds = std::nan(""), rss_mb = std::nan(""), hwm_mb = std::nan(""); // summed
  int threads = 0;
};

// A process the sampler reads: its /status (and, for `kesm run`, /metrics) on `port`.
struct SampledProcess {
  KesmChild* child;
  std::uint16_t port;
};

// Reads /metrics, /status, the group's commits and /proc every 250 ms on its own thread.
// `pods`: the processes are `kesm poller`s (their /status shape; no /metrics, no lag metric),
// read every 250 ms until every poller owns a partition, then every 1 s (100 processes' /status
// every 250 ms would cost them CPU the drain needs); the commits stay at 250 ms.
class Sampler {
public:
  // `pollers`: of all processes together.
  Sampler(std::vector<SampledProcess> processes, bool pods, int pollers, Clock::time_point t0,
          const std::string& bootstrap, const std::string& group, const std::string& topic,
          Watermarks wm);
  ~Sampler() { stop(); }
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  void stop();
  // The topic grew (live production): the committed lag is measured against these.
  void setWatermarks(Watermarks wm);
  std::vector<Sample> samples() const;
  std::optional<Sample> last() const;
  // The sum over the processes of every sample of a metric (their /metrics); after stop().
  double sumMetric(const std::string& name);

private:
  void loop();

  Sample take();
  // Adds process i's /status to `s`; false when it did not answer.
  bool readStatus(std::size_t i, Sample& s);

  std::vector<SampledProcess> processes_;
  bool pods_;
  Clock::time_point t0_;
  std::vector<std::unique_ptr<kesm::net::HttpClient>> clients_; // one per process
  int pollers_;
  std::optional<Sample> previous_; // the sampler thread's own, as are the two below
  bool all_assigned_ = false;
  int tick_ = 0;
  CommittedReader committed_;
  std::string topic_;
  mutable std::mutex mutex_;
  Watermarks wm_;               // guarded by mutex_
  std::vector<Sample> samples_; // guarded by mutex_
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

} // namespace kesm::bench::drain
