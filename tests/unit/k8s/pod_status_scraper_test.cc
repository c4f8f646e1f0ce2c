// PodStatusScraper (k8s/pod_status_scraper.h) over a scripted API transport and a scripted
// /status fetcher: totals across rounds, every read outcome and its metric, the fatal
// hand-off once, a failed list holding the totals and logged once per episode, the round's
// deadline, the pod cap and the concurrency bound. The real API server and real HTTP side is
// tests/k8s/pod_status_test.cc.

#include "k8s/pod_status_scraper.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <deque>
#include <thread>

using namespace kesm;
using namespace kesm::k8s;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

net::HttpResult answer(int status, std::string body) {
  net::HttpResult r;
  r.response.status = status;
  r.response.body = std::move(body);
  return r;
}

net::HttpResult failure(net::HttpErrorKind kind, std::string message) {
  net::HttpResult r;
  r.error = kind;
  r.error_message = std::move(message);
  return r;
}

// An EndpointSliceList of pods p-<i> at 10.0.0.<i+1>:8080 for each i in `ordinals`.
net::HttpResult slices(const std::vector<int>& ordinals) {
  std::string endpoints;
  for (int i : ordinals) {
    endpoints += (endpoints.empty() ? "" : ",") + std::string(R"({"addresses":["10.0.0.)") +
                 std::to_string(i + 1) + R"("],"targetRef":{"kind":"Pod","name":"p-)" +
                 std::to_string(i) + R"("}})";
  }
  return answer(200, R"({"kind":"EndpointSliceList","items":[{"metadata":{"name":"s"},)"
                     R"("addressType":"IPv4","ports":[{"name":"http","port":8080}],)"
                     R"("endpoints":[)" +
                         endpoints + "]}]}");
}

std::string status(std::int64_t count, double seconds, const std::string& state = "Enabled",
                   const std::string& mapping = "orders") {
  return R"({"mode":"poller","mapping":")" + mapping + R"(","state":")" + state +
         R"(","disabledReason":"function answered 404","invocations":{"count":)" +
         std::to_string(count) + R"(,"seconds":)" + std::to_string(seconds) + "}}";
}

// The list answers, one per round (the last repeats), and what was asked.
class ScriptedApi final : public ApiTransport {
public:
  explicit ScriptedApi(std::shared_ptr<std::deque<net::HttpResult>> script)
      : script_(std::move(script)) {}
  net::HttpResult request(const std::string& method, const std::string& path,
                          const std::string&) override {
    CHECK(method == "GET");
    CHECK(path == "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices"
                  "?labelSelector=kubernetes.io/service-name%3Dkesm-orders");
    REQUIRE_FALSE(script_->empty());
    net::HttpResult r = script_->front();
    if (script_->size() > 1) {
      script_->pop_front();
    }
    return r;
  }
  std::string describe() const override { return "https://api:6443"; }
  std::string tokenError() const override { return ""; }

private:
  std::shared_ptr<std::deque<net::HttpResult>> script_;
};

// What each pod answers now (by pod name); thread-safe, as reads run in parallel.
struct Pods {
  std::mutex mutex;
  std::map<std::string, std::function<net::HttpResult(milliseconds)>> answers;
  std::atomic<int> in_flight{0};
  std::atomic<int> peak{0};
  std::atomic<int> reads{0};

  void set(const std::string& pod, net::HttpResult r) {
    std::lock_guard lock(mutex);
    answers[pod] = [r](milliseconds) { return r; };
  }
  void set(const std::string& pod, std::function<net::HttpResult(milliseconds)> f) {
    std::lock_guard lock(mutex);
    answers[pod] = std::move(f);
  }
  StatusFetcher fetcher() {
    return [this](const PodEndpoint& e, milliseconds timeout) {
      const int now = ++in_flight;
      int p = peak.load();
      while (now > p && !peak.compare_exchange_weak(p, now)) {
      }
      reads++;
      std::function<net::HttpResult(milliseconds)> f;
      {
        std::lock_guard lock(mutex);
        auto it = answers.find(e.pod);
        f = it != answers.end() ? it->second : [](milliseconds) {
          return failure(net::HttpErrorKind::kConnect, "connection refused");
        };
      }
      auto r = f(timeout);
      --in_flight;
      return r;
    };
  }
};

// A pod that never answers: it holds the read for its whole timeout.
net::HttpResult hang(milliseconds timeout) {
  std::this_thread::sleep_for(timeout);
  return failure(net::HttpErrorKind::kTimeout, "timed out reading the response");
}

struct Rig {
  std::shared_ptr<std::deque<net::HttpResult>> lists =
      std::make_shared<std::deque<net::HttpResult>>();
  Pods pods;
  metrics::Registry registry;
  metrics::PodStatusProbe probe{registry, "orders"};
  std::mutex log_mutex;
  std::vector<std::pair<LogLevel, std::string>> logs;
  std::vector<std::string> fatals;

  PodStatusScraperOptions options() {
    PodStatusScraperOptions o;
    o.mapping = "orders";
    o.ns = "ns";
    o.service = "kesm-orders";
    o.probe = &probe;
    o.on_fatal = [this](const std::string& reason) { fatals.push_back(reason); };
    o.log = [this](LogLevel level, const std::string& line) {
      std::lock_guard lock(log_mutex);
      logs.emplace_back(level, line);
    };
    return o;
  }
  std::unique_ptr<PodStatusScraper> make(PodStatusScraperOptions o) {
    return std::make_unique<PodStatusScraper>(std::make_unique<ScriptedApi>(lists), pods.fetcher(),
                                              std::move(o));
  }
  std::unique_ptr<PodStatusScraper> make() { return make(options()); }
  int logsContaining(const std::string& text) {
    std::lock_guard lock(log_mutex);
    int n = 0;
    for (const auto& [level, line] : logs) {
      n += line.find(text) != std::string::npos;
    }
    return n;
  }
  double reads(const std::string& outcome) { return probe.reads(outcome).Value(); }
};

} // namespace

TEST_CASE("pod status scraper: totals sum the pods across rounds, restarts and departures",
          "[unit]") {
  Rig rig;
  auto scraper = rig.make();
  CHECK(scraper->invocationTotals().count == 0);

  rig.lists->push_back(slices({0, 1}));
  rig.pods.set("p-0", answer(200, status(10, 1.0)));
  rig.pods.set("p-1", answer(200, status(5, 0.5)));
  auto round = scraper->scrapeOnce();
  CHECK(round.list_ok);
  CHECK(round.endpoints == 2);
  CHECK(round.outcomes.at("p-0") == PodReadOutcome::kOk);
  CHECK(scraper->invocationTotals().count == 15);
  CHECK(scraper->invocationTotals().seconds == Approx(1.5));
  CHECK(scraper->podsSeen() == 2);
  CHECK(rig.probe.pods_seen.Value() == 2);
  CHECK(rig.reads("ok") == 2);

  // p-0 restarted (3 since), p-1 grew by 5.
  rig.pods.set("p-0", answer(200, status(3, 0.3)));
  rig.pods.set("p-1", answer(200, status(10, 1.0)));
  scraper->scrapeOnce();
  CHECK(scraper->invocationTotals().count == 23);
  CHECK(scraper->invocationTotals().seconds == Approx(2.3));

  // p-1 leaves the Service: what it contributed stays.
  rig.lists->clear();
  rig.lists->push_back(slices({0}));
  rig.pods.set("p-0", answer(200, status(4, 0.4)));
  scraper->scrapeOnce();
  CHECK(scraper->invocationTotals().count == 24);
  CHECK(scraper->podsSeen() == 1);
  CHECK(rig.probe.pods_seen.Value() == 1);
  CHECK(rig.fatals.empty());
}

TEST_CASE("pod status scraper: every read outcome is classified, counted and logged once",
          "[unit]") {
  struct Row {
    const char* what;
    net::HttpResult answer;
    PodReadOutcome outcome;
    std::string error;
  };
  const auto row = GENERATE(values<Row>({
      {.what = "timeout",
       .answer = failure(net::HttpErrorKind::kTimeout, "timed out reading"),
       .outcome = PodReadOutcome::kTimeout,
       .error = "timed out reading"},
      {.what = "refused",
       .answer = failure(net::HttpErrorKind::kConnect, "connecting to x: refused"),
       .outcome = PodReadOutcome::kUnreachable,
       .error = "refused"},
      {.what = "huge body",
       .answer = failure(net::HttpErrorKind::kIo, "reading from x: body limit exceeded"),
       .outcome = PodReadOutcome::kTooLarge,
       .error = "body limit exceeded"},
      {.what = "not HTTP",
       .answer = failure(net::HttpErrorKind::kIo, "reading from x: bad version"),
       .outcome = PodReadOutcome::kIoError,
       .error = "bad version"},
      {.what = "500",
       .answer = answer(500, "oops"),
       .outcome = PodReadOutcome::kHttpError,
       .error = "HTTP 500"},
      {.what = "garbage",
       .answer = answer(200, "\x01\x02 not json"),
       .outcome = PodReadOutcome::kMalformed,
       .error = "not JSON"},
      {.what = "another mapping",
       .answer = answer(200, status(7, 1, "Disabled", "payments")),
       .outcome = PodReadOutcome::kWrongMapping,
       .error = "a poller of mapping \"payments\", not orders"},
  }));
  INFO(row.what);
  Rig rig;
  auto scraper = rig.make();
  rig.lists->push_back(slices({0, 1}));
  rig.pods.set("p-0", answer(200, status(10, 1.0)));
  rig.pods.set("p-1", row.answer);
  for (int i = 0; i < 3; ++i) {
    const auto round = scraper->scrapeOnce();
    CHECK(round.outcomes.at("p-1") == row.outcome);
    CHECK_THAT(round.errors.at("p-1"),
               Catch::Contains("http://10.0.0.2:8080/status: ") && Catch::Contains(row.error));
  }
  CHECK(rig.reads(toString(row.outcome)) == 3);
  CHECK(rig.reads("ok") == 3);
  // The readable pod counts; the other one never does (a wrong mapping's Disabled neither).
  CHECK(scraper->invocationTotals().count == 10);
  CHECK(rig.fatals.empty());
  CHECK(rig.logsContaining("pod p-1 unreadable (" + std::string(toString(row.outcome)) + ")") == 1);
  // Fixed: logged once more, as readable again; its whole totals count then.
  rig.pods.set("p-1", answer(200, status(2, 0.2)));
  scraper->scrapeOnce();
  CHECK(rig.logsContaining("pod p-1 readable again") == 1);
  CHECK(scraper->invocationTotals().count == 12);
}

TEST_CASE("pod status scraper: a Disabled pod reaches on_fatal once, naming the pod", "[unit]") {
  Rig rig;
  auto scraper = rig.make();
  rig.lists->push_back(slices({0, 1, 2}));
  rig.pods.set("p-0", answer(200, status(1, 0.1)));
  rig.pods.set("p-1", answer(200, status(1, 0.1)));
  rig.pods.set("p-2", answer(200, status(1, 0.1)));
  scraper->scrapeOnce();
  CHECK(rig.fatals.empty());
  CHECK_FALSE(scraper->fatal());
  rig.pods.set("p-2", answer(200, status(2, 0.2, "Disabled")));
  rig.pods.set("p-1", answer(200, status(2, 0.2, "Disabled")));
  scraper->scrapeOnce();
  REQUIRE(rig.fatals.size() == 1);
  CHECK_THAT(rig.fatals[0], Catch::Contains("pod p-1 of Service ns/kesm-orders") &&
                                Catch::Contains("function answered 404"));
  CHECK(scraper->fatal() == rig.fatals[0]);
  scraper->scrapeOnce();
  CHECK(rig.fatals.size() == 1);
  CHECK(scraper->invocationTotals().count == 5); // its invocations still count
}

TEST_CASE("pod status scraper: a failed list holds the totals, logged once per episode", "[unit]") {
  struct Row {
    const char* what;
    net::HttpResult answer;
    std::string error;
  };
  const auto row = GENERATE(values<Row>({
      {.what = "unreachable",
       .answer = failure(net::HttpErrorKind::kConnect, "connecting to api: refused"),
       .error = "connecting to api: refused"},
      {.what = "403",
       .answer = answer(403, R"({"kind":"Status","reason":"Forbidden","message":"no"})"),
       .error = "HTTP 403 Forbidden: no. RBAC: the controller's Role needs `list` on "
                "`endpointslices` (apiGroup discovery.k8s.io) in namespace ns"},
      {.what = "a 200 that is no list", .answer = answer(200, "[]"), .error = "HTTP 200 but"},
  }));
  INFO(row.what);
  Rig rig;
  auto scraper = rig.make();
  rig.lists->push_back(slices({0}));
  rig.lists->push_back(row.answer);
  rig.lists->push_back(row.answer);
  rig.lists->push_back(row.answer);
  rig.lists->push_back(slices({0}));
  rig.pods.set("p-0", answer(200, status(10, 1.0)));
  scraper->scrapeOnce();
  CHECK(scraper->invocationTotals().count == 10);
  rig.pods.set("p-0", answer(200, status(20, 2.0)));
  for (int i = 0; i < 3; ++i) {
    const auto round = scraper->scrapeOnce();
    CHECK_FALSE(round.list_ok);
    CHECK_THAT(round.list_error, Catch::Contains(row.error));
    CHECK(scraper->invocationTotals().count == 10); // held
    CHECK(scraper->podsSeen() == 1);
  }
  CHECK(rig.pods.reads == 1); // no pod read without a list
  CHECK(rig.probe.list_errors.Value() == 3);
  CHECK(rig.logsContaining("cannot list the pods of Service ns/kesm-orders") == 1);
  scraper->scrapeOnce();
  CHECK(rig.logsContaining("listing the pods of Service ns/kesm-orders works again") == 1);
  CHECK(scraper->invocationTotals().count == 20); // the increase meanwhile is not lost
}

TEST_CASE("pod status scraper: slice warnings are logged once", "[unit]") {
  Rig rig;
  auto scraper = rig.make();
  rig.lists->push_back(
      answer(200, R"({"kind":"EndpointSliceList","items":[{"metadata":{"name":"odd"},)"
                  R"("addressType":"IPv4","ports":[{"name":"a","port":1},{"name":"b","port":2}],)"
                  R"("endpoints":[{"addresses":["10.0.0.1"]}]}]})"));
  scraper->scrapeOnce();
  const auto round = scraper->scrapeOnce();
  CHECK(round.endpoints == 0);
  REQUIRE(round.warnings.size() == 1);
  CHECK(rig.logsContaining("slice odd: 2 TCP ports and none named \"http\"") == 1);
}

TEST_CASE("pod status scraper: pods that never answer cannot stretch a round past its deadline",
          "[unit]") {
  Rig rig;
  auto o = rig.options();
  o.read_timeout = 200ms;
  o.round_timeout = 300ms;
  o.concurrency = 1;
  auto scraper = rig.make(o);
  rig.lists->push_back(slices({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  for (int i = 0; i < 10; ++i) {
    rig.pods.set("p-" + std::to_string(i), hang);
  }
  const auto round = scraper->scrapeOnce();
  // p-0 takes 200 ms, p-1 the 100 ms left; the others are skipped, not waited for.
  CHECK(round.outcomes.at("p-0") == PodReadOutcome::kTimeout);
  CHECK(round.outcomes.at("p-1") == PodReadOutcome::kTimeout);
  CHECK(round.outcomes.at("p-9") == PodReadOutcome::kSkipped);
  CHECK(rig.reads("skipped") >= 7);
  CHECK(round.took >= 290ms);
  CHECK(round.took < 1000ms); // read one after the other to their timeouts: 2 s
}

TEST_CASE("pod status scraper: reads run concurrency at a time", "[unit]") {
  Rig rig;
  auto o = rig.options();
  o.concurrency = 4;
  auto scraper = rig.make(o);
  // Each read waits (up to 5 s) until 4 are in flight at once: with fewer workers the wait
  // runs out and the peak stays below 4; with more, the peak passes 4.
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<int> all;
  for (int i = 0; i < 16; ++i) {
    all.push_back(i);
    rig.pods.set("p-" + std::to_string(i), [&](milliseconds) {
      std::unique_lock lock(mutex);
      cv.notify_all();
      cv.wait_for(lock, 5s, [&] { return rig.pods.in_flight >= 4; });
      return answer(200, status(1, 0.5));
    });
  }
  rig.lists->push_back(slices(all));
  scraper->scrapeOnce();
  CHECK(rig.pods.peak == 4);
  CHECK(scraper->invocationTotals().count == 16);
  CHECK(scraper->invocationTotals().seconds == Approx(8.0));
}

TEST_CASE("pod status scraper: at most max_pods are read a round", "[unit]") {
  Rig rig;
  auto o = rig.options();
  o.max_pods = 3;
  auto scraper = rig.make(o);
  rig.lists->push_back(slices({0, 1, 2, 3, 4}));
  for (int i = 0; i < 5; ++i) {
    rig.pods.set("p-" + std::to_string(i), answer(200, status(1, 0.1)));
  }
  const auto round = scraper->scrapeOnce();
  CHECK(round.endpoints == 5);
  CHECK(rig.pods.reads == 3);
  CHECK(round.outcomes.at("p-3") == PodReadOutcome::kSkipped);
  CHECK_THAT(round.errors.at("p-4"), Catch::Contains("beyond the 3 pods read in a round"));
  CHECK(scraper->invocationTotals().count == 3);
  CHECK(scraper->podsSeen() == 5);
  CHECK(rig.logsContaining("lists 5 pods; only the first 3 (by name)") == 1);
}

TEST_CASE("pod status scraper: its thread scrapes every interval and stops promptly", "[unit]") {
  Rig rig;
  auto o = rig.options();
  o.interval = 20ms;
  auto scraper = rig.make(o);
  rig.lists->push_back(slices({0}));
  std::atomic<int> count{0};
  rig.pods.set("p-0", [&count](milliseconds) { return answer(200, status(++count, 0)); });
  scraper->start();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (scraper->invocationTotals().count < 5 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  CHECK(scraper->invocationTotals().count >= 5);
  const auto before = std::chrono::steady_clock::now();
  scraper->stop();
  CHECK(std::chrono::steady_clock::now() - before < 1s);
  const auto stopped_at = rig.pods.reads.load();
  std::this_thread::sleep_for(60ms);
  CHECK(rig.pods.reads == stopped_at);
}

TEST_CASE("pod status scraper: bad options are refused at construction", "[unit]") {
  Rig rig;
  struct Row {
    const char* what;
    std::function<void(PodStatusScraperOptions&)> change;
    std::string error;
  };
  const auto row = GENERATE(values<Row>({
      {"no service", [](auto& o) { o.service.clear(); }, "must not be empty"},
      {"zero interval", [](auto& o) { o.interval = 0ms; }, "must be positive"},
      {"round shorter than a read",
       [](auto& o) {
         o.read_timeout = 2s;
         o.round_timeout = 1s;
       },
       "round_timeout must be at least read_timeout"},
      {"no concurrency", [](auto& o) { o.concurrency = 0; }, "concurrency must be 1 to 256"},
      {"no pods", [](auto& o) { o.max_pods = 0; }, "max_pods must be at least 1"},
  }));
  INFO(row.what);
  auto o = rig.options();
  row.change(o);
  CHECK_THROWS_WITH(rig.make(o), Catch::Contains(row.error));
}
