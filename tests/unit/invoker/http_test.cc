// Real HTTP on loopback sockets: cheap, so it lives with the unit tests under [http].

#include "invoker/invoker.h"
#include "invoker/payload.h"
#include "net/http.h"
#include "samplefn/sample_function.h"
#include "tests/unit/gate.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

using namespace kesm;
using kesm::test::Gate;
using namespace std::chrono_literals;
using SteadyTime = std::chrono::steady_clock;

namespace {

net::HttpResponse textResponse(int status, std::string body) {
  net::HttpResponse r;
  r.status = status;
  r.headers = {{"Content-Type", "text/plain"}};
  r.body = std::move(body);
  return r;
}

invoker::HttpInvokerOptions invokerOptions(std::string url, std::chrono::milliseconds timeout,
                                           std::string servers) {
  invoker::HttpInvokerOptions options;
  options.url = std::move(url);
  options.timeout = timeout;
  options.bootstrap_servers = std::move(servers);
  return options;
}

Batch smallBatch() {
  Batch batch;
  for (int i = 0; i < 3; ++i) {
    Record r;
    r.topic = "orders";
    r.partition = Partition{i % 2};
    r.offset = Offset{i};
    r.key = "k" + std::to_string(i);
    r.value = "value " + std::to_string(i);
    r.headers = {{"h", "x"}};
    batch.records.push_back(std::move(r));
  }
  return batch;
}

// The server's default takes no request body (GET-only endpoints); these tests POST.
net::HttpServerOptions withBodies() {
  net::HttpServerOptions options;
  options.body_limit_bytes = 1024 * 1024;
  return options;
}

std::string urlFor(std::uint16_t port, const std::string& path = "/") {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

} // namespace

TEST_CASE("http: parseHttpUrl accepts http and https URLs and rejects the rest", "[unit]") {
  struct Good {
    std::string url;
    std::string host;
    std::uint16_t port;
    std::string target;
  };
  auto good = GENERATE(Good{.url = "http://fn", .host = "fn", .port = 80, .target = "/"},
                       Good{.url = "http://fn:8080", .host = "fn", .port = 8080, .target = "/"},
                       Good{.url = "http://127.0.0.1:9000/2015-03-31/functions/x/invocations",
                            .host = "127.0.0.1",
                            .port = 9000,
                            .target = "/2015-03-31/functions/x/invocations"},
                       Good{.url = "http://fn/a?b=c", .host = "fn", .port = 80, .target = "/a?b=c"},
                       Good{.url = "http://[::1]:81/p", .host = "::1", .port = 81, .target = "/p"});
  CAPTURE(good.url);
  const net::Url url = net::parseHttpUrl(good.url);
  CHECK(url.host == good.host);
  CHECK(url.port == good.port);
  CHECK(url.target == good.target);

  auto bad =
      GENERATE(as<std::string>{}, "", "fn:80", "ftp://fn", "http://", "http://:80/",
               "http://fn:", "http://fn:0", "http://fn:65536", "http://fn:8x", "http://user@fn/");
  CAPTURE(bad);
  CHECK_THROWS_AS(net::parseHttpUrl(bad), std::invalid_argument);
  CHECK(net::parseHttpUrl("https://fn:8443/x").scheme == net::Scheme::kHttps);
}

TEST_CASE("http: header lookup ignores case", "[unit]") {
  net::HttpResponse response;
  response.headers = {{"X-Amz-Function-Error", "Unhandled"}};
  CHECK(response.header("x-amz-function-error") == "Unhandled");
  CHECK(response.header("X-AMZ-FUNCTION-ERROR") == "Unhandled");
  CHECK(response.header("X-Other") == "");
  net::HttpRequest request;
  request.headers = {{"content-type", "application/json"}};
  CHECK(request.header("Content-Type") == "application/json");
}

TEST_CASE("http: client and server keep one connection alive across requests", "[unit][http]") {
  net::HttpServer server(
      "127.0.0.1:0",
      [](const net::HttpRequest& request) {
        net::HttpResponse r =
            textResponse(200, request.method + " " + request.target + " " + request.body);
        r.headers.emplace_back("X-Seen-Content-Type", request.header("content-type"));
        r.headers.emplace_back("X-Seen-User-Agent", request.header("user-agent"));
        r.headers.emplace_back("X-Seen-Host", request.header("host"));
        return r;
      },
      withBodies());
  REQUIRE(server.port() != 0);
  net::HttpClient client(net::parseHttpUrl(urlFor(server.port(), "/fn")));
  for (int i = 0; i < 5; ++i) {
    auto result = client.post("{\"n\":" + std::to_string(i) + "}", {}, 5s);
    REQUIRE(result.transportOk());
    CHECK(result.response.status == 200);
    CHECK(result.response.body == "POST /fn {\"n\":" + std::to_string(i) + "}");
    CHECK(result.response.header("x-seen-content-type") == "application/json");
    CHECK(result.response.header("x-seen-user-agent") == "kesm");
    CHECK(result.response.header("x-seen-host") == "127.0.0.1:" + std::to_string(server.port()));
  }
  auto get = client.request("GET", "/other", "", {{"X-Test", "1"}}, 5s);
  REQUIRE(get.transportOk());
  CHECK(get.response.body == "GET /other ");
  CHECK(server.acceptedConnections() == 1);
}

TEST_CASE("http: the client honours Connection: close and reconnects after a server restart",
          "[unit][http]") {
  std::atomic<bool> close_next{false};
  auto handler = [&](const net::HttpRequest&) {
    net::HttpResponse r = textResponse(200, "ok");
    if (close_next.exchange(false)) {
      r.headers.emplace_back("Connection", "close");
    }
    return r;
  };
  auto server = std::make_unique<net::HttpServer>("127.0.0.1:0", handler, withBodies());
  const std::uint16_t port = server->port();
  net::HttpClient client(net::parseHttpUrl(urlFor(port)));

  close_next = true;
  REQUIRE(client.post("a", {}, 5s).transportOk());
  REQUIRE(client.post("b", {}, 5s).transportOk());
  CHECK(server->acceptedConnections() == 2);

  // The server goes away while the client holds an idle keep-alive connection; a new one
  // listens on the same port. The next request must succeed without an error.
  server.reset();
  server =
      std::make_unique<net::HttpServer>("127.0.0.1:" + std::to_string(port), handler, withBodies());
  auto result = client.post("c", {}, 5s);
  INFO(result.error_message);
  REQUIRE(result.transportOk());
  CHECK(result.response.body == "ok");
  CHECK(server->acceptedConnections() == 1);
}

TEST_CASE("http: a slow handler times out the client within the deadline", "[unit][http]") {
  Gate release;
  net::HttpServer server(
      "127.0.0.1:0",
      [&](const net::HttpRequest& request) {
        if (request.target == "/slow") {
          release.waitFor(10s);
        }
        return textResponse(200, "late");
      },
      withBodies());
  net::HttpClient client(net::parseHttpUrl(urlFor(server.port(), "/slow")));
  const auto start = SteadyTime::now();
  auto result = client.post("x", {}, 300ms);
  const auto elapsed = SteadyTime::now() - start;
  CHECK(result.error == net::HttpErrorKind::kTimeout);
  CHECK(elapsed >= 300ms);
  CHECK(elapsed < 2s);
  release.open();

  // The timed-out connection was dropped; the client works again on a new one.
  auto fast = client.request("GET", "/fast", "", {}, 5s);
  INFO(fast.error_message);
  REQUIRE(fast.transportOk());
  CHECK(fast.response.body == "late");
}

TEST_CASE("http: connecting to a closed port is a connect error", "[unit][http]") {
  std::uint16_t port = 0;
  {
    net::HttpServer server("127.0.0.1:0",
                           [](const net::HttpRequest&) { return textResponse(200, ""); });
    port = server.port();
  }
  net::HttpClient client(net::parseHttpUrl(urlFor(port)));
  auto result = client.post("x", {}, 2s);
  CHECK(result.error == net::HttpErrorKind::kConnect);
  CHECK_FALSE(result.error_message.empty());
}

TEST_CASE("http: a handler exception becomes a 500 with its message", "[unit][http]") {
  net::HttpServer server(
      "127.0.0.1:0",
      [](const net::HttpRequest&) -> net::HttpResponse { throw std::runtime_error("boom"); },
      withBodies());
  net::HttpClient client(net::parseHttpUrl(urlFor(server.port())));
  auto result = client.post("x", {}, 5s);
  REQUIRE(result.transportOk());
  CHECK(result.response.status == 500);
  CHECK_THAT(result.response.body, Catch::Contains("boom"));
}

TEST_CASE("http: stop() returns promptly with idle keep-alive connections open", "[unit][http]") {
  Gate release;
  std::atomic<int> in_handler{0};
  net::HttpServer server(
      "127.0.0.1:0",
      [&](const net::HttpRequest& request) {
        if (request.target == "/block") {
          ++in_handler;
          release.waitFor(10s);
        }
        return textResponse(200, "ok");
      },
      withBodies());
  net::HttpClient idle(net::parseHttpUrl(urlFor(server.port())));
  REQUIRE(idle.post("x", {}, 5s).transportOk()); // leaves an idle keep-alive connection

  // A second connection sits in a handler until released.
  std::thread blocked([&] {
    net::HttpClient client(net::parseHttpUrl(urlFor(server.port(), "/block")));
    client.post("x", {}, 10s);
  });
  const auto wait_deadline = SteadyTime::now() + 5s;
  while (in_handler.load() == 0 && SteadyTime::now() < wait_deadline) {
    std::this_thread::yield();
  }
  REQUIRE(in_handler.load() == 1);
  release.open(); // the handler finishes; stop() must still cut the idle connection

  const auto start = SteadyTime::now();
  server.stop();
  CHECK(SteadyTime::now() - start < 1s);
  blocked.join();
  auto after = idle.post("x", {}, 1s);
  CHECK_FALSE(after.transportOk());
}

TEST_CASE("http invoker: outcomes against the sample function", "[unit][http]") {
  struct Case {
    const char* name;
    samplefn::Verdict verdict;
    invoker::InvokeOutcome expected;
    int status;
    const char* detail;
  };
  auto c = GENERATE(Case{.name = "success",
                         .verdict = samplefn::Verdict::kSucceed,
                         .expected = invoker::InvokeOutcome::kSuccess,
                         .status = 200,
                         .detail = ""},
                    Case{.name = "HTTP 500",
                         .verdict = samplefn::Verdict::kFailHttp500,
                         .expected = invoker::InvokeOutcome::kHttpError,
                         .status = 500,
                         .detail = "injected failure"},
                    Case{.name = "function error",
                         .verdict = samplefn::Verdict::kFailFunctionError,
                         .expected = invoker::InvokeOutcome::kFunctionError,
                         .status = 200,
                         .detail = "Unhandled"},
                    Case{.name = "hang",
                         .verdict = samplefn::Verdict::kHang,
                         .expected = invoker::InvokeOutcome::kTimeout,
                         .status = 0,
                         .detail = "timed out"});
  CAPTURE(c.name);
  std::mutex seen_mutex;
  std::vector<samplefn::ReceivedRecord> seen;
  samplefn::SampleFunctionOptions options;
  options.decide = [&](const std::vector<samplefn::ReceivedRecord>&) { return c.verdict; };
  options.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    std::lock_guard lock(seen_mutex);
    seen.insert(seen.end(), batch.begin(), batch.end());
  };
  auto function = std::make_unique<samplefn::SampleFunction>(options);
  auto invoker = invoker::makeHttpInvoker(invokerOptions(function->url(), 500ms, "b:9092"));
  const auto start = SteadyTime::now();
  auto result = invoker->invoke(smallBatch());
  const auto elapsed = SteadyTime::now() - start;
  CHECK(result.outcome == c.expected);
  CHECK(result.ok() == (c.expected == invoker::InvokeOutcome::kSuccess));
  CHECK(result.http_status == c.status);
  CHECK_THAT(result.detail, Catch::Contains(c.detail));
  CHECK(elapsed < 3s);
  const auto stats = function->stats();
  CHECK(stats.invocations == 1);
  if (c.expected == invoker::InvokeOutcome::kSuccess) {
    CHECK(stats.failures == 0);
    CHECK(stats.records == 3);
    std::lock_guard lock(seen_mutex);
    REQUIRE(seen.size() == 3);
    CHECK(seen[0].value == std::optional<std::string>("value 0"));
  } else if (c.expected != invoker::InvokeOutcome::kTimeout) {
    CHECK(stats.failures == 1);
    CHECK(stats.records == 0);
  }
  // Destroying the function while a handler hangs must be prompt.
  const auto stop_start = SteadyTime::now();
  function.reset();
  CHECK(SteadyTime::now() - stop_start < 1s);
}

TEST_CASE("http invoker: unreachable function is a connection error", "[unit][http]") {
  std::uint16_t port = 0;
  {
    samplefn::SampleFunction function({});
    port = function.port();
  }
  auto invoker = invoker::makeHttpInvoker(invokerOptions(urlFor(port), 2s, ""));
  auto result = invoker->invoke(smallBatch());
  CHECK(result.outcome == invoker::InvokeOutcome::kConnectionError);
  CHECK(result.http_status == 0);
  CHECK(std::string(invoker::toString(result.outcome)) == "connection_error");
}

TEST_CASE("http invoker: outcome names", "[unit]") {
  CHECK(std::string(invoker::toString(invoker::InvokeOutcome::kSuccess)) == "success");
  CHECK(std::string(invoker::toString(invoker::InvokeOutcome::kFunctionError)) == "function_error");
  CHECK(std::string(invoker::toString(invoker::InvokeOutcome::kHttpError)) == "http_error");
  CHECK(std::string(invoker::toString(invoker::InvokeOutcome::kTimeout)) == "timeout");
  CHECK(std::string(invoker::toString(invoker::InvokeOutcome::kConnectionError)) ==
        "connection_error");
}

TEST_CASE("sample function: health, malformed bodies, and a 6 MiB batch end to end",
          "[unit][http]") {
  std::atomic<std::size_t> received_bytes{0};
  samplefn::SampleFunctionOptions options;
  options.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    std::size_t bytes = 0;
    for (const auto& r : batch) {
      bytes += r.value ? r.value->size() : 0;
    }
    received_bytes += bytes;
  };
  samplefn::SampleFunction function(options);
  net::HttpClient client(net::parseHttpUrl(function.url()));

  auto health = client.request("GET", "/healthz", "", {}, 5s);
  REQUIRE(health.transportOk());
  CHECK(health.response.status == 200);

  auto malformed = client.post("{\"records\": [", {}, 5s);
  REQUIRE(malformed.transportOk());
  CHECK(malformed.response.status == 400);
  CHECK(function.stats().failures == 1);

  std::mt19937_64 rng(3);
  Batch batch;
  std::size_t sent_bytes = 0;
  for (int i = 0; i < 600; ++i) {
    Record r;
    r.topic = "big";
    r.partition = Partition{i % 4};
    r.offset = Offset{i};
    std::string value(7 * 1024, '\0');
    for (auto& ch : value) {
      ch = static_cast<char>(rng());
    }
    sent_bytes += value.size();
    r.value = std::move(value);
    batch.records.push_back(std::move(r));
  }
  auto invoker = invoker::makeHttpInvoker(invokerOptions(function.url(), 20s, ""));
  const auto start = SteadyTime::now();
  auto result = invoker->invoke(batch);
  const auto elapsed = std::chrono::duration<double>(SteadyTime::now() - start).count();
  WARN("6 MiB-class batch (" << invoker::encodeLambdaKafkaEvent(batch, "").size()
                             << " bytes) invoked and parsed in " << elapsed << " s");
  INFO(result.detail);
  CHECK(result.ok());
  CHECK(received_bytes.load() == sent_bytes);
}
