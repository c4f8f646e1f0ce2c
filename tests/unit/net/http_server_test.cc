// The HTTP server's limits, seen from raw loopback sockets (a client that misbehaves on
// purpose: garbage, bodies to a GET-only server, one byte at a time, never reading).

#include "net/http.h"
#include "tests/unit/gate.h"

#include <arpa/inet.h>
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <condition_variable>
#include <dirent.h>
#include <fcntl.h>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace kesm;
using kesm::test::Gate;
using namespace std::chrono_literals;
using SteadyTime = std::chrono::steady_clock;

namespace {

// A blocking-free client socket: every read waits with a deadline.
class RawClient {
public:
  explicit RawClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      return;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawClient() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool ok() const { return fd_ >= 0; }

  bool send(const std::string& data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }

  // Reads until `done(received)` holds, the peer closes, or the timeout passes.
  std::string readUntil(std::chrono::milliseconds timeout,
                        const std::function<bool(const std::string&)>& done) {
    const auto deadline = SteadyTime::now() + timeout;
    while (!done(received_) && !closed_) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyTime::now());
      if (left.count() <= 0) {
        break;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        continue;
      }
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      received_.append(buf, static_cast<std::size_t>(n));
    }
    return received_;
  }

  // Waits for the server to close the connection; true if it did within the timeout.
  bool waitClosed(std::chrono::milliseconds timeout) {
    readUntil(timeout, [](const std::string&) { return false; });
    return closed_;
  }

  std::string received() const { return received_; }
  void clear() { received_.clear(); }

private:
  int fd_ = -1;
  std::string received_;
  bool closed_ = false;
};

bool hasStatusLine(const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; }

net::HttpResponse text(std::string body) {
  net::HttpResponse r;
  r.headers = {{"Content-Type", "text/plain"}};
  r.body = std::move(body);
  return r;
}

bool waitUntil(std::chrono::milliseconds timeout, const std::function<bool()>& condition) {
  const auto deadline = SteadyTime::now() + timeout;
  while (!condition()) {
    if (SteadyTime::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

} // namespace

TEST_CASE("http server: HEAD sends GET's headers and Content-Length without a body",
          "[unit][http]") {
  std::atomic<int> calls{0};
  net::HttpServer server("127.0.0.1:0", [&](const net::HttpRequest& request) {
    ++calls;
    return text(request.method + " body of eighteen");
  });
  RawClient client(server.port());
  REQUIRE(client.ok());
  // Two requests on one connection: if HEAD carried a body, the second answer would not
  // start right after the first one's headers.
  REQUIRE(client.send("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto got = client.readUntil(
      5s, [](const std::string& s) { return s.find("GET body of eighteen") != std::string::npos; });
  INFO(got);
  const auto first_end = got.find("\r\n\r\n");
  REQUIRE(first_end != std::string::npos);
  const std::string head = got.substr(0, first_end);
  CHECK_THAT(head, Catch::StartsWith("HTTP/1.1 200"));
  CHECK_THAT(head, Catch::Contains("Content-Length: 21")); // of "HEAD body of eighteen"
  CHECK_THAT(got.substr(first_end + 4), Catch::StartsWith("HTTP/1.1 200"));
  CHECK_THAT(got, Catch::EndsWith("\r\n\r\nGET body of eighteen"));
  CHECK(calls.load() == 2);
  CHECK(server.acceptedConnections() == 1);
}

TEST_CASE("http server: malformed requests get 400 without reaching the handler", "[unit][http]") {
  std::atomic<int> calls{0};
  net::HttpServer server("127.0.0.1:0", [&](const net::HttpRequest&) {
    ++calls;
    return text("ok");
  });
  const char* const garbage[] = {
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", // a TLS hello
      "GET /metrics HTTP/9.9\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
      "G(T / HTTP/1.1\r\n\r\n",
  };
  for (const char* request : garbage) {
    RawClient client(server.port());
    REQUIRE(client.ok());
    REQUIRE(client.send(request));
    auto got = client.readUntil(5s, hasStatusLine);
    INFO(request);
    CHECK_THAT(got, Catch::StartsWith("HTTP/1.1 400"));
    CHECK(client.waitClosed(5s));
  }
  CHECK(calls.load() == 0);
}

TEST_CASE("http server: bodies beyond the limit get 413, headers beyond it 431", "[unit][http]") {
  std::atomic<int> calls{0};
  auto handler = [&](const net::HttpRequest& request) {
    ++calls;
    return text("got " + std::to_string(request.body.size()));
  };

  SECTION("a GET-only server (the default) takes no body at all") {
    net::HttpServer server("127.0.0.1:0", handler);
    const char* const with_body[] = {
        "POST /metrics HTTP/1.1\r\nContent-Length: 104857600\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    };
    for (const char* request : with_body) {
      RawClient client(server.port());
      REQUIRE(client.send(request));
      INFO(request);
      CHECK_THAT(client.readUntil(5s, hasStatusLine), Catch::StartsWith("HTTP/1.1 413"));
      CHECK(client.waitClosed(5s));
    }
    RawClient empty(server.port());
    REQUIRE(empty.send("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
    CHECK_THAT(empty.readUntil(5s, hasStatusLine), Catch::StartsWith("HTTP/1.1 200"));
    CHECK(calls.load() == 1);
  }

  SECTION("a configured body limit admits bodies up to it") {
    net::HttpServerOptions options;
    options.body_limit_bytes = 10;
    net::HttpServer server("127.0.0.1:0", handler, options);
    RawClient client(server.port());
    REQUIRE(client.send("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789"));
    CHECK_THAT(
        client.readUntil(5s, [](const std::string& s) { return s.find("got 10") != s.npos; }),
        Catch::StartsWith("HTTP/1.1 200"));
    RawClient over(server.port());
    REQUIRE(over.send("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n0123456789X"));
    CHECK_THAT(over.readUntil(5s, hasStatusLine), Catch::StartsWith("HTTP/1.1 413"));
    CHECK(calls.load() == 1);
  }

  SECTION("a header beyond header_limit_bytes") {
    net::HttpServerOptions options;
    options.header_limit_bytes = 1024;
    net::HttpServer server("127.0.0.1:0", handler, options);
    RawClient client(server.port());
    REQUIRE(client.send("GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"));
    CHECK_THAT(client.readUntil(5s, hasStatusLine), Catch::StartsWith("HTTP/1.1 431"));
    CHECK(calls.load() == 0);
  }
}

TEST_CASE("http server: slow, idle and non-reading clients are cut at their timeouts",
          "[unit][http]") {
  net::HttpServerOptions options;
  options.request_timeout = 400ms;
  options.idle_timeout = 400ms;
  options.write_timeout = 400ms;
  const std::string big(32 * 1024 * 1024, 'x');
  net::HttpServer server(
      "127.0.0.1:0",
      [&](const net::HttpRequest& request) { return text(request.target == "/big" ? big : "ok"); },
      options);

  SECTION("one header byte at a time (slowloris) is closed after request_timeout") {
    RawClient client(server.port());
    const std::string request =
        "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    const auto start = SteadyTime::now();
    bool cut = false;
    for (char c : request) {
      if (!client.send(std::string(1, c)) || client.waitClosed(50ms)) {
        cut = true;
        break;
      }
    }
    const auto took = SteadyTime::now() - start;
    CHECK(cut);
    CHECK(took >= 350ms);
    CHECK(took < 1500ms);
    CHECK_FALSE(hasStatusLine(client.received()));
    // The stream closes the socket on expiry, before the read completes with the timeout.
    CHECK(waitUntil(2s, [&] { return server.stats().timed_out == 1; }));
  }

  SECTION("a connection that never sends is closed after request_timeout") {
    RawClient client(server.port());
    const auto start = SteadyTime::now();
    CHECK(client.waitClosed(3s));
    CHECK(SteadyTime::now() - start >= 350ms);
  }

  SECTION("an idle keep-alive connection is closed after idle_timeout") {
    RawClient client(server.port());
    REQUIRE(client.send("GET / HTTP/1.1\r\n\r\n"));
    REQUIRE(hasStatusLine(client.readUntil(5s, hasStatusLine)));
    const auto start = SteadyTime::now();
    CHECK(client.waitClosed(3s));
    CHECK(SteadyTime::now() - start >= 350ms);
  }

  SECTION("a client that does not read its response is closed after write_timeout") {
    RawClient client(server.port());
    REQUIRE(client.send("GET /big HTTP/1.1\r\n\r\n"));
    CHECK(waitUntil(5s, [&] { return server.stats().timed_out == 1; }));
    CHECK(waitUntil(5s, [&] { return server.stats().open == 0; }));
  }
}

TEST_CASE("http server: at max_connections the longest-waiting connection makes room",
          "[unit][http]") {
  net::HttpServerOptions options;
  options.max_connections = 4;
  options.handler_threads = 4;
  Gate release;
  net::HttpServer server(
      "127.0.0.1:0",
      [&](const net::HttpRequest& request) {
        if (request.target == "/block") {
          release.waitFor(10s);
        }
        return text("ok");
      },
      options);

  SECTION("idle connections are evicted, oldest first, and the new one is served") {
    std::vector<std::unique_ptr<RawClient>> idle;
    for (int i = 0; i < 4; ++i) {
      idle.push_back(std::make_unique<RawClient>(server.port()));
      REQUIRE(waitUntil(5s, [&] { return server.stats().open == static_cast<unsigned>(i + 1); }));
    }
    RawClient fresh(server.port());
    REQUIRE(fresh.send("GET / HTTP/1.1\r\n\r\n"));
    CHECK_THAT(fresh.readUntil(5s, hasStatusLine), Catch::StartsWith("HTTP/1.1 200"));
    CHECK(idle[0]->waitClosed(5s));
    CHECK_FALSE(idle[1]->waitClosed(100ms));
    CHECK(server.stats().evicted == 1);
    CHECK(server.stats().open == 4);
  }

  SECTION("when every connection is busy in a handler, a new one is closed at once") {
    std::vector<std::unique_ptr<RawClient>> busy;
    for (int i = 0; i < 4; ++i) {
      busy.push_back(std::make_unique<RawClient>(server.port()));
      REQUIRE(busy.back()->send("GET /block HTTP/1.1\r\n\r\n"));
    }
    REQUIRE(waitUntil(5s, [&] { return server.stats().open == 4; }));
    RawClient extra(server.port());
    CHECK(extra.waitClosed(5s));
    CHECK(extra.received().empty());
    CHECK(server.stats().refused == 1);
    release.open();
    for (auto& c : busy) {
      CHECK_THAT(c->readUntil(5s, hasStatusLine), Catch::StartsWith("HTTP/1.1 200"));
    }
  }
}

TEST_CASE("http server: handlers run on at most handler_threads threads, never on the I/O one",
          "[unit][http]") {
  net::HttpServerOptions options;
  options.handler_threads = 2;
  Gate release;
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  net::HttpServer server(
      "127.0.0.1:0",
      [&](const net::HttpRequest& request) {
        if (request.target == "/block") {
          int now = ++running;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          release.waitFor(10s);
          --running;
        }
        return text("ok");
      },
      options);
  std::vector<std::unique_ptr<RawClient>> blocked;
  for (int i = 0; i < 6; ++i) {
    blocked.push_back(std::make_unique<RawClient>(server.port()));
    REQUIRE(blocked.back()->send("GET /block HTTP/1.1\r\n\r\n"));
  }
  REQUIRE(waitUntil(5s, [&] { return running.load() == 2; }));
  // Both handler threads are blocked; I/O goes on: a malformed request is still answered.
  RawClient garbage(server.port());
  REQUIRE(garbage.send("NOT HTTP\r\n\r\n"));
  CHECK_THAT(garbage.readUntil(5s, hasStatusLine), Catch::StartsWith("HTTP/1.1 400"));
  release.open();
  for (auto& c : blocked) {
    CHECK_THAT(c->readUntil(5s, hasStatusLine), Catch::StartsWith("HTTP/1.1 200"));
  }
  CHECK(most.load() == 2);
}

TEST_CASE("http server: out of descriptors, accept backs off and serving goes on", "[unit][http]") {
  net::HttpServer server("127.0.0.1:0", [](const net::HttpRequest&) { return text("ok"); });
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  std::size_t used = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (::readdir(dir) != nullptr) {
      ++used;
    }
    ::closedir(dir);
  }
  rlimit low = saved;
  low.rlim_cur = used + 16;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  // Client sockets first, then every descriptor left is taken: the kernel completes the
  // clients' handshakes, and the server's accept fails with EMFILE while they wait.
  std::vector<int> clients;
  for (int i = 0; i < 4; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    clients.push_back(fd);
  }
  std::vector<int> fillers;
  for (int fd = ::dup(clients[0]); fd >= 0; fd = ::dup(clients[0])) {
    fillers.push_back(fd);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int fd : clients) {
    CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  const bool got_errors = waitUntil(5s, [&] { return server.stats().accept_errors > 0; });
  rusage before{};
  ::getrusage(RUSAGE_SELF, &before);
  const auto errors_before = server.stats().accept_errors;
  std::this_thread::sleep_for(1s); // measuring CPU over a window: the sleep is the point
  rusage after{};
  ::getrusage(RUSAGE_SELF, &after);
  const auto errors_after = server.stats().accept_errors;
  for (int fd : fillers) {
    ::close(fd);
  }
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);

  auto cpu = [](const rusage& r) {
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
  };
  CHECK(got_errors);
  INFO("accept errors in one second: " << errors_after - errors_before);
  CHECK(errors_after - errors_before <= 15); // one per 100 ms backoff, not a spin
  CHECK(cpu(after) - cpu(before) < 0.3);
  // Descriptors are back: the waiting connections are served.
  for (int fd : clients) {
    ::close(fd);
  }
  RawClient fresh(server.port());
  REQUIRE(fresh.send("GET / HTTP/1.1\r\n\r\n"));
  CHECK_THAT(fresh.readUntil(5s, hasStatusLine), Catch::StartsWith("HTTP/1.1 200"));
}

TEST_CASE("http server: invalid options are refused at construction", "[unit]") {
  net::HttpServerOptions options;
  options.max_connections = 0;
  CHECK_THROWS_AS(net::HttpServer("127.0.0.1:0", {}, options), std::invalid_argument);
  options = {};
  options.request_timeout = 0ms;
  CHECK_THROWS_AS(net::HttpServer("127.0.0.1:0", {}, options), std::invalid_argument);
}
