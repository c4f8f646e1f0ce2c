#pragma once

// Shared pieces of the integration tests: the mock cluster, a recording sample function,
// the group's committed offsets, waits with deadlines and a kesm child process.

#include "app/mock_kafka.h"
#include "config/config.h"
#include "config_yaml.h"
#include "samplefn/sample_function.h"
#include "scaler/lag_source.h"

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace kesm::app {
class Runtime;
} // namespace kesm::app

namespace kesm::test {

using namespace std::chrono_literals;

// Polls `condition` until it holds or the timeout passes. True when it held.
bool waitUntil(std::chrono::milliseconds timeout, const std::function<bool()>& condition,
               std::chrono::milliseconds step = 100ms);

// The body of GET `target` (/metrics, /status, ...) on the runtime's metrics port.
std::string scrape(app::Runtime& runtime, const std::string& target);

// The value of one sample in Prometheus text exposition, e.g. `kesm_x{mapping="a"}`;
// NaN when the sample is absent.
double metricValue(const std::string& exposition, const std::string& sample);

// Everything the function received, per partition in arrival order.
class Deliveries {
public:
  void add(const std::vector<samplefn::ReceivedRecord>& batch);
  std::size_t total() const;
  std::size_t distinct() const;
  std::map<std::int32_t, std::vector<std::int64_t>> perPartition() const;
  // Offsets in [0, count) of the partition never delivered.
  std::vector<std::int64_t> missing(std::int32_t partition, std::int64_t count) const;
  // First deliveries must come in offset order: an offset first seen before a smaller
  // offset was ever seen is an ordering violation. Returns a description or "".
  std::string orderViolation() const;
  bool has(std::int32_t partition, std::int64_t offset) const;

private:
  mutable std::mutex mutex_;
  std::map<std::int32_t, std::vector<std::int64_t>> arrivals_;
  std::map<std::int32_t, std::map<std::int64_t, int>> counts_;
  std::size_t total_ = 0;
};

// Produces `per_partition` records to each partition; value "p<partition>-<offset>".
void produceNumbered(const std::string& bootstrap, const std::string& topic, int partitions,
                     int per_partition);

// The group's committed offsets (next offset to read), read like the controller reads them.
std::map<std::int32_t, std::int64_t> committedOffsets(const config::Mapping& mapping);

// A child process, its stdout and stderr appended to `log_file`, stopped with SIGKILL if still
// running at the end.
class ChildProcess {
public:
  // `program`: a path, or a name looked up on PATH. `env`: NAME=VALUE entries set in the child
  // on top of this process's environment.
  ChildProcess(const std::string& program, const std::vector<std::string>& args,
               const std::string& log_file, const std::vector<std::string>& env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  void signal(int sig);
  // Waits for exit up to the timeout; returns the exit status (or -1 on timeout).
  int wait(std::chrono::milliseconds timeout);
  bool running();
  pid_t pid() const { return pid_; } // to read /proc/<pid>

private:
  pid_t pid_ = -1;
  int status_ = -1;
  bool exited_ = false;
};

// The real kesm binary as a child process.
class KesmProcess : public ChildProcess {
public:
  KesmProcess(const std::vector<std::string>& args, const std::string& log_file,
              const std::vector<std::string>& env = {});
};

std::string writeTempFile(const std::string& name, const std::string& content);

struct ReadRecord {
  std::int32_t partition = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::map<std::string, std::string> headers; // last value of each name
};

// Every record of `topic` from its low to its high watermarks, read by a plain consumer that
// joins no group. `settings`: extra librdkafka properties (security).
std::vector<ReadRecord>
readTopic(const std::string& bootstrap, const std::string& topic, int partitions,
          const std::vector<std::pair<std::string, std::string>>& settings = {});

} // namespace kesm::test
