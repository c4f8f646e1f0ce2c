// What operators expect of any exporter besides kesm's own metrics: process_* and
// kesm_build_info on a running kesm's /metrics.

#include "app/runtime.h"
#include "common/version.h"
#include "harness.h"
#include "kafka/kafka.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <librdkafka/rdkafka.h>
#include <unistd.h>

using namespace kesm;
using namespace kesm::test;

TEST_CASE("metrics: process_* and kesm_build_info are exported with plausible values",
          "[integration]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("proc", 1);
  samplefn::SampleFunction function(samplefn::SampleFunctionOptions{});
  auto config = config::parseConfig(
      mappingYaml("proc", cluster.bootstrapServers(), "proc", function.url(), 1, 1), "test.yaml",
      kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  const std::string body = scrape(runtime, "/metrics");
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(metricValue(body, "process_resident_memory_bytes") > 1e6);
  CHECK(metricValue(body, "process_virtual_memory_bytes") >=
        metricValue(body, "process_resident_memory_bytes"));
  CHECK(metricValue(body, "process_cpu_seconds_total") >= 0);
  CHECK(metricValue(body, "process_threads") >= 2);
  CHECK(metricValue(body, "process_open_fds") >= 3);
  CHECK(metricValue(body, "process_max_fds") >= metricValue(body, "process_open_fds"));
  // This test process started kesm's Runtime: its start lies in the past, within the hour.
  const double started = metricValue(body, "process_start_time_seconds");
  CHECK(started <= now + 1);
  CHECK(started > now - 3600);
  CHECK(body.find("# TYPE process_cpu_seconds_total counter") != std::string::npos);
  const std::string info = std::string("kesm_build_info{librdkafka_version=\"") +
                           rd_kafka_version_str() + "\",revision=\"";
  const auto at = body.find(info);
  REQUIRE(at != std::string::npos);
  const auto line = body.substr(at, body.find('\n', at) - at);
  CHECK(line.find(std::string("version=\"") + kVersion + "\"} 1") != std::string::npos);
  CHECK(line.find("revision=\"\"") == std::string::npos);
  runtime.stop();
}
