// GET /status/history and the status page at GET / on a kesm draining a burst on the mock
// cluster: the history grows one sample per evaluation and records the scale-up with its
// reason; the page is served with its CSP and never hides the other endpoints.

#include "app/runtime.h"
#include "app/status_page.h"
#include "harness.h"
#include "kafka/kafka.h"
#include "net/http.h"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <string>

using namespace kesm;
using namespace kesm::test;

namespace {

namespace bj = boost::json;

bj::object historyOf(app::Runtime& runtime) {
  bj::value doc = bj::parse(scrape(runtime, "/status/history"));
  return doc.as_object().at("mappings").as_array().at(0).as_object();
}

// The first decision from `from` upwards with this reason, or null.
const bj::object* scaleUp(const bj::object& history) {
  for (const auto& d : history.at("decisions").as_array()) {
    const auto& o = d.as_object();
    if (o.at("reason").as_string() == "scale_up" &&
        o.at("to").as_int64() > o.at("from").as_int64()) {
      return &o;
    }
  }
  return nullptr;
}

} // namespace

TEST_CASE("status page: /status/history grows and records a scale-up with its reason after a "
          "burst",
          "[integration][status-page]") {
  constexpr int kPartitions = 8;
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("history", kPartitions);
  samplefn::SampleFunctionOptions fn;
  fn.latency = 400ms; // the burst is ~64 s of one poller's work: the controller scales up
  samplefn::SampleFunction function(fn);
  MappingYaml m =
      testMapping("history", cluster.bootstrapServers(), "history", function.url(), 1, kPartitions);
  m.scaling.set("evaluationInterval", "1s")
      .set("scaleDownStabilization", "5s")
      .set("maxConcurrentBatches", 1);
  auto config = config::parseConfig(configYaml(m), "history.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  REQUIRE(waitUntil(30s, [&] { return runtime.snapshot().at(0).running == 1; }));

  // Before the burst: the start decision, and samples every evaluation.
  bj::object before;
  REQUIRE(waitUntil(10s, [&] {
    before = historyOf(runtime);
    return before.at("samples").as_array().size() >= 2;
  }));
  CHECK(before.at("name").as_string() == "history");
  CHECK(before.at("evaluationIntervalSeconds").to_number<double>() == 1.0);
  const auto& start = before.at("decisions").as_array().at(0).as_object();
  CHECK(start.at("from").as_int64() == 0);
  CHECK(start.at("to").as_int64() == 1);
  CHECK(start.at("reason").as_string() == "start");
  const auto samples_before = before.at("samples").as_array().size();

  produceNumbered(cluster.bootstrapServers(), "history", kPartitions, 2000);

  bj::object after;
  const bool scaled = waitUntil(60s, [&] {
    after = historyOf(runtime);
    return scaleUp(after) != nullptr;
  });
  INFO(bj::serialize(after));
  REQUIRE(scaled);
  const bj::object& up = *scaleUp(after);
  CHECK(up.at("from").as_int64() >= 1);
  CHECK(up.at("to").as_int64() <= kPartitions);
  // What the controller saw: the backlog of the burst, on every partition.
  const std::string detail(up.at("detail").as_string());
  CHECK(detail.rfind("lag ", 0) == 0);
  CHECK(detail.find("/8 partitions") != std::string::npos);
  CHECK(up.at("at").as_string().size() == 24); // 2026-12-01T20:00:00.000Z

  // Samples: more than before, in time order, one per evaluation (about 1 s apart), and the
  // burst's lag among them.
  REQUIRE(waitUntil(60s, [&] {
    after = historyOf(runtime);
    for (const auto& s : after.at("samples").as_array()) {
      if (s.as_object().at("committedPerSecond").to_number<double>() > 0) {
        return true;
      }
    }
    return false;
  }));
  const auto& samples = after.at("samples").as_array();
  CHECK(samples.size() > samples_before);
  double last = 0, peak_lag = 0;
  bool ordered = true, spaced = true;
  for (const auto& v : samples) {
    const auto& s = v.as_object();
    const double t = s.at("time").to_number<double>();
    ordered = ordered && t > last;
    spaced = spaced && (last == 0 || t - last < 10);
    last = t;
    if (!s.at("lag").is_null()) {
      peak_lag = std::max(peak_lag, s.at("lag").to_number<double>());
    }
    CHECK(s.at("desired").as_int64() >= 1);
    CHECK(s.at("running").as_int64() >= 0);
  }
  CHECK(ordered);
  CHECK(spaced);
  CHECK(peak_lag > 1000);
  const bj::value doc = bj::parse(scrape(runtime, "/status/history"));
  const auto& limits = doc.as_object().at("limits");
  CHECK(limits.at("samples").as_int64() == 600);
  CHECK(limits.at("windowSeconds").as_int64() == 600);
  CHECK(limits.at("decisions").as_int64() == 50);
  runtime.stop();
}

TEST_CASE("status page: GET / serves the page with its CSP, other paths are unchanged",
          "[integration][status-page]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("page", 1);
  samplefn::SampleFunction function(samplefn::SampleFunctionOptions{});
  auto config = config::parseConfig(
      mappingYaml("page", cluster.bootstrapServers(), "page", function.url(), 1, 1), "page.yaml",
      kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  net::HttpClient client(
      net::parseHttpUrl("http://127.0.0.1:" + std::to_string(runtime.metricsPort()) + "/"));
  auto get = [&](const std::string& method, const std::string& target) {
    auto result = client.request(method, target, "", {}, 5s);
    INFO(method << " " << target << ": " << result.error_message);
    REQUIRE(result.transportOk());
    return result.response;
  };

  const auto page = get("GET", "/");
  CHECK(page.status == 200);
  CHECK(page.header("Content-Type") == "text/html; charset=utf-8");
  CHECK(page.body == app::statusPage().html);
  CHECK(page.body.rfind("<!doctype html>", 0) == 0);
  CHECK(page.body.size() < 16 * 1024); // small, and nothing to fetch besides /status*
  CHECK(page.body.find("http://") == page.body.find("http://www.w3.org/2000/svg"));
  CHECK(page.body.find("https://") == std::string::npos);
  const std::string csp = page.header("Content-Security-Policy");
  CHECK(csp == app::contentSecurityPolicy(page.body));
  CHECK(csp.find("default-src 'none'") != std::string::npos);
  CHECK(csp.find("script-src 'sha256-") != std::string::npos);
  CHECK(csp.find("style-src 'sha256-") != std::string::npos);
  CHECK(csp.find("connect-src 'self'") != std::string::npos);
  CHECK(csp.find("unsafe") == std::string::npos);
  CHECK(get("GET", "/?refresh=1").body == page.body); // the query is ignored, as elsewhere

  const auto history = get("GET", "/status/history");
  CHECK(history.status == 200);
  CHECK(history.header("Content-Type") == "application/json");
  CHECK(boost::json::parse(history.body).as_object().at("mappings").as_array().size() == 1);

  CHECK(get("GET", "/metrics").body.find("kesm_pollers{") != std::string::npos);
  CHECK(get("GET", "/healthz").status == 200);
  CHECK(get("GET", "/status").header("Content-Type") == "application/json");
  for (const char* unknown : {"/index.html", "/status/", "/status/history/x", "//", "/metrics/"}) {
    INFO(unknown);
    CHECK(get("GET", unknown).status == 404);
  }
  CHECK(get("POST", "/").status == 405);
  runtime.stop();
}
