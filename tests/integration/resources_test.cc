// Threads and descriptors: what a poller and a mapping cost (measured on the real binary
// against the mock cluster, the figures docs/operations.md states), and what kesm does when
// the process runs out of them (issue 13): a clear message and an exit code, never an abort.

#include "app/capacity.h"
#include "harness.h"
#include "kafka/kafka.h"
#include "net/http.h"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <optional>
#include <sstream>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace kesm;
using namespace kesm::test;

namespace {

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int entries(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return -1;
  }
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    n += e->d_name[0] != '.';
  }
  ::closedir(d);
  return n;
}

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The kesm binary as a child with the given limit on descriptors (RLIMIT_NOFILE, soft and
// hard), stdout and stderr to `log`. Killed at the end if still running.
class LimitedKesm {
public:
  LimitedKesm(const std::vector<std::string>& args, const std::string& log,
              std::optional<rlim_t> nofile, std::optional<rlim_t> nproc = std::nullopt) {
    std::vector<std::string> copy = args;
    std::string binary = KESM_BINARY;
    std::vector<char*> argv{binary.data()};
    for (auto& a : copy) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(out >= 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      if (nofile) {
        rlimit limit{*nofile, *nofile};
        ::setrlimit(RLIMIT_NOFILE, &limit);
      }
      if (nproc) {
        // Root is exempt from RLIMIT_NPROC: run as nobody, whose processes it counts.
        rlimit limit{*nproc, *nproc};
        ::setrlimit(RLIMIT_NPROC, &limit);
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) {
          ::_exit(126);
        }
      }
      ::dup2(out, 1);
      ::dup2(out, 2);
      sigset_t empty;
      sigemptyset(&empty);
      ::sigprocmask(SIG_SETMASK, &empty, nullptr);
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(out);
  }
  ~LimitedKesm() {
    if (!exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status_, 0);
    }
  }

  pid_t pid() const { return pid_; }

  // The exit code, 128 + the signal when killed by one, nullopt when still running.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    bool done = waitUntil(
        timeout, [&] { return exited_ || ::waitpid(pid_, &status_, WNOHANG) == pid_; }, 20ms);
    if (!done) {
      return std::nullopt;
    }
    exited_ = true;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  }

private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
};

std::string status(int port) {
  try {
    net::HttpClient client(net::parseHttpUrl("http://127.0.0.1:" + std::to_string(port) + "/"));
    return client.request("GET", "/status", "", {}, 2s).response.body;
  } catch (const std::exception&) {
    return "";
  }
}

struct Usage {
  int threads = 0;
  int descriptors = 0;
  app::ResourceNeed estimated; // what kesm validate's estimate says for the same config
};

// Threads and descriptors of a kesm running `mappings` mappings of `pollers` pollers each
// (minimum = maximum), every poller past its first batch, on a mock cluster of `brokers`.
Usage measure(int mappings, int pollers, int brokers) {
  app::MockKafkaCluster cluster(brokers);
  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.on_batch = [&](const auto& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  int port = freePort();
  ConfigYaml config{.listen = "127.0.0.1:" + std::to_string(port)};
  for (int m = 0; m < mappings; ++m) {
    std::string topic = "t" + std::to_string(m);
    cluster.createTopic(topic, pollers);
    config.mappings.push_back(testMapping("m" + std::to_string(m), cluster.bootstrapServers(),
                                          topic, function.url(), pollers, pollers));
  }
  std::string yaml = config.str();
  std::string path = writeTempFile("resources.yaml", yaml);
  std::string log = writeTempFile("resources.log", "");
  LimitedKesm kesm({"run", "--config", path}, log, std::nullopt);
  const std::string running = "\"running\":" + std::to_string(pollers) + ",";
  bool all_running = waitUntil(60s, [&] {
    std::string s = status(port);
    std::size_t found = 0;
    for (auto at = s.find(running); at != std::string::npos; at = s.find(running, at + 1)) {
      ++found;
    }
    return found == static_cast<std::size_t>(mappings);
  });
  INFO(readAll(log));
  REQUIRE(all_running);
  // A batch on every partition: every poller then holds its invoke worker and connection.
  for (int m = 0; m < mappings; ++m) {
    produceNumbered(cluster.bootstrapServers(), "t" + std::to_string(m), pollers, 3);
  }
  std::size_t expected = static_cast<std::size_t>(mappings * pollers * 3);
  // total(), not distinct(): the topics share partition numbers.
  REQUIRE(waitUntil(60s, [&] { return deliveries.total() >= expected; }));
  Usage usage{entries("/proc/" + std::to_string(kesm.pid()) + "/task"),
              entries("/proc/" + std::to_string(kesm.pid()) + "/fd"),
              app::estimateNeed(config::parseConfig(yaml, path, kafka::checkSetting))};
  kesm.wait(0ms);
  ::unlink(path.c_str());
  ::unlink(log.c_str());
  return usage;
}

} // namespace

TEST_CASE("resources: threads and descriptors per poller and per mapping, as documented",
          "[integration][resources]") {
  Usage one = measure(1, 1, 1);
  Usage five = measure(1, 5, 1);
  Usage two_mappings = measure(2, 1, 1);
  Usage three_brokers = measure(1, 1, 3);
  WARN("1 mapping x 1 poller, 1 broker: " << one.threads << " threads, " << one.descriptors
                                          << " fds");
  WARN("1 mapping x 5 pollers, 1 broker: " << five.threads << " threads, " << five.descriptors
                                           << " fds");
  WARN("2 mappings x 1 poller, 1 broker: " << two_mappings.threads << " threads, "
                                           << two_mappings.descriptors << " fds");
  WARN("1 mapping x 1 poller, 3 brokers: " << three_brokers.threads << " threads, "
                                           << three_brokers.descriptors << " fds");
  // The figures of docs/operations.md: a poller adds 7 threads and 13 descriptors with one
  // broker (one invoke worker in use); a mapping 5 threads and 8 descriptors.
  CHECK(five.threads - one.threads == 4 * 7);
  CHECK(five.descriptors - one.descriptors == 4 * 13);
  CHECK(two_mappings.threads - one.threads == 5 + 7);
  CHECK(two_mappings.descriptors - one.descriptors == 8 + 13);
  // kesm validate's estimate is an upper bound of every measured case.
  for (const Usage& u : {one, five, two_mappings, three_brokers}) {
    CHECK(u.threads <= u.estimated.threads);
    CHECK(u.descriptors <= u.estimated.descriptors);
  }
}

namespace {

// A mapping of `pollers` pollers (minimum = maximum) on a fresh mock cluster, run under the
// limits; the log once it exited, or after 20 s.
struct LimitedRun {
  std::optional<int> exit_code; // nullopt: still running after 20 s
  std::string log;
};

LimitedRun runLimited(int pollers, std::optional<rlim_t> nofile, std::optional<rlim_t> nproc) {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("orders", pollers);
  samplefn::SampleFunction function(samplefn::SampleFunctionOptions{});
  std::string path =
      writeTempFile("limited.yaml", mappingYaml("orders", cluster.bootstrapServers(), "orders",
                                                function.url(), pollers, pollers));
  std::string log = writeTempFile("limited.log", "");
  LimitedRun run;
  {
    LimitedKesm kesm({"run", "--config", path}, log, nofile, nproc);
    run.exit_code = kesm.wait(20s);
  }
  run.log = readAll(log);
  ::unlink(path.c_str());
  ::unlink(log.c_str());
  return run;
}

} // namespace

TEST_CASE("resources: too few descriptors for the minimum pollers: exit 1 with the reason",
          "[integration][resources]") {
  // 30 descriptors: enough for the preflight and the metrics server, not for a poller.
  LimitedRun run = runLimited(10, 30, std::nullopt);
  INFO(run.log);
  REQUIRE(run.exit_code.has_value());
  CHECK(*run.exit_code == 1);
  CHECK(run.log.find("kesm: cannot start poller kesm-orders-") != std::string::npos);
  CHECK(run.log.find(" of mapping orders: it needs about 13 more file descriptors (") !=
        std::string::npos);
  CHECK(run.log.find("descriptors 30 (RLIMIT_NOFILE)") != std::string::npos);
}

TEST_CASE("resources: too few threads for the pollers: a clear error, never librdkafka's abort",
          "[integration][resources]") {
  if (::geteuid() != 0) {
    // RLIMIT_NPROC counts every process of the user: only a user of its own (nobody, which
    // root can switch to) makes the count exact.
    WARN("skipped: needs root to run kesm as nobody under RLIMIT_NPROC");
    return;
  }
  // Before the fix, 20 threads made librdkafka assert ("failed to create broker thread",
  // exit 134) while the fifth poller created its client.
  for (rlim_t nproc : {rlim_t{20}, rlim_t{30}, rlim_t{50}}) {
    INFO("RLIMIT_NPROC " << nproc);
    LimitedRun run = runLimited(10, std::nullopt, nproc);
    INFO(run.log);
    CHECK(run.log.find("Assertion") == std::string::npos);
    if (run.exit_code) {
      // The pool could not start its minimum: kesm ends with the reason.
      CHECK(*run.exit_code == 1);
      CHECK(run.log.find("kesm: cannot start ") != std::string::npos);
      CHECK(run.log.find("Resource temporarily unavailable") != std::string::npos);
    } else {
      // The minimum started, then some pollers could not start their Kafka client: they stop
      // with the reason (the pool then holds at what runs, logged at its next evaluation).
      CHECK((run.log.find("ERROR pool: orders: holding at ") != std::string::npos ||
             run.log.find(": stopped on error: cannot start the Kafka client of poller ") !=
                 std::string::npos));
    }
  }
}

TEST_CASE("resources: kesm validate warns when the limits are too low for maximumPollers",
          "[integration][resources]") {
  std::string yaml = "mappings:\n"
                     "  - name: orders\n"
                     "    source: {bootstrapServers: k:9092, topics: [orders]}\n"
                     "    function: {url: 'http://fn:8080/'}\n"
                     "    scaling: {maximumPollers: 100}\n";
  std::string path = writeTempFile("capacity.yaml", yaml);
  std::string log = writeTempFile("capacity.log", "");
  // 16 + 8 + 100 * (13 + 4) descriptors, 2 + 6 + 100 * (7 + 4) threads.
  {
    LimitedKesm kesm({"validate", "--config", path}, log, 256);
    CHECK(kesm.wait(20s) == 0);
  }
  CHECK(readAll(log) == "kesm validate: warning: with every mapping at maximumPollers this config "
                        "may need about 1724 file descriptors, more than the 256 of "
                        "RLIMIT_NOFILE; raise it (ulimit -n) or lower maximumPollers\n" +
                            path + ": valid, 1 mapping(s)\n");
  if (::geteuid() == 0) {
    LimitedKesm kesm({"validate", "--config", path}, log, std::nullopt, 500);
    CHECK(kesm.wait(20s) == 0);
    CHECK(readAll(log) == "kesm validate: warning: with every mapping at maximumPollers this "
                          "config may need about 1108 threads, more than the 500 of "
                          "RLIMIT_NPROC, per user; pollers past the limit will not start (the "
                          "pool holds at what runs)\n" +
                              path + ": valid, 1 mapping(s)\n");
  }
  ::unlink(path.c_str());
  ::unlink(log.c_str());
}
