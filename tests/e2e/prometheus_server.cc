#include "prometheus_server.h"

#include "e2e_harness.h"
#include "net/http.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/url.hpp>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace kesm::test::e2e {

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

PrometheusServer::PrometheusServer(std::string dir, std::uint16_t kesm_port,
                                   const std::string& rules_file)
    : dir_(std::move(dir)), log_(dir_ + "/prometheus.log") {
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_ + "/data");
  std::string config = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n";
  if (!rules_file.empty()) {
    config += "rule_files: ['";
    config += rules_file;
    config += "']\n";
  }
  config += "scrape_configs:\n  - job_name: kesm\n    static_configs:\n";
  config += "      - targets: ['127.0.0.1:";
  config += std::to_string(kesm_port);
  config += "']\n";
  std::ofstream(dir_ + "/prometheus.yml") << config;
  // Retry on a port another process took between freePort() and the bind.
  for (int attempt = 0; attempt < 3 && !process_; ++attempt) {
    port_ = freePort();
    auto process = std::make_unique<ChildProcess>(
        "prometheus",
        std::vector<std::string>{
            "--config.file=" + dir_ + "/prometheus.yml", "--storage.tsdb.path=" + dir_ + "/data",
            "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=info"},
        log_);
    const bool ready = waitUntil(
        60s, [&] { return !process->running() || httpGet(port_, "/-/ready").status == 200; });
    if (ready && process->running()) {
      process_ = std::move(process);
    }
  }
  if (!process_) {
    throw std::runtime_error("prometheus did not become ready (is Debian's prometheus "
                             "installed? scripts/install-deps.sh installs it); its log:\n" +
                             readFile(log_));
  }
}

PrometheusServer::~PrometheusServer() {
  process_.reset(); // SIGKILL: nothing of its data is kept
  std::error_code ignored;
  std::filesystem::remove_all(dir_ + "/data", ignored);
}

PromAnswer
PrometheusServer::api(const std::string& endpoint,
                      const std::vector<std::pair<std::string, std::string>>& params) const {
  boost::urls::url target("/api/v1/" + endpoint);
  for (const auto& [name, value] : params) {
    target.params().append({name, value});
  }
  net::HttpClient client(net::parseHttpUrl("http://127.0.0.1:" + std::to_string(port_) + "/"));
  const auto result = client.request("GET", std::string(target.encoded_target()), "", {}, 30s);
  PromAnswer answer;
  if (!result.transportOk()) {
    answer.error = "no answer from prometheus: " + result.error_message;
    return answer;
  }
  boost::json::value body;
  try {
    body = boost::json::parse(result.response.body);
  } catch (const std::exception& e) {
    answer.error = "HTTP " + std::to_string(result.response.status) + ", not JSON: " + e.what();
    return answer;
  }
  const auto& object = body.as_object();
  if (object.contains("status") && object.at("status") == "success") {
    answer.ok = true;
    answer.data = object.at("data");
  } else {
    answer.error =
        "HTTP " + std::to_string(result.response.status) + ": " + boost::json::serialize(body);
  }
  return answer;
}

PromAnswer PrometheusServer::query(const std::string& expr) const {
  return api("query", {{"query", expr}});
}

PromAnswer PrometheusServer::queryRange(const std::string& expr, double start, double end,
                                        double step_seconds) const {
  return api("query_range", {{"query", expr},
                             {"start", std::to_string(start)},
                             {"end", std::to_string(end)},
                             {"step", std::to_string(step_seconds)}});
}

std::string PromSeries::label(const std::string& name) const {
  for (const auto& [key, value] : labels) {
    if (key == name) {
      return value;
    }
  }
  return "";
}

std::vector<PromSeries> seriesOf(const PromAnswer& answer) {
  std::vector<PromSeries> out;
  if (!answer.ok || !answer.data.is_object()) {
    return out;
  }
  const auto& data = answer.data.as_object();
  const auto& result = data.at("result");
  if (!result.is_array()) { // a scalar or string answer
    return out;
  }
  auto number = [](const boost::json::value& pair) {
    return std::stod(std::string(pair.as_array().at(1).as_string()));
  };
  for (const auto& item : result.as_array()) {
    PromSeries series;
    const auto& object = item.as_object();
    for (const auto& [key, value] : object.at("metric").as_object()) {
      series.labels.emplace_back(std::string(key), std::string(value.as_string()));
    }
    if (object.contains("value")) {
      series.values.push_back(number(object.at("value")));
    } else {
      for (const auto& pair : object.at("values").as_array()) {
        series.values.push_back(number(pair));
      }
    }
    out.push_back(std::move(series));
  }
  return out;
}

} // namespace kesm::test::e2e
