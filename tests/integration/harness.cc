#include "harness.h"

#include "app/runtime.h"
#include "net/http.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <librdkafka/rdkafkacpp.h>
#include <memory>
#include <set>
#include <spawn.h>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace kesm::test {

std::string scrape(app::Runtime& runtime, const std::string& target) {
  net::HttpClient client(
      net::parseHttpUrl("http://127.0.0.1:" + std::to_string(runtime.metricsPort()) + "/"));
  return client.request("GET", target, "", {}, 5s).response.body;
}

double metricValue(const std::string& exposition, const std::string& sample) {
  std::size_t at = 0;
  while ((at = exposition.find(sample + " ", at)) != std::string::npos) {
    if (at == 0 || exposition[at - 1] == '\n') {
      return std::stod(exposition.substr(at + sample.size() + 1));
    }
    at += sample.size();
  }
  return std::nan("");
}

bool waitUntil(std::chrono::milliseconds timeout, const std::function<bool()>& condition,
               std::chrono::milliseconds step) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(step);
  }
}

void Deliveries::add(const std::vector<samplefn::ReceivedRecord>& batch) {
  std::lock_guard lock(mutex_);
  for (const auto& r : batch) {
    arrivals_[r.partition].push_back(r.offset);
    counts_[r.partition][r.offset]++;
    ++total_;
  }
}

std::size_t Deliveries::total() const {
  std::lock_guard lock(mutex_);
  return total_;
}

std::size_t Deliveries::distinct() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [p, offsets] : counts_) {
    n += offsets.size();
  }
  return n;
}

std::map<std::int32_t, std::vector<std::int64_t>> Deliveries::perPartition() const {
  std::lock_guard lock(mutex_);
  return arrivals_;
}

std::vector<std::int64_t> Deliveries::missing(std::int32_t partition, std::int64_t count) const {
  std::lock_guard lock(mutex_);
  std::vector<std::int64_t> out;
  auto it = counts_.find(partition);
  for (std::int64_t o = 0; o < count; ++o) {
    if (it == counts_.end() || !it->second.count(o)) {
      out.push_back(o);
    }
  }
  return out;
}

bool Deliveries::has(std::int32_t partition, std::int64_t offset) const {
  std::lock_guard lock(mutex_);
  auto it = counts_.find(partition);
  return it != counts_.end() && it->second.count(offset) > 0;
}

std::string Deliveries::orderViolation() const {
  std::lock_guard lock(mutex_);
  for (const auto& [partition, offsets] : arrivals_) {
    std::int64_t highest = -1;
    for (std::int64_t o : offsets) {
      if (o > highest + 1) {
        return "partition " + std::to_string(partition) + ": offset " + std::to_string(o) +
               " arrived before " + std::to_string(highest + 1);
      }
      highest = std::max(highest, o);
    }
  }
  return "";
}

void produceNumbered(const std::string& bootstrap, const std::string& topic, int partitions,
                     int per_partition) {
  app::Producer producer(bootstrap);
  for (int i = 0; i < per_partition; ++i) {
    for (int p = 0; p < partitions; ++p) {
      producer.produce(topic, p, "k" + std::to_string(i),
                       "p" + std::to_string(p) + "-" + std::to_string(i));
    }
  }
  producer.flush(60s);
}

std::map<std::int32_t, std::int64_t> committedOffsets(const config::Mapping& mapping) {
  auto source = scaler::makeKafkaLagSource(mapping, 5s);
  auto result = source->probe();
  if (!result.sample) {
    throw std::runtime_error("lag probe failed: " + result.error);
  }
  std::map<std::int32_t, std::int64_t> out;
  for (const auto& p : result.sample->partitions) {
    out[p.tp.partition.value()] = p.committed.value_or(-1);
  }
  return out;
}

KesmProcess::KesmProcess(const std::vector<std::string>& args, const std::string& log_file,
                         const std::vector<std::string>& env)
    : ChildProcess(KESM_BINARY, args, log_file, env) {}

ChildProcess::ChildProcess(const std::string& program, const std::vector<std::string>& args,
                           const std::string& log_file, const std::vector<std::string>& env) {
  std::vector<char*> argv;
  std::string binary = program;
  argv.push_back(binary.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // The test process blocks no signals the child needs, but reset the mask to be sure.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  std::vector<std::string> env_copy = env;
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const bool overridden = std::any_of(env.begin(), env.end(), [&](const std::string& x) {
      return x.substr(0, x.find('=') + 1) == entry.substr(0, entry.find('=') + 1);
    });
    if (!overridden) {
      envp.push_back(*e);
    }
  }
  for (auto& e : env_copy) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  int rc = posix_spawnp(&pid_, binary.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    throw std::runtime_error("cannot start " + binary);
  }
}

ChildProcess::~ChildProcess() {
  if (!exited_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
  }
}

void ChildProcess::signal(int sig) {
  if (!exited_) {
    ::kill(pid_, sig);
  }
}

bool ChildProcess::running() {
  if (exited_) {
    return false;
  }
  if (waitpid(pid_, &status_, WNOHANG) == pid_) {
    exited_ = true;
  }
  return !exited_;
}

int ChildProcess::wait(std::chrono::milliseconds timeout) {
  waitUntil(
      timeout, [this] { return !running(); }, 20ms);
  if (!exited_) {
    return -1;
  }
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

std::string writeTempFile(const std::string& name, const std::string& content) {
  std::string path = "/tmp/kesm-test-" + std::to_string(getpid()) + "-" + name;
  std::ofstream out(path);
  out << content;
  return path;
}

// Every record of `topic` (from the beginning up to the high watermarks), read by a plain
// consumer that joins no group.
std::vector<ReadRecord>
readTopic(const std::string& bootstrap, const std::string& topic, int partitions,
          const std::vector<std::pair<std::string, std::string>>& settings) {
  std::string err;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  conf->set("bootstrap.servers", bootstrap, err);
  conf->set("group.id", "reader-never-joins", err);
  conf->set("enable.auto.commit", "false", err);
  for (const auto& [k, v] : settings) {
    conf->set(k, v, err);
  }
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!consumer) {
    throw std::runtime_error("reader: " + err);
  }
  std::vector<RdKafka::TopicPartition*> assignment;
  std::int64_t total = 0;
  for (int p = 0; p < partitions; ++p) {
    std::int64_t low = 0, high = 0;
    if (consumer->query_watermark_offsets(topic, p, &low, &high, 5000) != RdKafka::ERR_NO_ERROR) {
      throw std::runtime_error("reader: no watermarks for " + topic);
    }
    total += high - low;
    assignment.push_back(RdKafka::TopicPartition::create(topic, p, low));
  }
  consumer->assign(assignment);
  RdKafka::TopicPartition::destroy(assignment);
  std::vector<ReadRecord> out;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (static_cast<std::int64_t>(out.size()) < total &&
         std::chrono::steady_clock::now() < deadline) {
    std::unique_ptr<RdKafka::Message> m(consumer->consume(200));
    if (m->err() != RdKafka::ERR_NO_ERROR) {
      continue;
    }
    ReadRecord r;
    r.partition = m->partition();
    if (m->key() != nullptr) {
      r.key = *m->key();
    }
    if (m->payload() != nullptr) {
      r.value = std::string(static_cast<const char*>(m->payload()), m->len());
    }
    if (auto* headers = m->headers()) {
      for (const auto& h : headers->get_all()) {
        r.headers[h.key()] =
            h.value() ? std::string(static_cast<const char*>(h.value()), h.value_size()) : "";
      }
    }
    out.push_back(std::move(r));
  }
  consumer->close();
  return out;
}

} // namespace kesm::test
