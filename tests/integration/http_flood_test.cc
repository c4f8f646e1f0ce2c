// The metrics port under a flood (issue 13, item 9): thousands of idle and one-byte-at-a-time
// connections plus 100 MB request bodies against a real kesm process with 1,024 descriptors,
// while Prometheus-style scrapes must keep answering and records must keep arriving.

#include "harness.h"
#include "net/http.h"

#include <arpa/inet.h>
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <sys/resource.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace kesm;
using namespace kesm::test;
using SteadyTime = std::chrono::steady_clock;

namespace {

std::size_t threadsOf(pid_t pid) {
  std::size_t n = 0;
  if (DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str())) {
    while (dirent* e = ::readdir(dir)) {
      n += e->d_name[0] != '.';
    }
    ::closedir(dir);
  }
  return n;
}

// VmRSS in KiB; 0 when unreadable.
std::size_t rssKibOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stoul(line.substr(6));
    }
  }
  return 0;
}

std::uint16_t portFromLog(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  const std::string marker = "/status on port ";
  while (std::getline(in, line)) {
    auto at = line.find(marker);
    if (at != std::string::npos) {
      return static_cast<std::uint16_t>(std::stoul(line.substr(at + marker.size())));
    }
  }
  return 0;
}

// One flooding client connection, non-blocking.
struct FloodConn {
  enum class Kind { kIdle, kSlow, kBigBody };
  Kind kind = Kind::kIdle;
  int fd = -1;
  std::size_t sent = 0;
};

const std::string kSlowRequest =
    "GET /metrics HTTP/1.1\r\nHost: kesm\r\nX-Slow: " + std::string(4000, 'a') + "\r\n\r\n";
const std::string kBigHeader = "POST /metrics HTTP/1.1\r\nHost: kesm\r\nContent-Length: "
                               "104857600\r\n\r\n";

int connectNonBlocking(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Keeps `count` connections open against the port: idle ones, slow ones that send one
// header byte per round, and a few that stream a 100 MB body. A connection the server
// closed is opened again (at most 500 per round), so the pressure lasts.
class Flood {
public:
  Flood(std::uint16_t port, std::size_t count, std::size_t big_bodies) : port_(port) {
    for (std::size_t i = 0; i < count; ++i) {
      FloodConn c;
      c.kind = i < big_bodies ? FloodConn::Kind::kBigBody
               : i % 2 == 0   ? FloodConn::Kind::kIdle
                              : FloodConn::Kind::kSlow;
      c.fd = connectNonBlocking(port_);
      conns_.push_back(c);
    }
    thread_ = std::thread([this] { run(); });
  }
  ~Flood() {
    stop_ = true;
    thread_.join();
    for (auto& c : conns_) {
      if (c.fd >= 0) {
        ::close(c.fd);
      }
    }
  }
  std::size_t open() const { return open_.load(); }
  std::size_t mostOpen() const { return most_open_.load(); }
  std::uint64_t reconnects() const { return reconnects_.load(); }
  std::uint64_t bodyBytes() const { return body_bytes_.load(); }

private:
  void run() {
    const std::string chunk(64 * 1024, 'x');
    while (!stop_) {
      std::size_t reconnects = 0;
      std::size_t open = 0;
      for (auto& c : conns_) {
        if (c.fd >= 0) {
          char b;
          ssize_t n = ::recv(c.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
          bool dead =
              n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN);
          if (n > 0 && c.kind != FloodConn::Kind::kBigBody) {
            dead = true; // an answer (413/400...): the server is done with it
          }
          if (dead) {
            ::close(c.fd);
            c.fd = -1;
          }
        }
        if (c.fd < 0) {
          if (reconnects >= 500) {
            continue;
          }
          c.fd = connectNonBlocking(port_);
          c.sent = 0;
          ++reconnects;
          reconnects_++;
          continue;
        }
        ++open;
        if (c.kind == FloodConn::Kind::kSlow && c.sent < kSlowRequest.size()) {
          if (::send(c.fd, kSlowRequest.data() + c.sent, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
            ++c.sent;
          }
        } else if (c.kind == FloodConn::Kind::kBigBody) {
          if (c.sent < kBigHeader.size()) {
            ssize_t n = ::send(c.fd, kBigHeader.data() + c.sent, kBigHeader.size() - c.sent,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
            c.sent += n > 0 ? static_cast<std::size_t>(n) : 0;
          } else {
            ssize_t n = ::send(c.fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
              body_bytes_ += static_cast<std::uint64_t>(n);
            }
          }
        }
      }
      open_ = open;
      most_open_ = std::max(most_open_.load(), open);
      std::this_thread::sleep_for(100ms); // one slow byte per connection per round
    }
  }

  std::uint16_t port_;
  std::vector<FloodConn> conns_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> open_{0};
  std::atomic<std::size_t> most_open_{0};
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::uint64_t> body_bytes_{0};
  std::thread thread_;
};

} // namespace

TEST_CASE("a flooded metrics port keeps answering, and deliveries go on, in bounded threads "
          "and memory",
          "[integration][http]") {
  // The flood needs descriptors of its own; kesm keeps the common 1,024 (set around its
  // spawn), which the old thread-per-connection server could not survive.
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  const rlim_t kesm_limit = std::min<rlim_t>(1024, limit.rlim_max);

  app::MockKafkaCluster cluster(1);
  constexpr int kPartitions = 4;
  constexpr int kPerRound = 500;
  cluster.createTopic("events", kPartitions);
  Deliveries deliveries;
  samplefn::SampleFunctionOptions fn;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) { deliveries.add(batch); };
  samplefn::SampleFunction function(fn);
  produceNumbered(cluster.bootstrapServers(), "events", kPartitions, kPerRound);

  const std::string yaml =
      mappingYaml("events", cluster.bootstrapServers(), "events", function.url(), 2, 2);
  const std::string config_path = writeTempFile("flood.yaml", yaml);
  const std::string log_path = writeTempFile("flood.log", "");

  rlimit for_kesm = limit;
  for_kesm.rlim_cur = kesm_limit;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &for_kesm) == 0);
  KesmProcess kesm({"run", "--config", config_path}, log_path);
  rlimit for_test = limit;
  for_test.rlim_cur = limit.rlim_max;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &for_test) == 0);

  std::uint16_t port = 0;
  REQUIRE(waitUntil(30s, [&] { return (port = portFromLog(log_path)) != 0; }));
  REQUIRE(waitUntil(60s, [&] { return deliveries.distinct() == kPartitions * kPerRound; }));
  net::HttpClient scrape(net::parseHttpUrl("http://127.0.0.1:" + std::to_string(port) + "/"));
  REQUIRE(scrape.request("GET", "/metrics", "", {}, 5s).response.status == 200);
  const std::size_t threads_before = threadsOf(kesm.pid());
  const std::size_t rss_before = rssKibOf(kesm.pid());

  // Thousands of connections, as many as this process may open with room to spare.
  const std::size_t flood_size =
      std::min<std::size_t>(4000, static_cast<std::size_t>(for_test.rlim_cur) - 200);
  constexpr std::size_t kBigBodies = 8;
  std::size_t threads_most = threads_before;
  std::size_t rss_most = rss_before;
  double worst_scrape_s = 0;
  int scrapes = 0;
  int failed_scrapes = 0;
  std::string last_failure;
  {
    Flood flood(port, flood_size, kBigBodies);
    produceNumbered(cluster.bootstrapServers(), "events", kPartitions, kPerRound);
    const auto flood_end = SteadyTime::now() + 12s;
    bool delivered = false;
    while (SteadyTime::now() < flood_end || !delivered) {
      const auto start = SteadyTime::now();
      auto result = scrape.request("GET", "/metrics", "", {}, 2s);
      const double took = std::chrono::duration<double>(SteadyTime::now() - start).count();
      ++scrapes;
      if (!result.transportOk() || result.response.status != 200 ||
          result.response.body.find("kesm_events_committed_total") == std::string::npos) {
        ++failed_scrapes;
        last_failure = result.error_message + " status " + std::to_string(result.response.status);
      }
      worst_scrape_s = std::max(worst_scrape_s, took);
      threads_most = std::max(threads_most, threadsOf(kesm.pid()));
      rss_most = std::max(rss_most, rssKibOf(kesm.pid()));
      delivered = deliveries.distinct() == 2 * kPartitions * kPerRound;
      if (SteadyTime::now() > flood_end + 60s) {
        break;
      }
      std::this_thread::sleep_for(200ms); // the scrape interval, not a wait for a condition
    }
    WARN("flood of " << flood_size << " connections (at most " << flood.mostOpen()
                     << " open at once, " << flood.open() << " at the end, " << flood.reconnects()
                     << " reopened, " << flood.bodyBytes() / (1024 * 1024)
                     << " MiB of bodies sent): " << scrapes << " scrapes, worst " << worst_scrape_s
                     << " s; kesm threads " << threads_before << " -> " << threads_most << ", RSS "
                     << rss_before / 1024 << " -> " << rss_most / 1024 << " MiB");
    CHECK(delivered);
    CHECK(kesm.running());
    // kesm closed thousands (evicting the longest-waiting at its cap of 256): the flood was
    // real, and the connections it could hold never exceeded the cap by much.
    CHECK(flood.reconnects() >= static_cast<std::uint64_t>(flood_size));
  }
  INFO("last failed scrape: " << last_failure);
  CHECK(failed_scrapes == 0);
  CHECK(worst_scrape_s < 2.0);
  // One I/O thread and at most two handler threads, the pool started with one: at most one
  // more thread than before the flood, whatever the number of connections.
  CHECK(threads_most <= threads_before + 1);
  // At most 256 connections of at most 16 KiB of read buffer (8 KiB header + 8 KiB chunk) each,
  // plus the parsers: ~8 MiB; 64 MiB leaves room for allocator slack, never for bodies.
  CHECK(rss_most < rss_before + 64 * 1024);
  for (int p = 0; p < kPartitions; ++p) {
    CHECK(deliveries.missing(p, 2 * kPerRound).empty());
  }
  REQUIRE(scrape.request("GET", "/healthz", "", {}, 5s).response.status == 200);
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);
}
