#pragma once

// The process_* metrics Prometheus clients in other languages export (CPU seconds, resident
// and virtual memory, open and maximum descriptors, threads, start time), which prometheus-cpp
// does not collect: read from /proc at each scrape. The parsers are pure, for tests.

#include <optional>
#include <prometheus/metric_family.h>
#include <string>
#include <string_view>
#include <vector>

namespace kesm::metrics {

struct ProcessSample {
  double cpu_seconds = 0; // user + system
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double threads = 0;
  double start_time_seconds = 0; // since the Unix epoch
  double open_fds = 0;
  double max_fds = 0; // the soft limit
};

// Fields of /proc/<pid>/stat (proc(5)): the command name may hold spaces and parentheses, so
// fields are counted after its last ')'. `ticks` is sysconf(_SC_CLK_TCK), `page` the page
// size, `boot_time` the btime of /proc/stat. nullopt when the text is not a stat line.
std::optional<ProcessSample> parseProcStat(std::string_view stat, double ticks, double page,
                                           double boot_time);
// btime (seconds since the epoch) from /proc/stat; nullopt when absent.
std::optional<double> parseBootTime(std::string_view proc_stat);

// This process now, from /proc/self; families without samples when /proc cannot be read.
std::vector<prometheus::MetricFamily> collectProcessMetrics();

} // namespace kesm::metrics
