#include "metrics/process.h"

#include <charconv>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <sys/resource.h>
#include <unistd.h>

namespace kesm::metrics {

namespace {

std::string readAll(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

double countOpenFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    return 0;
  }
  double n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') {
      ++n;
    }
  }
  ::closedir(dir);
  return n - 1; // the descriptor opendir itself holds
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type,
                                double value, bool have) {
  prometheus::MetricFamily f{std::move(name), std::move(help), type, {}};
  if (have) {
    prometheus::ClientMetric m;
    if (type == prometheus::MetricType::Counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
    f.metric.push_back(std::move(m));
  }
  return f;
}

} // namespace

std::optional<ProcessSample> parseProcStat(std::string_view stat, double ticks, double page,
                                           double boot_time) {
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos || ticks <= 0) {
    return std::nullopt;
  }
  // After "pid (comm) ": field 3 (state) is the first; proc(5) numbers them from 1.
  std::vector<std::string_view> fields;
  std::string_view rest = stat.substr(close + 1);
  std::size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && rest[i] == ' ') {
      ++i;
    }
    std::size_t j = i;
    while (j < rest.size() && rest[j] != ' ' && rest[j] != '\n') {
      ++j;
    }
    if (j > i) {
      fields.push_back(rest.substr(i, j - i));
    }
    i = j + 1;
  }
  auto field = [&](int number, double& out) { // proc(5)'s field number, 3 and up
    const std::size_t at = static_cast<std::size_t>(number - 3);
    if (at >= fields.size()) {
      return false;
    }
    unsigned long long v = 0;
    auto [end, ec] = std::from_chars(fields[at].data(), fields[at].data() + fields[at].size(), v);
    if (ec != std::errc() || end != fields[at].data() + fields[at].size()) {
      return false;
    }
    out = static_cast<double>(v);
    return true;
  };
  double utime = 0, stime = 0, threads = 0, start = 0, vsize = 0, rss = 0;
  if (!field(14, utime) || !field(15, stime) || !field(20, threads) || !field(22, start) ||
      !field(23, vsize) || !field(24, rss)) {
    return std::nullopt;
  }
  ProcessSample s;
  s.cpu_seconds = (utime + stime) / ticks;
  s.threads = threads;
  s.start_time_seconds = boot_time + start / ticks;
  s.virtual_bytes = vsize;
  s.resident_bytes = rss * page;
  return s;
}

std::optional<double> parseBootTime(std::string_view proc_stat) {
  const auto at = proc_stat.find("\nbtime ");
  if (at == std::string_view::npos) {
    return std::nullopt;
  }
  const char* begin = proc_stat.data() + at + 7;
  unsigned long long v = 0;
  auto [end, ec] = std::from_chars(begin, proc_stat.data() + proc_stat.size(), v);
  if (ec != std::errc() || end == begin) {
    return std::nullopt;
  }
  return static_cast<double>(v);
}

std::vector<prometheus::MetricFamily> collectProcessMetrics() {
  using prometheus::MetricType;
  static const std::optional<double> boot = parseBootTime(readAll("/proc/stat"));
  const auto sample =
      parseProcStat(readAll("/proc/self/stat"), static_cast<double>(::sysconf(_SC_CLK_TCK)),
                    static_cast<double>(::sysconf(_SC_PAGESIZE)), boot.value_or(0));
  const bool have = sample.has_value() && boot.has_value();
  const ProcessSample s = sample.value_or(ProcessSample{});
  rlimit limit{};
  const bool have_limit = ::getrlimit(RLIMIT_NOFILE, &limit) == 0;
  return {
      family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
             MetricType::Counter, s.cpu_seconds, sample.has_value()),
      family("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
             s.resident_bytes, sample.has_value()),
      family("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
             s.virtual_bytes, sample.has_value()),
      family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
             MetricType::Gauge, s.start_time_seconds, have),
      family("process_threads", "Number of OS threads in the process.", MetricType::Gauge,
             s.threads, sample.has_value()),
      family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
             countOpenFds(), true),
      family("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
             static_cast<double>(limit.rlim_cur), have_limit),
  };
}

} // namespace kesm::metrics
