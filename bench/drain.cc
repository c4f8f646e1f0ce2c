// bench/drain: loads a topic, runs kesm (a separate process) against the sample function
// (in this process) and measures how kesm drains it (issue 5). Results: docs/benchmarks.md.
//
// Scenarios:
//   drain       (default) a preloaded backlog from TRIM_HORIZON: drain time against the
//               physical bound ceil(records / batch / partitions) x latency
//   throughput  one poller, a function that answers at once: records/s, MB/s, CPU s per GB
//   latency     records produced live at a steady rate: receive time - record timestamp
//   scale-up    kesm idle at its minimum, then a burst: time until running pollers reach
//               the decision (`desired`)
//   memory      kesm's RSS at several fixed poller counts: RSS per additional poller
//
// The sample function runs here so that what it received is counted independently of
// kesm: distinct (partition, offset) pairs, duplicates, per-record latency. kesm is spawned
// only once the topic is loaded, so the drain time is kesm's alone; the clock starts at the
// spawn. kesm's /metrics and /status are read every 250 ms, and the group's committed
// offsets are read with Kafka's OffsetFetch by a client that never joins the group.

#include "app/mock_kafka.h"
#include "common/json.h"
#include "net/http.h"
#include "samplefn/sample_function.h"

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <iostream>
#include <librdkafka/rdkafka.h>
#include <map>
#include <memory>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <random>
#include <spawn.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

extern char** environ;

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::atomic<bool> g_interrupted{false};

void onSignal(int) { g_interrupted = true; }

[[noreturn]] void usageError(const std::string& message) {
  std::cerr << "kesm_drain: " << message << " (try --help)\n";
  std::exit(2);
}

constexpr const char* kUsage = R"(bench/drain — load a topic, run kesm on it, measure (issue 5)

usage: bench/drain [--scenario drain|throughput|latency|scale-up|memory] [options]

  --backend kafka|mock|auto   auto (default): a real Apache Kafka broker (tests/e2e/kafka.sh)
                              when java and mvn are on PATH, else librdkafka's mock cluster
  --records N                 records to load (drain, throughput, memory) or to burst (scale-up)
  --record-bytes B            value size of each record (default 1024)
  --partitions P              partitions of the topic
  --batch-size S              kesm's batching.batchSize
  --window DURATION           kesm's batching.maximumBatchingWindow
  --latency DURATION          the sample function's time per batch
  --min-pollers A             kesm's scaling.minimumPollers
  --max-pollers B             kesm's scaling.maximumPollers
  --max-concurrent-batches C  kesm's scaling.maxConcurrentBatches (passed only when given)
  --evaluation-interval D     kesm's scaling.evaluationInterval
  --rate R --duration D       latency scenario: records/s produced live, and for how long
  --idle D                    scale-up scenario: idle time before the burst (default 8s)
  --pollers LIST              memory scenario: poller counts (default 1,10,50,100)
  --settle D                  memory scenario: wait at each count before reading RSS (default 5s)
  --topic NAME                topic (kafka: reused when it already holds exactly the records)
  --broker-dir DIR            kafka.sh state dir (default <repo>/build/drain-kafka); a broker
                              already running there is used and left running
  --keep-broker               leave a broker this run started running (to reuse its topics)
  --kesm PATH                 the kesm binary (default: the one built beside this program)
  --work-dir DIR              kesm's config and log (default /tmp/kesm-drain-<pid>)
  --timeout D                 give up waiting for the drain (default 15m)
  --json                      one JSON object on stdout instead of the report
)";

// ---------------------------------------------------------------- options

milliseconds parseDuration(const std::string& text, const std::string& option) {
  std::size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    usageError(option + ": '" + text + "' is not a duration such as 100ms, 1s or 2m");
  }
  std::string unit = text.substr(pos);
  double ms = 0;
  if (unit == "ms" || (unit.empty() && value == 0)) {
    ms = value;
  } else if (unit == "s") {
    ms = value * 1000;
  } else if (unit == "m") {
    ms = value * 60000;
  } else {
    usageError(option + ": '" + text + "' is not a duration such as 100ms, 1s or 2m");
  }
  if (ms < 0) {
    usageError(option + " must not be negative");
  }
  return milliseconds(static_cast<std::int64_t>(std::llround(ms)));
}

std::string yamlDuration(milliseconds d) { return std::to_string(d.count()) + "ms"; }

std::int64_t parseInt(const std::string& text, const std::string& option, std::int64_t low,
                      std::int64_t high) {
  std::size_t pos = 0;
  std::int64_t value = 0;
  try {
    value = std::stoll(text, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos == 0 || pos != text.size() || value < low || value > high) {
    usageError(option + ": '" + text + "' is not an integer in " + std::to_string(low) + ".." +
               std::to_string(high));
  }
  return value;
}

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

// Scenario defaults first, then the options given override them.
Options parseOptions(int argc, char** argv) {
  std::map<std::string, std::string> given;
  Options o;
  for (int i = 0; i < argc; ++i) {
    // Appended piece by piece: `" " + std::string(...)` inserts at the front of a temporary,
    // which GCC 12 at -O3 misreads, once inlined, as an overlapping memcpy (-Wrestrict).
    if (i > 0) {
      o.command_line += ' ';
    }
    o.command_line += i == 0 ? "bench/drain" : argv[i];
  }
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (a == "--json" || a == "--keep-broker") {
      given[a.substr(2)] = "1";
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      usageError("unexpected argument '" + a + "'");
    }
    std::string name = a.substr(2), value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      usageError(a + " needs a value");
    }
    given[name] = value;
  }
  if (auto it = given.find("scenario"); it != given.end()) {
    o.scenario_name = it->second;
    given.erase(it);
  }
  if (o.scenario_name == "drain") {
    o.scenario = Scenario::kDrain;
  } else if (o.scenario_name == "throughput") {
    // One poller, a function that answers at once, big batches (1 KB records: a batch of
    // 1000 is a ~1.4 MB event, well under the 6 MiB limit).
    o.scenario = Scenario::kThroughput;
    o.records = 400000;
    o.batch_size = 1000;
    o.window = 100ms;
    o.latency = 0ms;
    o.min_pollers = o.max_pollers = 1;
  } else if (o.scenario_name == "latency") {
    o.scenario = Scenario::kLatency;
    o.partitions = 10;
    o.window = 0ms;
    o.latency = 0ms;
    o.min_pollers = o.max_pollers = 1;
  } else if (o.scenario_name == "scale-up") {
    o.scenario = Scenario::kScaleUp;
    o.records = 100000;
    o.min_pollers = 1;
    o.max_pollers = 100;
    o.evaluation_interval = 1000ms;
  } else if (o.scenario_name == "memory") {
    o.scenario = Scenario::kMemory;
    o.records = 10000; // light load: 100 records per partition
    o.latency = 0ms;
  } else {
    usageError("--scenario: '" + o.scenario_name +
               "' is not drain, throughput, latency, scale-up or memory");
  }
  for (const auto& [name, value] : given) {
    const std::string opt = "--" + name;
    if (name == "backend") {
      if (value != "kafka" && value != "mock" && value != "auto") {
        usageError("--backend: '" + value + "' is not kafka, mock or auto");
      }
      o.backend = value;
    } else if (name == "records") {
      o.records = parseInt(value, opt, 1, 1'000'000'000);
    } else if (name == "record-bytes") {
      o.record_bytes = static_cast<int>(parseInt(value, opt, 0, 900'000));
    } else if (name == "partitions") {
      o.partitions = static_cast<int>(parseInt(value, opt, 1, 10000));
    } else if (name == "batch-size") {
      o.batch_size = static_cast<int>(parseInt(value, opt, 1, 10000));
    } else if (name == "window") {
      o.window = parseDuration(value, opt);
    } else if (name == "latency") {
      o.latency = parseDuration(value, opt);
    } else if (name == "min-pollers") {
      o.min_pollers = static_cast<int>(parseInt(value, opt, 1, 2000));
    } else if (name == "max-pollers") {
      o.max_pollers = static_cast<int>(parseInt(value, opt, 1, 2000));
    } else if (name == "max-concurrent-batches") {
      o.max_concurrent_batches = static_cast<int>(parseInt(value, opt, 1, 1000));
    } else if (name == "evaluation-interval") {
      o.evaluation_interval = parseDuration(value, opt);
    } else if (name == "rate") {
      o.rate = static_cast<double>(parseInt(value, opt, 1, 10'000'000));
    } else if (name == "duration") {
      o.duration = parseDuration(value, opt);
    } else if (name == "idle") {
      o.idle = parseDuration(value, opt);
    } else if (name == "settle") {
      o.settle = parseDuration(value, opt);
    } else if (name == "pollers") {
      o.poller_counts.clear();
      std::istringstream in(value);
      for (std::string item; std::getline(in, item, ',');) {
        o.poller_counts.push_back(static_cast<int>(parseInt(item, opt, 1, 2000)));
      }
      if (o.poller_counts.empty()) {
        usageError("--pollers needs a list such as 1,10,50,100");
      }
    } else if (name == "topic") {
      o.topic = value;
    } else if (name == "broker-dir") {
      o.broker_dir = value;
    } else if (name == "keep-broker") {
      o.keep_broker = true;
    } else if (name == "kesm") {
      o.kesm = value;
    } else if (name == "work-dir") {
      o.work_dir = value;
    } else if (name == "timeout") {
      o.timeout = parseDuration(value, opt);
    } else if (name == "json") {
      o.json = true;
    } else {
      usageError("unknown option --" + name);
    }
  }
  if (o.min_pollers > o.max_pollers) {
    usageError("--min-pollers must not exceed --max-pollers");
  }
  if (o.broker_dir.empty()) {
    o.broker_dir = std::string(KESM_SOURCE_DIR) + "/build/drain-kafka";
  }
  if (o.work_dir.empty()) {
    o.work_dir = "/tmp/kesm-drain-" + std::to_string(::getpid());
  }
  return o;
}

// ---------------------------------------------------------------- small helpers

double secondsSince(Clock::time_point t0, Clock::time_point t) {
  return std::chrono::duration<double>(t - t0).count();
}

bool onPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream in(path ? path : "");
  for (std::string dir; std::getline(in, dir, ':');) {
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) {
      return true;
    }
  }
  return false;
}

std::string runCommand(const std::string& command, int& status) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    throw std::runtime_error("popen failed: " + command);
  }
  std::string out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) {
    out.append(buf, n);
  }
  int rc = ::pclose(pipe);
  status = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  return out;
}

std::string lastLine(const std::string& text) {
  std::istringstream in(text);
  std::string last;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      last = line;
    }
  }
  return last;
}

std::uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) {
      ::close(fd);
    }
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) {
    return std::nan("");
  }
  auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size()))) - 1;
  k = std::min(k, values.size() - 1);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

// CPU seconds (user + system) and memory of a process, from /proc.
struct ProcUsage {
  double cpu_seconds = std::nan("");
  double rss_mb = std::nan("");
  double hwm_mb = std::nan("");
  int threads = 0;
};

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

// ---------------------------------------------------------------- report

// Figures in order, printed as "key: value" or as one JSON object.
class Report {
public:
  void num(const std::string& key, double value, int precision = 2, const std::string& unit = "") {
    std::ostringstream text;
    if (std::isnan(value)) {
      items_.push_back({key, "null", "n/a", false});
      return;
    }
    text.setf(std::ios::fixed);
    text.precision(precision);
    text << value;
    items_.push_back({key, text.str(), text.str() + (unit.empty() ? "" : " " + unit), false});
  }
  void str(const std::string& key, const std::string& value) {
    items_.push_back({key, value, value, true});
  }
  void print(bool json) const {
    if (json) {
      std::cout << "{";
      for (std::size_t i = 0; i < items_.size(); ++i) {
        std::cout << (i ? "," : "") << quote(items_[i].key) << ":"
                  << (items_[i].is_string ? quote(items_[i].raw) : items_[i].raw);
      }
      std::cout << "}\n";
      return;
    }
    std::size_t width = 0;
    for (const auto& item : items_) {
      width = std::max(width, item.key.size());
    }
    for (const auto& item : items_) {
      std::cout << "  " << item.key << std::string(width - item.key.size() + 1, ' ') << ": "
                << item.shown << "\n";
    }
  }

private:
  static std::string quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += c;
      }
    }
    return out + "\"";
  }
  struct Item {
    std::string key, raw, shown;
    bool is_string;
  };
  std::vector<Item> items_;
};

// Progress lines go to stderr, so --json leaves stdout to the result.
template <class... T> void note(const T&... parts) {
  std::ostringstream line;
  (line << ... << parts);
  std::cerr << "drain: " << line.str() << std::endl;
}

// ---------------------------------------------------------------- Kafka

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using RdKafka = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;

RdKafka newClient(rd_kafka_type_t type, const std::string& bootstrap,
                  const std::vector<std::pair<std::string, std::string>>& settings) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& key, const std::string& value) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error("librdkafka " + key + ": " + err);
    }
  };
  set("bootstrap.servers", bootstrap);
  set("log_level", "3");
  for (const auto& [key, value] : settings) {
    set(key, value);
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("rd_kafka_new: ") + err);
  }
  return RdKafka(rk);
}

// Low and high watermark per partition; nullopt when the topic does not exist.
std::optional<std::vector<std::pair<std::int64_t, std::int64_t>>>
watermarks(const std::string& bootstrap, const std::string& topic) {
  auto rk = newClient(RD_KAFKA_PRODUCER, bootstrap, {});
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk.get(), 0, t, &md, 10000);
  rd_kafka_topic_destroy(t);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(std::string("metadata: ") + rd_kafka_err2str(err));
  }
  int partitions = 0;
  bool exists = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR;
  if (exists) {
    partitions = md->topics[0].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  if (!exists) {
    return std::nullopt;
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    // Right after CreateTopics a partition may still answer NOT_LEADER: retry a while.
    auto deadline = Clock::now() + 15s;
    while ((err = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &low, &high,
                                                   10000)) != RD_KAFKA_RESP_ERR_NO_ERROR &&
           Clock::now() < deadline) {
      std::this_thread::sleep_for(200ms);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error(std::string("watermarks: ") + rd_kafka_err2str(err));
    }
    out.emplace_back(low, high);
  }
  return out;
}

// CreateTopics with the Admin API (replication factor 1), then waits for every leader.
void createKafkaTopic(const std::string& bootstrap, const std::string& topic, int partitions) {
  auto rk = newClient(RD_KAFKA_PRODUCER, bootstrap, {});
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof err);
  if (nt == nullptr) {
    throw std::runtime_error(std::string("NewTopic: ") + err);
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk.get());
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, 30000, err, sizeof err);
  rd_kafka_CreateTopics(rk.get(), &nt, 1, options, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 60000);
  std::string error;
  if (ev == nullptr) {
    error = "no answer within 60 s";
  } else if (rd_kafka_event_error(ev)) {
    error = rd_kafka_event_error_string(ev);
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      if (rd_kafka_topic_result_error(results[i])) {
        error = rd_kafka_topic_result_error_string(results[i]);
      }
    }
  }
  if (ev != nullptr) {
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(queue);
  if (!error.empty()) {
    throw std::runtime_error("create topic " + topic + ": " + error);
  }
  auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline) {
    rd_kafka_topic_t* t = rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    bool ok = rd_kafka_metadata(rk.get(), 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topics[0].partition_cnt == partitions;
    for (int i = 0; ok && i < partitions; ++i) {
      ok = md->topics[0].partitions[i].leader >= 0;
    }
    if (md != nullptr) {
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(t);
    if (ok) {
      return;
    }
    std::this_thread::sleep_for(200ms);
  }
  throw std::runtime_error("topic " + topic + " has no leaders after 30 s");
}

// A fast producer for the load: acks=1, not idempotent, no compression, 1 MB batches with
// up to 50 ms linger (or none for the latency scenario, so a record's CreateTime is the
// moment it was sent). The value buffer is not copied: it must outlive flush(). One thread.
class LoadProducer {
public:
  LoadProducer(const std::string& bootstrap, bool low_latency)
      : rk_(newClient(RD_KAFKA_PRODUCER, bootstrap,
                      {{"acks", "1"},
                       {"enable.idempotence", "false"},
                       {"compression.codec", "none"},
                       {"linger.ms", low_latency ? "0" : "50"},
                       {"batch.num.messages", "10000"},
                       {"batch.size", "1000000"},
                       {"queue.buffering.max.messages", "1000000"},
                       {"queue.buffering.max.kbytes", "1048576"},
                       {"log.connection.close", "false"},
                       // Nagle would hold a small produce request behind an unacknowledged
                       // one: delay measured as kesm's in the latency scenario.
                       {"socket.nagle.disable", low_latency ? "true" : "false"}},
                      this)) {}

  void produce(const std::string& topic, int partition, const char* value, std::size_t len) {
    while (true) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
          RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_VALUE(const_cast<char*>(value), len), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk_.get(), 5);
        continue;
      }
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(err));
      }
      break;
    }
    if (++since_poll_ >= 1000) {
      rd_kafka_poll(rk_.get(), 0);
      since_poll_ = 0;
    }
  }

  void poll() { rd_kafka_poll(rk_.get(), 0); }

  void flush() {
    if (rd_kafka_flush(rk_.get(), 300000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("producer flush: records still unacknowledged after 300 s");
    }
    if (failures_ > 0) {
      throw std::runtime_error(std::to_string(failures_.load()) +
                               " records failed to produce: " + last_error_);
    }
  }

private:
  static RdKafka newClient(rd_kafka_type_t type, const std::string& bootstrap,
                           const std::vector<std::pair<std::string, std::string>>& settings,
                           LoadProducer* self) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto set = [&](const std::string& key, const std::string& value) {
      if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) !=
          RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        throw std::runtime_error("librdkafka " + key + ": " + err);
      }
    };
    set("bootstrap.servers", bootstrap);
    set("log_level", "3");
    for (const auto& [key, value] : settings) {
      set(key, value);
    }
    rd_kafka_conf_set_dr_msg_cb(conf, &LoadProducer::onDelivery);
    rd_kafka_conf_set_opaque(conf, self);
    rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
    if (rk == nullptr) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string("producer: ") + err);
    }
    return RdKafka(rk);
  }

  static void onDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      auto* self = static_cast<LoadProducer*>(opaque);
      if (self->failures_++ == 0) {
        self->last_error_ = rd_kafka_err2str(m->err);
      }
    }
  }

  RdKafka rk_;
  std::atomic<std::int64_t> failures_{0};
  std::string last_error_;
  int since_poll_ = 0;
};

// The group's committed offsets, read with OffsetFetch by a client that has kesm's group.id
// but never subscribes, so it never joins the group. Owned by the sampler thread.
class CommittedReader {
public:
  CommittedReader(const std::string& bootstrap, const std::string& group)
      : rk_(newClient(RD_KAFKA_CONSUMER, bootstrap,
                      {{"group.id", group}, {"enable.auto.commit", "false"}})) {}

  // Sum over partitions of high - committed (a partition without a commit counts from low);
  // nullopt when the request failed.
  std::optional<std::int64_t> lag(const std::string& topic,
                                  const std::vector<std::pair<std::int64_t, std::int64_t>>& wm) {
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(wm.size()));
    for (std::size_t p = 0; p < wm.size(); ++p) {
      rd_kafka_topic_partition_list_add(list, topic.c_str(), static_cast<std::int32_t>(p));
    }
    rd_kafka_resp_err_t err = rd_kafka_committed(rk_.get(), list, 5000);
    std::optional<std::int64_t> sum;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      sum = 0;
      for (int i = 0; i < list->cnt; ++i) {
        const auto& [low, high] = wm[static_cast<std::size_t>(list->elems[i].partition)];
        std::int64_t committed = list->elems[i].offset < 0 ? low : list->elems[i].offset;
        *sum += std::max<std::int64_t>(0, high - std::max(committed, low));
      }
    }
    rd_kafka_topic_partition_list_destroy(list);
    return sum;
  }

private:
  RdKafka rk_;
};

// The broker: tests/e2e/kafka.sh's real Apache Kafka, or librdkafka's mock cluster here.
class Broker {
public:
  Broker(Backend backend, const Options& o) : backend_(backend), dir_(o.broker_dir) {
    if (backend_ == Backend::kMock) {
      mock_ = std::make_unique<kesm::app::MockKafkaCluster>();
      bootstrap_ = mock_->bootstrapServers();
      return;
    }
    int status = 0;
    std::string out = runCommand(kafkaSh() + " status --dir '" + dir_ + "' 2>/dev/null", status);
    if (status == 0) {
      std::istringstream words(out);
      std::string running;
      words >> running >> bootstrap_;
      note("using the broker already running in ", dir_, " (", bootstrap_, "); it is left running");
    } else {
      note("starting a Kafka broker in ", dir_, " (the first start fetches the jars with Maven)");
      out = runCommand(kafkaSh() + " start --dir '" + dir_ + "'", status);
      if (status != 0) {
        throw std::runtime_error("tests/e2e/kafka.sh start --dir " + dir_ + " failed");
      }
      bootstrap_ = lastLine(out);
      started_ = !o.keep_broker;
    }
  }
  ~Broker() {
    if (started_) {
      int status = 0;
      runCommand(kafkaSh() + " stop --dir '" + dir_ + "' 2>&1", status);
    }
  }
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  const std::string& bootstrap() const { return bootstrap_; }
  bool isMock() const { return backend_ == Backend::kMock; }

  // The JVM's pid, for its CPU time; 0 for the mock (it runs in this process).
  pid_t pid() const {
    if (backend_ == Backend::kMock) {
      return 0;
    }
    std::ifstream in(dir_ + "/kafka.pid");
    pid_t pid = 0;
    in >> pid;
    return pid;
  }

  void createTopic(const std::string& topic, int partitions) {
    if (mock_) {
      mock_->createTopic(topic, partitions);
    } else {
      createKafkaTopic(bootstrap_, topic, partitions);
    }
  }

private:
  static std::string kafkaSh() { return std::string(KESM_SOURCE_DIR) + "/tests/e2e/kafka.sh"; }

  Backend backend_;
  std::string dir_;
  std::string bootstrap_;
  bool started_ = false;
  std::unique_ptr<kesm::app::MockKafkaCluster> mock_;
};

// ---------------------------------------------------------------- what the function saw

// Distinct (partition, offset) pairs delivered, duplicates, first-delivery order, and the
// latency of each record. Called from the sample function's connection threads.
class Tally {
public:
  void reset(const std::vector<std::pair<std::int64_t, std::int64_t>>& wm, std::int64_t target) {
    std::lock_guard lock(mutex_);
    low_.clear();
    seen_.clear();
    max_seen_.clear();
    for (const auto& [low, high] : wm) {
      low_.push_back(low);
      seen_.emplace_back(static_cast<std::size_t>(high - low), 0);
      max_seen_.push_back(-1);
    }
    target_ = target;
    distinct_ = total_ = order_violations_ = 0;
    latencies_ms_.clear();
    done_.reset();
    first_.reset();
    last_.reset();
  }
  void setTarget(std::int64_t target) {
    std::lock_guard lock(mutex_);
    target_ = target;
    checkDoneLocked(Clock::now());
  }

  // The moment the function got the batch, before its latency.
  void received(const std::vector<kesm::samplefn::ReceivedRecord>& batch) {
    const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    std::lock_guard lock(mutex_);
    for (const auto& r : batch) {
      latencies_ms_.push_back(static_cast<double>(now_us - r.timestamp_ms * 1000) / 1000.0);
    }
  }

  // A batch the function answered with success.
  void delivered(const std::vector<kesm::samplefn::ReceivedRecord>& batch) {
    const auto now = Clock::now();
    std::lock_guard lock(mutex_);
    if (!first_) {
      first_ = now;
    }
    last_ = now;
    for (const auto& r : batch) {
      ++total_;
      auto p = static_cast<std::size_t>(r.partition);
      if (p >= seen_.size() || r.offset < low_[p]) {
        continue; // not a record of this run
      }
      auto i = static_cast<std::size_t>(r.offset - low_[p]);
      if (i >= seen_[p].size()) {
        seen_[p].resize(i + 1, 0);
      }
      if (seen_[p][i]++ == 0) {
        ++distinct_;
        if (r.offset < max_seen_[p]) {
          ++order_violations_;
        }
        max_seen_[p] = std::max(max_seen_[p], r.offset);
      }
    }
    checkDoneLocked(now);
  }

  struct Snapshot {
    std::int64_t distinct = 0, total = 0, order_violations = 0, target = 0;
    std::optional<Clock::time_point> done, first, last;
    std::vector<double> latencies_ms;
  };
  Snapshot snapshot(bool with_latencies = false) const {
    std::lock_guard lock(mutex_);
    Snapshot s{distinct_, total_, order_violations_, target_, done_, first_, last_, {}};
    if (with_latencies) {
      s.latencies_ms = latencies_ms_;
    }
    return s;
  }

private:
  void checkDoneLocked(Clock::time_point now) {
    if (!done_ && target_ > 0 && distinct_ >= target_) {
      done_ = now;
    }
  }

  mutable std::mutex mutex_;
  std::vector<std::int64_t> low_;
  std::vector<std::vector<std::uint8_t>> seen_;
  std::vector<std::int64_t> max_seen_;
  std::int64_t target_ = 0, distinct_ = 0, total_ = 0, order_violations_ = 0;
  std::vector<double> latencies_ms_;
  std::optional<Clock::time_point> done_, first_, last_;
};

// ---------------------------------------------------------------- kesm, the process

class KesmChild {
public:
  KesmChild(const std::string& binary, const std::vector<std::string>& args,
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
  ~KesmChild() {
    if (!exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status_, 0);
    }
  }
  KesmChild(const KesmChild&) = delete;
  KesmChild& operator=(const KesmChild&) = delete;

  pid_t pid() const { return pid_; }
  Clock::time_point started() const { return started_; }
  bool running() {
    if (!exited_ && ::waitpid(pid_, &status_, WNOHANG) == pid_) {
      exited_ = true;
    }
    return !exited_;
  }
  int exitCode() const {
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  }
  // SIGTERM, then waits; SIGKILL after the timeout. Returns the exit code (-1: killed).
  int terminate(milliseconds timeout) {
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

// One reading of kesm every 250 ms.
struct Sample {
  double t = 0;                                                          // seconds since the spawn
  int running = -1, active = -1, desired = -1, assigned_partitions = -1; // /status, live
  double metric_running = std::nan(""), metric_desired = std::nan("");   // once per evaluation
  double metric_lag_sum = std::nan(""), metric_lag_stale = std::nan("");
  std::optional<std::int64_t> committed_lag; // OffsetFetch, independent of kesm
  double cpu_seconds = std::nan(""), rss_mb = std::nan(""), hwm_mb = std::nan("");
  int threads = 0;
};

// Reads /metrics, /status, the group's commits and /proc every 250 ms on its own thread.
class Sampler {
public:
  Sampler(KesmChild& kesm, std::uint16_t port, const std::string& bootstrap,
          const std::string& group, const std::string& topic,
          std::vector<std::pair<std::int64_t, std::int64_t>> wm)
      : kesm_(kesm),
        client_(kesm::net::parseHttpUrl("http://127.0.0.1:" + std::to_string(port) + "/")),
        committed_(bootstrap, group), topic_(topic), wm_(std::move(wm)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Sampler() { stop(); }
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  void stop() {
    stopping_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  // The topic grew (live production): the committed lag is measured against these.
  void setWatermarks(std::vector<std::pair<std::int64_t, std::int64_t>> wm) {
    std::lock_guard lock(mutex_);
    wm_ = std::move(wm);
  }
  std::vector<Sample> samples() const {
    std::lock_guard lock(mutex_);
    return samples_;
  }
  std::optional<Sample> last() const {
    std::lock_guard lock(mutex_);
    if (samples_.empty()) {
      return std::nullopt;
    }
    return samples_.back();
  }

private:
  void loop() {
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

  Sample take() {
    Sample s;
    s.t = secondsSince(kesm_.started(), Clock::now());
    ProcUsage u = procUsage(kesm_.pid());
    s.cpu_seconds = u.cpu_seconds;
    s.rss_mb = u.rss_mb;
    s.hwm_mb = u.hwm_mb;
    s.threads = u.threads;
    auto metrics = client_.request("GET", "/metrics", "", {}, 2s);
    if (metrics.transportOk() && metrics.response.status == 200) {
      const std::string& text = metrics.response.body;
      s.metric_running = metric(text, "kesm_pollers", {{"state", "running"}});
      s.metric_desired = metric(text, "kesm_pollers", {{"state", "desired"}});
      s.metric_lag_sum = metric(text, "kesm_offset_lag_sum");
      s.metric_lag_stale = metric(text, "kesm_offset_lag_stale");
    }
    auto status = client_.request("GET", "/status", "", {}, 2s);
    if (status.transportOk() && status.response.status == 200) {
      try {
        using kesm::json::Value;
        Value root = kesm::json::parse(status.response.body);
        const Value& mapping = root.find("mappings")->items.at(0);
        const Value* pollers = mapping.find("pollers");
        auto integer = [&](const char* name) { return std::stoi(pollers->find(name)->text); };
        s.running = integer("running");
        s.active = integer("active");
        s.desired = integer("desired");
        s.assigned_partitions = 0;
        for (const Value& w : pollers->find("workers")->items) {
          s.assigned_partitions += std::stoi(w.find("partitions")->text);
        }
      } catch (const std::exception&) {
        // an unexpected shape: leave the /status fields unset
      }
    }
    std::vector<std::pair<std::int64_t, std::int64_t>> wm;
    {
      std::lock_guard lock(mutex_);
      wm = wm_;
    }
    s.committed_lag = committed_.lag(topic_, wm);
    return s;
  }

  KesmChild& kesm_;
  kesm::net::HttpClient client_;
  CommittedReader committed_;
  std::string topic_;
  mutable std::mutex mutex_;
  std::vector<std::pair<std::int64_t, std::int64_t>> wm_; // guarded by mutex_
  std::vector<Sample> samples_;                           // guarded by mutex_
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// ---------------------------------------------------------------- the run

std::int64_t sumRecords(const std::vector<std::pair<std::int64_t, std::int64_t>>& wm) {
  std::int64_t sum = 0;
  for (const auto& [low, high] : wm) {
    sum += high - low;
  }
  return sum;
}

std::string randomValue(int bytes) {
  std::string value(static_cast<std::size_t>(bytes), '\0');
  std::mt19937 rng(42);
  for (auto& c : value) {
    c = static_cast<char>(rng() & 0xff);
  }
  return value;
}

// Produces `count` records round-robin over the partitions as fast as the producer goes.
double produceBurst(const std::string& bootstrap, const std::string& topic, int partitions,
                    std::int64_t count, const std::string& value) {
  auto t0 = Clock::now();
  LoadProducer producer(bootstrap, false);
  for (std::int64_t i = 0; i < count && !g_interrupted; ++i) {
    producer.produce(topic, static_cast<int>(i % partitions), value.data(), value.size());
  }
  producer.flush();
  return secondsSince(t0, Clock::now());
}

// Waits for the condition, in steps of 50 ms; false on timeout or interrupt.
bool waitFor(milliseconds timeout, const std::function<bool()>& condition) {
  auto deadline = Clock::now() + timeout;
  while (!g_interrupted && Clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(50ms);
  }
  return condition();
}

class Bench {
public:
  explicit Bench(Options o) : o_(std::move(o)) {}

  int run() {
    Backend backend = chooseBackend();
    const bool mock = backend == Backend::kMock;
    std::string banner =
        mock ? "BACKEND: librdkafka's MOCK Kafka cluster, in this process (not a real broker: "
               "figures are not comparable with Apache Kafka)"
             : "BACKEND: a real Apache Kafka 4.4 broker (tests/e2e/kafka.sh, KRaft, loopback)";
    std::cerr << "\n==== " << banner << " ====\n\n";
    report_.str("backend", mock ? "mock" : "kafka");
    report_.str("scenario", o_.scenario_name);
    report_.str("command", o_.command_line);
    report_.str("kesm_binary", o_.kesm);
    checkMockSize(mock);
    ::mkdir(o_.work_dir.c_str(), 0755);

    Broker broker(backend, o_);
    bootstrap_ = broker.bootstrap();
    broker_ = &broker;
    value_ = randomValue(o_.record_bytes);

    kesm::samplefn::SampleFunctionOptions fn;
    fn.latency = o_.latency;
    fn.decide = [this](const std::vector<kesm::samplefn::ReceivedRecord>& batch) {
      tally_.received(batch);
      return kesm::samplefn::Verdict::kSucceed;
    };
    fn.on_batch = [this](const std::vector<kesm::samplefn::ReceivedRecord>& batch) {
      tally_.delivered(batch);
    };
    kesm::samplefn::SampleFunction function(fn);
    url_ = function.url();

    int rc = 0;
    switch (o_.scenario) {
    case Scenario::kDrain:
    case Scenario::kThroughput:
      rc = drain();
      break;
    case Scenario::kLatency:
      rc = latency();
      break;
    case Scenario::kScaleUp:
      rc = scaleUp();
      break;
    case Scenario::kMemory:
      rc = memory();
      break;
    }
    report_.str("kesm_exit_code_after_SIGTERM", exit_codes_);
    if (!o_.json) {
      std::cout << "\n==== " << banner << " ====\n";
    }
    report_.print(o_.json);
    return rc;
  }

private:
  Backend chooseBackend() {
    if (o_.backend == "kafka") {
      return Backend::kKafka;
    }
    if (o_.backend == "mock") {
      return Backend::kMock;
    }
    bool jvm = onPath("java") && onPath("mvn");
    note("--backend auto: java and mvn ", jvm ? "are" : "are NOT", " on PATH -> ",
         jvm ? "real Kafka" : "mock cluster");
    return jvm ? Backend::kKafka : Backend::kMock;
  }

  // librdkafka's mock cluster keeps about 5 MiB per partition and silently drops the oldest
  // records beyond it: refuse a load that would not fit.
  void checkMockSize(bool mock) const {
    if (!mock) {
      return;
    }
    std::int64_t records = o_.records;
    if (o_.scenario == Scenario::kLatency) {
      records =
          static_cast<std::int64_t>(o_.rate * std::chrono::duration<double>(o_.duration).count());
    }
    const std::int64_t per_partition = (records + o_.partitions - 1) / o_.partitions;
    const double bytes = static_cast<double>(per_partition) * (o_.record_bytes + 80);
    const double limit = 0.9 * 5 * 1024 * 1024;
    if (bytes > limit) {
      std::cerr << "kesm_drain: " << records << " records of " << o_.record_bytes << " bytes on "
                << o_.partitions << " partitions is " << std::llround(bytes / 1e6)
                << " MB per partition; librdkafka's mock cluster keeps only ~5 MiB per partition "
                << "and drops older records beyond that. Use --backend kafka, more --partitions "
                << "or fewer --records (at most ~"
                << static_cast<std::int64_t>(limit / (o_.record_bytes + 80)) * o_.partitions
                << " here).\n";
      std::exit(2);
    }
  }

  std::string uniqueSuffix() const {
    return std::to_string(::getpid()) + "-" +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count() %
                          1000000);
  }

  // Creates and loads the topic, or reuses a topic on a kept broker that already holds
  // exactly the records asked for. Returns its watermarks.
  std::vector<std::pair<std::int64_t, std::int64_t>> loadTopic(std::int64_t records) {
    if (topic_.empty()) {
      topic_ = o_.topic.empty()
                   ? "drain-" + std::to_string(records) + "x" + std::to_string(o_.record_bytes) +
                         "-p" + std::to_string(o_.partitions)
                   : o_.topic;
    }
    if (!broker_->isMock()) {
      if (auto wm = watermarks(bootstrap_, topic_)) {
        if (static_cast<int>(wm->size()) == o_.partitions && sumRecords(*wm) == records) {
          note("reusing topic ", topic_, ": it already holds ", records, " records on ",
               o_.partitions, " partitions");
          report_.str("load", "reused topic " + topic_);
          return *wm;
        }
        throw std::runtime_error("topic " + topic_ + " exists with " + std::to_string(wm->size()) +
                                 " partitions and " + std::to_string(sumRecords(*wm)) +
                                 " records, not what was asked: pass another --topic");
      }
    }
    broker_->createTopic(topic_, o_.partitions);
    note("loading ", records, " records of ", o_.record_bytes, " bytes into ", topic_, " (",
         o_.partitions, " partitions; acks=1, no compression, linger 50 ms, 1 MB batches)");
    double seconds = produceBurst(bootstrap_, topic_, o_.partitions, records, value_);
    auto wm = watermarks(bootstrap_, topic_);
    if (!wm || sumRecords(*wm) != records) {
      throw std::runtime_error("after the load the topic holds " +
                               std::to_string(wm ? sumRecords(*wm) : 0) + " records, not " +
                               std::to_string(records));
    }
    double mb = static_cast<double>(records) * o_.record_bytes / 1e6;
    note("loaded in ", seconds, " s (", mb / seconds, " MB/s of values)");
    report_.num("load_seconds", seconds, 2, "s");
    report_.num("load_MBps", mb / seconds, 1, "MB/s");
    return *wm;
  }

  struct Run {
    std::unique_ptr<KesmChild> kesm;
    std::unique_ptr<Sampler> sampler;
    std::string log;
    std::uint16_t port = 0;
    std::string group;
  };

  Run startKesm(int min_pollers, int max_pollers,
                const std::vector<std::pair<std::int64_t, std::int64_t>>& wm) {
    Run run;
    run.port = freePort();
    run.group = "kesm-drain-" + uniqueSuffix();
    MappingSpec m{bootstrap_, topic_, run.group, url_, run.port, broker_->isMock()};
    std::string config = o_.work_dir + "/kesm-" + std::to_string(max_pollers) + ".yaml";
    run.log = o_.work_dir + "/kesm-" + std::to_string(max_pollers) + ".log";
    std::ofstream(config) << kesmYaml(o_, m, min_pollers, max_pollers);
    note("spawning kesm (pollers ", min_pollers, "..", max_pollers, ", group ", run.group,
         "); config ", config, ", log ", run.log, "; the clock starts now");
    run.kesm = std::make_unique<KesmChild>(
        o_.kesm, std::vector<std::string>{"run", "--config", config}, run.log);
    run.sampler = std::make_unique<Sampler>(*run.kesm, run.port, bootstrap_, run.group, topic_, wm);
    return run;
  }

  // Checks kesm is alive; prints its log's tail and throws if it exited.
  void requireAlive(Run& run) {
    if (run.kesm->running()) {
      return;
    }
    int status = 0;
    std::cerr << runCommand("tail -n 30 '" + run.log + "'", status);
    throw std::runtime_error("kesm exited early with status " +
                             std::to_string(run.kesm->exitCode()) + " (log: " + run.log + ")");
  }

  // Stops the sampler, takes kesm's last CPU reading, SIGTERMs it and reports its exit.
  ProcUsage stopKesm(Run& run) {
    ProcUsage u = procUsage(run.kesm->pid());
    run.sampler->stop();
    int code = run.kesm->terminate(40s);
    exit_codes_ += (exit_codes_.empty() ? "" : ",") + std::to_string(code);
    if (code != 0) {
      note("kesm did not exit 0 after SIGTERM (", code, "); log: ", run.log);
    }
    return u;
  }

  static double firstTime(const std::vector<Sample>& samples,
                          const std::function<bool(const Sample&)>& pred) {
    for (const auto& s : samples) {
      if (pred(s)) {
        return s.t;
      }
    }
    return std::nan("");
  }

  void reportDelivery(const Tally::Snapshot& t, std::int64_t expected) {
    report_.num("records_expected", static_cast<double>(expected), 0);
    report_.num("records_delivered_distinct", static_cast<double>(t.distinct), 0);
    report_.num("records_missing", static_cast<double>(expected - t.distinct), 0);
    report_.num("duplicates", static_cast<double>(t.total - t.distinct), 0);
    report_.num("order_violations", static_cast<double>(t.order_violations), 0);
    report_.num("latency_p50_ms", percentile(t.latencies_ms, 0.50), 1, "ms");
    report_.num("latency_p99_ms", percentile(t.latencies_ms, 0.99), 1, "ms");
    report_.num("latency_max_ms", percentile(t.latencies_ms, 1.0), 1, "ms");
  }

  // drain and throughput: a preloaded backlog, kesm spawned after the load.
  int drain() {
    auto wm = loadTopic(o_.records);
    const std::int64_t expected = sumRecords(wm);
    tally_.reset(wm, expected);
    pid_t broker_pid = broker_->pid();
    ProcUsage broker0 = broker_pid ? procUsage(broker_pid) : ProcUsage{};
    ProcUsage self0 = procUsage(0);

    Run run = startKesm(o_.min_pollers, o_.max_pollers, wm);
    auto spawned = run.kesm->started();
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
      return tally_.snapshot().done && committed() && lag_zero();
    });
    ProcUsage self1 = procUsage(0);
    ProcUsage broker1 = broker_pid ? procUsage(broker_pid) : ProcUsage{};
    ProcUsage kesm_usage = stopKesm(run);
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
    const double committed_s = firstTime(
        samples, [](const Sample& s) { return s.committed_lag && *s.committed_lag == 0; });
    const double lag0_s = firstTime(
        samples, [](const Sample& s) { return s.metric_lag_stale == 0 && s.metric_lag_sum == 0; });
    const double first_running_s =
        firstTime(samples, [](const Sample& s) { return s.running > 0; });
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
    report_.str("max_concurrent_batches", o_.max_concurrent_batches
                                              ? std::to_string(*o_.max_concurrent_batches)
                                              : "not set (kesm's default)");
    report_.num("evaluation_interval_s",
                std::chrono::duration<double>(o_.evaluation_interval).count(), 1, "s");
    report_.num("first_poller_running_s", first_running_s, 2, "s after spawn");
    report_.num("drain_delivered_s", delivered_s, 2, "s (spawn -> every record received once)");
    report_.num("drain_committed_s", committed_s, 2,
                "s (spawn -> every offset committed, OffsetFetch every 250 ms)");
    report_.num("drain_lag_metric_zero_s", lag0_s, 2,
                "s (spawn -> kesm_offset_lag_sum 0; updated once per evaluation)");
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
    report_.num("kesm_cpu_s", kesm_usage.cpu_seconds, 2, "s");
    report_.num("kesm_peak_rss_MB", kesm_usage.hwm_mb, 1, "MB (VmHWM)");
    report_.num("kesm_threads_at_end", kesm_usage.threads, 0);
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
      report_.num("throughput_records_per_s_from_spawn",
                  static_cast<double>(expected) / delivered_s, 0, "records/s");
      report_.num("kesm_cpu_s_per_GB", kesm_usage.cpu_seconds / gb, 2, "CPU s per GB of values");
    }
    reportDelivery(t, expected);
    report_.str("kesm_log", run.log);
    return finished && t.distinct == expected ? 0 : 1;
  }

  // Records produced live at a steady rate while kesm runs; latency = receive time - CreateTime.
  int latency() {
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
    report_.str("kesm_log", run.log);
    return done ? 0 : 1;
  }

  // kesm idle at its minimum, then a burst: how fast do the running pollers reach `desired`?
  int scaleUp() {
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
    const double burst_start = secondsSince(run.kesm->started(), Clock::now());
    const double burst_s = produceBurst(bootstrap_, topic_, o_.partitions, o_.records, value_);
    auto grown = watermarks(bootstrap_, topic_).value();
    run.sampler->setWatermarks(grown);
    tally_.setTarget(sumRecords(grown));
    bool drained = waitFor(o_.timeout, [&] {
      requireAlive(run);
      auto s = run.sampler->last();
      return tally_.snapshot().done && s && s->committed_lag && *s->committed_lag == 0;
    });
    ProcUsage usage = stopKesm(run);
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
    const double drained_s = t.done ? secondsSince(run.kesm->started(), *t.done) : std::nan("");
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
    report_.num("running_reached_first_desired_s", met_first - burst_start, 2,
                "s after burst start");
    report_.num("peak_desired", peak_desired, 0);
    report_.num("running_reached_peak_desired_s", met_peak - burst_start, 2, "s after burst start");
    report_.num("burst_drained_s", drained_s - burst_start, 2,
                "s after burst start (every record received)");
    report_.num("kesm_cpu_s", usage.cpu_seconds, 2, "s");
    report_.num("kesm_peak_rss_MB", usage.hwm_mb, 1, "MB");
    report_.str("drained", drained ? "yes" : "NO");
    reportDelivery(t, sumRecords(grown));
    report_.str("kesm_log", run.log);
    return drained ? 0 : 1;
  }

  // kesm at fixed poller counts with a light load: RSS per additional poller.
  int memory() {
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
      ProcUsage u = stopKesm(run);
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

  Options o_;
  Report report_;
  Tally tally_;
  Broker* broker_ = nullptr;
  std::string bootstrap_, topic_, url_, value_;
  std::string exit_codes_; // of every kesm run, in order
};

} // namespace

int main(int argc, char** argv) {
  Options options = parseOptions(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return Bench(std::move(options)).run();
  } catch (const std::exception& e) {
    std::cerr << "kesm_drain: " << e.what() << "\n";
    return 1;
  }
}
