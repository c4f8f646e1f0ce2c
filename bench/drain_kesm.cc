#include "bench/drain_kesm.h"

#include "common/json.h"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <spawn.h>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace kesm::bench::drain {
namespace {

using namespace std::chrono_literals;

std::string yamlDuration(milliseconds d) { return std::to_string(d.count()) + "ms"; }

// One sample of a Prometheus exposition: the first line of `name` whose labels include all
// of `labels`; NaN when there is none.
double metric(const std::string& exposition, const std::string& name,
              const std::vector<std::pair<std::string, std::string>>& labels = {}) {
  std::istringstream in(exposition);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size() ||
        (line[name.size()] != '{' && line[name.size()] != ' ')) {
      continue;
    }
    bool all = true;
    for (const auto& [key, value] : labels) {
      all = all && line.find(key + "=\"" + value + "\"") != std::string::npos;
    }
    if (all) {
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return std::nan("");
}

// The sum of every sample of `name` (all its label sets); NaN when there is none.
double metricSum(const std::string& exposition, const std::string& name) {
  std::istringstream in(exposition);
  double sum = 0;
  bool any = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) == 0 && line.size() > name.size() &&
        (line[name.size()] == '{' || line[name.size()] == ' ')) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
      any = true;
    }
  }
  return any ? sum : std::nan("");
}

} // namespace

ProcUsage procUsage(pid_t pid) {
  ProcUsage u;
  std::string base = "/proc/" + (pid == 0 ? std::string("self") : std::to_string(pid));
  std::ifstream stat(base + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  if (auto paren = text.rfind(')'); paren != std::string::npos) {
    std::istringstream fields(text.substr(paren + 2));
    std::vector<std::string> f;
    for (std::string s; fields >> s;) {
      f.push_back(s);
    }
    // f[0] is field 3 (state); utime and stime are fields 14 and 15.
    if (f.size() > 12) {
      const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
      u.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / tick;
    }
  }
  std::ifstream status(base + "/status");
  for (std::string line; std::getline(status, line);) {
    auto kb = [&](const char* key) {
      return std::stod(line.substr(std::strlen(key))) / 1024.0; // "VmRSS:  1234 kB"
    };
    if (line.rfind("VmRSS:", 0) == 0) {
      u.rss_mb = kb("VmRSS:");
    } else if (line.rfind("VmHWM:", 0) == 0) {
      u.hwm_mb = kb("VmHWM:");
    } else if (line.rfind("Threads:", 0) == 0) {
      u.threads = std::stoi(line.substr(8));
    }
  }
  return u;
}

ProcUsage procUsageSum(const std::vector<pid_t>& pids) {
  ProcUsage sum{0, 0, 0, 0};
  for (pid_t pid : pids) {
    ProcUsage u = procUsage(pid);
    sum.cpu_seconds += u.cpu_seconds;
    sum.rss_mb += u.rss_mb;
    sum.hwm_mb += u.hwm_mb;
    sum.threads += u.threads;
  }
  return sum;
}

double pssMb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Pss:", 0) == 0) {
      return std::stod(line.substr(4)) / 1024.0; // "Pss:   1234 kB"
    }
  }
  return std::nan("");
}

KesmChild::KesmChild(const std::string& binary, const std::vector<std::string>& args,
                     const std::string& log_file) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  std::string bin = binary;
  argv.push_back(bin.data());
  for (auto& a : copy) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  started_ = Clock::now();
  int rc = posix_spawn(&pid_, bin.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    throw std::runtime_error("cannot start " + binary + ": " + std::strerror(rc));
  }
}

KesmChild::~KesmChild() {
  if (!exited_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
}

bool KesmChild::running() {
  if (!exited_ && ::waitpid(pid_, &status_, WNOHANG) == pid_) {
    exited_ = true;
  }
  return !exited_;
}

int KesmChild::exitCode() const {
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

int KesmChild::terminate(milliseconds timeout) {
  if (!running()) {
    return exitCode();
  }
  ::kill(pid_, SIGTERM);
  auto deadline = Clock::now() + timeout;
  while (running() && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  if (running()) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
    exited_ = true;
    return -1;
  }
  return exitCode();
}

std::string kesmYaml(const Options& o, const MappingSpec& m, int min_pollers, int max_pollers) {
  std::ostringstream y;
  y << "server:\n  listen: 127.0.0.1:" << m.port << "\n"
    << "mappings:\n"
    << "  - name: drain\n"
    << "    source:\n"
    << "      bootstrapServers: " << m.bootstrap << "\n"
    << "      topics: [" << m.topic << "]\n"
    << "      consumerGroupId: " << m.group << "\n"
    << "      startingPosition: TRIM_HORIZON\n"
    << "      librdkafka:\n"
    // The mock cluster waits about one session timeout per rebalance; a real broker
    // refuses anything below its group.min.session.timeout.ms (6 s).
    << "        session.timeout.ms: " << (m.mock ? 3000 : 6000) << "\n"
    << "    function:\n"
    << "      url: " << m.url << "\n"
    << "      timeout: 60s\n"
    << "    batching:\n"
    << "      batchSize: " << o.batch_size << "\n"
    << "      maximumBatchingWindow: " << yamlDuration(o.window) << "\n"
    << "    scaling:\n"
    << "      minimumPollers: " << min_pollers << "\n"
    << "      maximumPollers: " << max_pollers << "\n"
    << "      gracePeriod: 10s\n"
    << "      evaluationInterval: " << yamlDuration(o.evaluation_interval) << "\n";
  if (o.max_concurrent_batches) {
    y << "      maxConcurrentBatches: " << *o.max_concurrent_batches << "\n";
  }
  y << "    retry:\n"
    << "      initialBackoff: 100ms\n"
    << "      maximumBackoff: 2s\n";
  return y.str();
}

Sampler::Sampler(std::vector<SampledProcess> processes, bool pods, int pollers,
                 Clock::time_point t0, const std::string& bootstrap, const std::string& group,
                 const std::string& topic, Watermarks wm)
    : processes_(std::move(processes)), pods_(pods), t0_(t0), pollers_(pollers),
      committed_(bootstrap, group), topic_(topic), wm_(std::move(wm)) {
  for (const auto& p : processes_) {
    clients_.push_back(std::make_unique<kesm::net::HttpClient>(
        kesm::net::parseHttpUrl("http://127.0.0.1:" + std::to_string(p.port) + "/")));
  }
  thread_ = std::thread([this] { loop(); });
}

void Sampler::stop() {
  stopping_ = true;
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Sampler::setWatermarks(Watermarks wm) {
  std::lock_guard lock(mutex_);
  wm_ = std::move(wm);
}

std::vector<Sample> Sampler::samples() const {
  std::lock_guard lock(mutex_);
  return samples_;
}

std::optional<Sample> Sampler::last() const {
  std::lock_guard lock(mutex_);
  if (samples_.empty()) {
    return std::nullopt;
  }
  return samples_.back();
}

double Sampler::sumMetric(const std::string& name) {
  double sum = 0;
  for (auto& client : clients_) {
    auto r = client->request("GET", "/metrics", "", {}, 2s);
    sum += r.transportOk() && r.response.status == 200 ? metricSum(r.response.body, name)
                                                       : std::nan("");
  }
  return sum;
}

void Sampler::loop() {
  auto next = Clock::now();
  while (!stopping_) {
    Sample s = take();
    {
      std::lock_guard lock(mutex_);
      samples_.push_back(s);
    }
    next += 250ms;
    auto now = Clock::now();
    if (next < now) {
      next = now; // a slow read: do not catch up with a burst of samples
    }
    while (!stopping_ && Clock::now() < next) {
      std::this_thread::sleep_for(10ms);
    }
  }
}

Sample Sampler::take() {
  Sample s;
  // Pods, once every poller had a partition: the processes every 4th sample, carried forward.
  if (pods_ && all_assigned_ && previous_ && ++tick_ % 4 != 0) {
    s = *previous_;
  } else {
    std::vector<pid_t> pids;
    for (const auto& p : processes_) {
      pids.push_back(p.child->pid());
    }
    ProcUsage u = procUsageSum(pids);
    s.cpu_seconds = u.cpu_seconds;
    s.rss_mb = u.rss_mb;
    s.hwm_mb = u.hwm_mb;
    s.threads = u.threads;
    if (!pods_) {
      auto metrics = clients_[0]->request("GET", "/metrics", "", {}, 2s);
      if (metrics.transportOk() && metrics.response.status == 200) {
        const std::string& text = metrics.response.body;
        s.metric_running = metric(text, "kesm_pollers", {{"state", "running"}});
        s.metric_desired = metric(text, "kesm_pollers", {{"state", "desired"}});
        s.metric_lag_sum = metric(text, "kesm_mapping_offset_lag");
        s.metric_lag_stale = metric(text, "kesm_offset_lag_stale");
      }
    } else {
      s.running = s.active = s.desired = s.assigned_partitions = s.pollers_assigned = 0;
    }
    for (std::size_t i = 0; i < processes_.size(); ++i) {
      readStatus(i, s);
    }
  }
  s.t = secondsSince(t0_, Clock::now());
  Watermarks wm;
  {
    std::lock_guard lock(mutex_);
    wm = wm_;
  }
  const int partitions = static_cast<int>(wm.size());
  all_assigned_ = all_assigned_ || s.pollers_assigned == std::min(pollers_, partitions);
  s.committed_lag = committed_.lag(topic_, wm);
  previous_ = s;
  return s;
}

bool Sampler::readStatus(std::size_t i, Sample& s) {
  auto status = clients_[i]->request("GET", "/status", "", {}, 2s);
  if (!status.transportOk() || status.response.status != 200) {
    return false;
  }
  try {
    using kesm::json::Value;
    Value root = kesm::json::parse(status.response.body);
    auto integer = [](const Value& v, const char* name) { return std::stoi(v.find(name)->text); };
    if (pods_) {
      // `kesm poller`: {"pollers":[{"state":"running","partitions":N},...]}
      for (const Value& p : root.find("pollers")->items) {
        const std::string& state = p.find("state")->text;
        const int owned = integer(p, "partitions");
        s.running += state == "running";
        s.active += state == "running" || state == "starting";
        s.desired += 1;
        s.assigned_partitions += owned;
        s.pollers_assigned += owned > 0;
      }
      return true;
    }
    const Value& mapping = root.find("mappings")->items.at(0);
    const Value* pollers = mapping.find("pollers");
    s.running = integer(*pollers, "running");
    s.active = integer(*pollers, "active");
    s.desired = integer(*pollers, "desired");
    s.assigned_partitions = s.pollers_assigned = 0;
    for (const Value& w : pollers->find("workers")->items) {
      const int owned = integer(w, "partitions");
      s.assigned_partitions += owned;
      s.pollers_assigned += owned > 0;
    }
    return true;
  } catch (const std::exception&) {
    return false; // an unexpected shape: leave the /status fields as they are
  }
}

} // namespace kesm::bench::drain
