// `kesm top` (the real binary) against a kesm runtime on the mock cluster, and against peers
// that are not a healthy kesm: nothing listening, an error status, not JSON, a huge body, a
// slow answer.

#include "app/runtime.h"
#include "harness.h"
#include "kafka/kafka.h"
#include "net/http.h"

#include <algorithm>
#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <csignal>
#include <fstream>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace kesm;
using namespace kesm::test;

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `kesm top ARGS` to its end (30 s at most); its exit code and what it printed.
std::pair<int, std::string> runTop(const std::vector<std::string>& args, const std::string& tag) {
  const std::string log = writeTempFile("kesm-top-" + tag + ".log", "");
  std::vector<std::string> all{"top"};
  all.insert(all.end(), args.begin(), args.end());
  KesmProcess top(all, log);
  const int code = top.wait(30s);
  return {code, readFile(log)};
}

// A loopback port nothing listens on: bound, then closed.
std::uint16_t closedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The line `kesm top` printed for a mapping: the text after "<timestamp> ".
std::string lineOf(const std::string& output, const std::string& mapping) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    auto at = line.find("Z " + mapping + ": ");
    if (at != std::string::npos) {
      return line.substr(at + 2);
    }
  }
  return "";
}

} // namespace

TEST_CASE("kesm top --once prints each mapping with the values /status reports", "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("busy", 3);
  cluster.createTopic("held", 1);
  produceNumbered(cluster.bootstrapServers(), "busy", 3, 100);

  // The function holds the first batch until the test is done: the lag stays at what was
  // produced, so top and /status must agree on a value that is not 0.
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  samplefn::SampleFunctionOptions fn;
  fn.decide = [&](const std::vector<samplefn::ReceivedRecord>&) {
    std::unique_lock lock(mutex);
    cv.wait_for(lock, 120s, [&] { return release; });
    return samplefn::Verdict::kSucceed;
  };
  samplefn::SampleFunction function(fn);
  auto releaseFunction = [&] {
    {
      std::lock_guard lock(mutex);
      release = true;
    }
    cv.notify_all();
  };

  ConfigYaml file;
  MappingYaml busy = testMapping("busy", cluster.bootstrapServers(), "busy", function.url(), 1, 1);
  busy.function.set("timeout", "2m");
  file.mappings.push_back(busy);
  file.mappings.push_back(
      testMapping("held", cluster.bootstrapServers(), "held", function.url(), 1, 1));
  auto config = config::parseConfig(file.str(), "test.yaml", kafka::checkSetting);
  app::RuntimeOptions options;
  options.disabled_at_start["held"] = "preflight failed: held\nfor the test";
  app::Runtime runtime(config, std::move(options));
  runtime.start();

  const bool settled = waitUntil(60s, [&] {
    auto s = runtime.snapshot().at(0);
    return s.running == 1 && s.lag && !s.lag_stale && s.lag->total == 300;
  });
  const std::string url = "http://127.0.0.1:" + std::to_string(runtime.metricsPort());
  auto [code, out] = runTop({"--once", "--url", url, "--interval", "200ms"}, "once");
  // What /status says now (nothing moves while the function holds the batch).
  const std::string status = scrape(runtime, "/status");

  // The same through --config: the URL from server.listen.
  file.listen = "127.0.0.1:" + std::to_string(runtime.metricsPort());
  const std::string config_file = writeTempFile("kesm-top.yaml", file.str());
  auto [config_code, config_out] =
      runTop({"--once", "--config", config_file, "--interval", "100ms"}, "config");

  releaseFunction();
  runtime.stop();
  INFO(out);
  INFO(status);
  REQUIRE(settled);
  CHECK(code == 0);
  CHECK(status.find(R"("lag":{"stale":false,"total":300,"max":100,)") != std::string::npos);
  CHECK(status.find(R"("desired":1,"active":1,"running":1,"stopping":0)") != std::string::npos);
  CHECK(lineOf(out, "busy") == "busy: lag 300 (max 100) | pollers desired 1, running 1 | 0 "
                               "events/s | committed 0, failed records 0");
  CHECK(status.find(
            R"("state":"Disabled","stateReason":"preflight failed: held\u000afor the test")") !=
        std::string::npos);
  CHECK(lineOf(out, "held") == "held: DISABLED: preflight failed: held for the test");
  INFO(config_out);
  CHECK(config_code == 0);
  CHECK(lineOf(config_out, "busy") == lineOf(out, "busy"));
}

TEST_CASE("kesm top names the URL and the reason when no kesm answers, and exits 1 with --once",
          "[integration]") {
  const std::string url = "http://127.0.0.1:" + std::to_string(closedPort());
  auto [code, out] = runTop({"--once", "--url", url}, "refused");
  CHECK(code == 1);
  CHECK(out == "kesm top: " + url + "/status: connecting to 127.0.0.1:" + url.substr(17) +
                   ": Connection refused\n");

  // A malformed URL is a usage error.
  auto [usage_code, usage_out] = runTop({"--once", "--url", "ftp://x"}, "usage");
  CHECK(usage_code == 2);
  CHECK_THAT(usage_out, Catch::Contains("kesm top: 'ftp://x': the scheme must be http or https"));
}

TEST_CASE("kesm top, watching, keeps retrying an unreachable kesm and exits 0 on SIGINT",
          "[integration]") {
  const std::string url = "http://127.0.0.1:" + std::to_string(closedPort());
  const std::string log = writeTempFile("kesm-top-watch.log", "");
  KesmProcess top({"top", "--url", url, "--interval", "100ms"}, log);
  // Three failed reads in a row, each a plain line (the output is not a terminal).
  const bool retried = waitUntil(20s, [&] {
    const std::string out = readFile(log);
    std::size_t n = 0;
    for (auto at = out.find("unreachable since"); at != std::string::npos;
         at = out.find("unreachable since", at + 1)) {
      ++n;
    }
    return n >= 3;
  });
  CHECK(top.running());
  top.signal(SIGINT);
  CHECK(top.wait(10s) == 0);
  const std::string out = readFile(log);
  INFO(out);
  REQUIRE(retried);
  // The same "since" on every line: the time of the first failure.
  std::istringstream in(out);
  std::string first, line;
  std::getline(in, first);
  CHECK_THAT(first, Catch::Contains("kesm top: " + url + "/status: unreachable since "));
  CHECK(first.find("\x1b") == std::string::npos); // no cursor control when not a terminal
  const auto since = first.substr(first.find("since "), 32);
  while (std::getline(in, line)) {
    CHECK_THAT(line, Catch::Contains(since));
  }
}

TEST_CASE("kesm top --once refuses peers that are not a healthy kesm, each with one clear line",
          "[integration]") {
  // Each hostile answer, served by a real HTTP server on loopback.
  struct Case {
    const char* name;
    std::vector<std::string> extra; // options besides --once --url
    int status;
    std::string body;
    std::chrono::milliseconds delay;
    std::string says;
  };
  auto c = GENERATE(Case{"an error status",
                         {},
                         503,
                         "busy\n\x1b[2Jrebooting",
                         0ms,
                         "/status: answered HTTP 503: busy??[2Jrebooting\n"},
                    Case{"not JSON",
                         {},
                         200,
                         "<html>hello</html>",
                         0ms,
                         "/status: not a kesm /status document: not JSON: syntax error\n"},
                    Case{"JSON that is not /status",
                         {},
                         200,
                         R"({"mappings":"none"})",
                         0ms,
                         "/status: not a kesm /status document: no \"mappings\" list\n"},
                    Case{"a body over the 16 MiB limit",
                         {},
                         200,
                         "[" + std::string(17 * 1024 * 1024, ' ') + "]",
                         0ms,
                         "body limit exceeded\n"},
                    Case{"an answer slower than --timeout",
                         {"--timeout", "300ms"},
                         200,
                         R"({"mappings":[]})",
                         3000ms,
                         "timed out waiting for the response of 127.0.0.1:"});
  INFO(c.name);
  net::HttpServer server("127.0.0.1:0", [&](const net::HttpRequest&) {
    std::this_thread::sleep_for(c.delay);
    net::HttpResponse r;
    r.status = c.status;
    r.body = c.body;
    return r;
  });
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  std::vector<std::string> args{"--once", "--url", url};
  args.insert(args.end(), c.extra.begin(), c.extra.end());
  const auto started = std::chrono::steady_clock::now();
  auto [code, out] = runTop(args, "hostile");
  const auto took = std::chrono::steady_clock::now() - started;
  INFO(out);
  CHECK(code == 1);
  CHECK(out.rfind("kesm top: " + url + "/status: ", 0) == 0);
  CHECK_THAT(out, Catch::Contains(c.says));
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  CHECK(took < 2500ms); // the slow peer is cut at --timeout, not waited for
  server.stop();
}

TEST_CASE("kesm top on a terminal redraws its lines in place", "[integration]") {
  net::HttpServer server("127.0.0.1:0", [](const net::HttpRequest&) {
    net::HttpResponse r;
    r.body = R"({"mappings":[{"name":"tty","state":"Enabled","pollers":{"desired":2,"active":2,
      "running":2,"stopping":0},"lag":{"stale":false,"total":7,"max":4},
      "events":{"committed":10,"failedInvoke":0}}]})";
    return r;
  });
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  // kesm top with a pseudo-terminal as its stdout, 200 columns wide.
  winsize ws{};
  ws.ws_row = 40;
  ws.ws_col = 200;
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, &ws);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    execl(KESM_BINARY, KESM_BINARY, "top", "--url", url.c_str(), "--interval", "100ms",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  // Three draws: the first, then two that move the cursor back up over the two lines.
  auto redraws = [&] {
    std::size_t n = 0;
    for (auto at = out.find("\x1b[2A"); at != std::string::npos; at = out.find("\x1b[2A", at + 1)) {
      ++n;
    }
    return n;
  };
  while (redraws() < 2 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 200) == 1) {
      char buf[4096];
      const ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::kill(pid, SIGINT);
  int status = -1;
  ::waitpid(pid, &status, 0);
  ::close(master);
  server.stop();
  INFO(out);
  CHECK(redraws() >= 2);
  CHECK_THAT(out, Catch::Contains("kesm top: " + url + "/status at "));
  CHECK_THAT(out, Catch::Contains("\x1b[2Ktty: lag 7 (max 4) | pollers desired 2, running 2 | 0 "
                                  "events/s | committed 10, failed records 0"));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
