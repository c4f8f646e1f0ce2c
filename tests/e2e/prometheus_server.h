#pragma once

// A real Prometheus server (Debian's `prometheus` on PATH) as a child process on loopback,
// scraping one kesm every second and evaluating a rules file every second, and a client of
// its HTTP API. Owned by one test thread; stopped (SIGKILL) and its data removed at
// destruction.

#include "../integration/harness.h"

#include <boost/json/value.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kesm::test::e2e {

// One answer of the HTTP API: `data` when status is "success", else the error text.
struct PromAnswer {
  bool ok = false;
  std::string error;
  boost::json::value data;
};

class PrometheusServer {
public:
  // `dir`: a fresh directory for its config, data and log. `kesm_port`: the scrape target,
  // job "kesm". `rules_file`: "" for none.
  PrometheusServer(std::string dir, std::uint16_t kesm_port, const std::string& rules_file);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  std::uint16_t port() const { return port_; }
  const std::string& logPath() const { return log_; }

  // GET /api/v1/<endpoint> with the query parameters URL-encoded (Boost.URL).
  PromAnswer api(const std::string& endpoint,
                 const std::vector<std::pair<std::string, std::string>>& params = {}) const;
  // An instant query at the server's now, and a range query [start, end] (Unix seconds).
  PromAnswer query(const std::string& expr) const;
  PromAnswer queryRange(const std::string& expr, double start, double end,
                        double step_seconds) const;

private:
  std::string dir_;
  std::string log_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// The series of a query answer (`data.result`), each as its labels and its samples'
// values (a vector answer has one sample per series).
struct PromSeries {
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<double> values;
  std::string label(const std::string& name) const;
};
std::vector<PromSeries> seriesOf(const PromAnswer& answer);

} // namespace kesm::test::e2e
