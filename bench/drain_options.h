#pragma once

// bench/drain's command line: the options, with each scenario's defaults.

#include "bench/drain_util.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kesm::bench::drain {

enum class Scenario { kDrain, kThroughput, kLatency, kScaleUp, kMemory };
enum class Backend { kKafka, kMock };

struct Options {
  Scenario scenario = Scenario::kDrain;
  std::string scenario_name = "drain";
  std::string backend = "auto";
  std::int64_t records = 200000;
  int record_bytes = 1024;
  int partitions = 100;
  int batch_size = 100;
  milliseconds window{500};
  milliseconds latency{100};
  int min_pollers = 100;
  int max_pollers = 100;
  // inprocess: one `kesm run`; pods: max_pollers / pollers_per_pod `kesm poller` processes
  // (issue 17), each a pod of pods mode without the kubelet.
  bool pods = false;
  int pollers_per_pod = 1;
  std::optional<int> max_concurrent_batches;
  milliseconds evaluation_interval{5000};
  double rate = 1000;
  milliseconds duration{30000};
  milliseconds idle{8000};
  std::vector<int> poller_counts{1, 10, 50, 100};
  milliseconds settle{5000};
  std::string topic;
  std::string broker_dir;
  bool keep_broker = false;
  std::string kesm = KESM_BINARY;
  std::string work_dir;
  milliseconds timeout{15 * 60 * 1000};
  bool json = false;
  std::string command_line;
};

// Scenario defaults first, then the options given override them. Prints the usage and exits 0
// on --help; prints one line to stderr and exits 2 on a bad option.
Options parseOptions(int argc, char** argv);

} // namespace kesm::bench::drain
