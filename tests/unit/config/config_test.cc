#include "config/config.h"
#include "kafka/kafka.h"
#include "rule_case.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

using namespace kesm::config;
using namespace kesm::config::test;
using namespace std::chrono_literals;

namespace {

const char* const kMinimal = R"(mappings:
  - name: orders
    source:
      bootstrapServers: kafka-0:9092
      topics: [orders]
    function:
      url: http://orders-fn:8080/invoke
)";

} // namespace

TEST_CASE("config: a file with every key is read as written", "[unit]") {
  const std::string yaml = R"(# every key kesm knows
server:
  listen: 127.0.0.1:9555
mappings:
  - name: orders
    source:
      bootstrapServers: kafka-0:9092,kafka-1:9093
      topics: [orders, refunds]
      consumerGroupId: my-group
      startingPosition: LATEST
      partitionAssignor: cooperative-sticky
      librdkafka:
        fetch.max.bytes: "52428800"
        check.crcs: true
        client.rack: eu-west-1a
        queued.min.messages: 1000
    function:
      url: http://orders-fn:8080/2015-03-31/functions/function/invocations
      timeout: 2m
    batching:
      batchSize: 500
      maximumBatchingWindow: 1.5s
    scaling:
      minimumPollers: 2
      maximumPollers: 40
      gracePeriod: 45s
      evaluationInterval: 2s
      scaleDownStabilization: 5m
      maxConcurrentBatches: 3
    retry:
      initialBackoff: 250ms
      maximumBackoff: 1m
      backoffMultiplier: 3
      jitter: 0.5
  - name: payments.v2
    source:
      bootstrapServers: ["[::1]:9092", "kafka_2.internal:19092"]
      topics: payments
    function:
      url: http://10.0.0.7
)";
  Config config = parseConfig(yaml, "kesm.yaml", kesm::kafka::checkSetting);
  CHECK(config.server.listen == "127.0.0.1:9555");
  REQUIRE(config.mappings.size() == 2);

  const Mapping& m = config.mappings[0];
  CHECK(m.name == "orders");
  CHECK(m.source.bootstrap_servers == std::vector<std::string>{"kafka-0:9092", "kafka-1:9093"});
  CHECK(m.source.topics == std::vector<std::string>{"orders", "refunds"});
  CHECK(m.source.consumer_group_id == "my-group");
  CHECK(m.source.starting_position == StartingPosition::kLatest);
  CHECK(m.source.partition_assignor == "cooperative-sticky");
  using Setting = std::pair<std::string, std::string>;
  CHECK(m.source.librdkafka == std::vector<Setting>{{"fetch.max.bytes", "52428800"},
                                                    {"check.crcs", "true"},
                                                    {"client.rack", "eu-west-1a"},
                                                    {"queued.min.messages", "1000"}});
  CHECK(m.function.url == "http://orders-fn:8080/2015-03-31/functions/function/invocations");
  CHECK(m.function.timeout == 2min);
  CHECK(m.batching.batch_size == 500);
  CHECK(m.batching.maximum_batching_window == 1500ms);
  CHECK(m.batching.maximum_payload_bytes == kMaxPayloadBytes);
  CHECK(m.scaling.minimum_pollers == 2);
  CHECK(m.scaling.maximum_pollers == 40);
  CHECK(m.scaling.grace_period == 45s);
  CHECK(m.scaling.evaluation_interval == 2s);
  CHECK(m.scaling.scale_down_stabilization == 5min);
  CHECK(m.scaling.max_concurrent_batches == 3);
  CHECK(m.retry.initial_backoff == 250ms);
  CHECK(m.retry.maximum_backoff == 1min);
  CHECK(m.retry.backoff_multiplier == 3.0);
  CHECK(m.retry.jitter == 0.5);

  const Mapping& p = config.mappings[1];
  CHECK(p.name == "payments.v2");
  CHECK(p.source.bootstrap_servers ==
        std::vector<std::string>{"[::1]:9092", "kafka_2.internal:19092"});
  CHECK(p.source.topics == std::vector<std::string>{"payments"});
  CHECK(p.source.consumer_group_id == "kesm-payments.v2");
  CHECK(p.function.url == "http://10.0.0.7");
}

TEST_CASE("config: a minimal file gets every default", "[unit]") {
  Config config = parseConfig(kMinimal, "kesm.yaml", kesm::kafka::checkSetting);
  CHECK(config.server.listen == kDefaultListen);
  REQUIRE(config.mappings.size() == 1);
  const Mapping& m = config.mappings[0];
  CHECK(m.name == "orders");
  CHECK(m.source.bootstrap_servers == std::vector<std::string>{"kafka-0:9092"});
  CHECK(m.source.topics == std::vector<std::string>{"orders"});
  CHECK(m.source.consumer_group_id == "kesm-orders");
  CHECK(m.source.starting_position == StartingPosition::kTrimHorizon);
  CHECK(m.source.partition_assignor == "roundrobin");
  CHECK(m.source.librdkafka.empty());
  CHECK(m.function.url == "http://orders-fn:8080/invoke");
  CHECK(m.function.timeout == 30s);
  CHECK(m.function.null_values == NullValues::kEmpty);
  CHECK(m.function.detect_error_body);
  CHECK(m.batching.batch_size == kDefaultBatchSize);
  CHECK(m.batching.maximum_batching_window == kDefaultBatchingWindow);
  CHECK(m.batching.maximum_payload_bytes == kMaxPayloadBytes);
  CHECK(m.scaling.minimum_pollers == kDefaultMinimumPollers);
  CHECK(m.scaling.maximum_pollers == kDefaultMaximumPollers);
  CHECK(m.scaling.grace_period == 30s);
  CHECK(m.scaling.evaluation_interval == 5s);
  CHECK(m.scaling.scale_down_stabilization == 60s);
  CHECK(m.scaling.max_concurrent_batches == kDefaultMaxConcurrentBatches);
  CHECK(m.retry.initial_backoff == 100ms);
  CHECK(m.retry.maximum_backoff == 30s);
  CHECK(m.retry.backoff_multiplier == 2.0);
  CHECK(m.retry.jitter == 0.2);
}

TEST_CASE("config: the consumer group defaults to kesm-<name> for each mapping", "[unit]") {
  Config config = parseConfig(R"(mappings:
  - name: a
    source: {bootstrapServers: k:9092, topics: [t]}
    function: {url: "http://fn/"}
  - name: b
    source: {bootstrapServers: k:9092, topics: [t], consumerGroupId: legacy-b}
    function: {url: "http://fn/"}
)",
                              "kesm.yaml", kesm::kafka::checkSetting);
  REQUIRE(config.mappings.size() == 2);
  CHECK(config.mappings[0].source.consumer_group_id == "kesm-a");
  CHECK(config.mappings[1].source.consumer_group_id == "legacy-b");
}

TEST_CASE("config: where the source values were written is kept for the preflight", "[unit]") {
  Config config = parseConfig(R"(mappings:
  - name: a
    source:
      bootstrapServers: kafka-0:9092,kafka-1:9092
      topics:
        - orders
        - refunds
      librdkafka: {client.rack: r1}
    function: {url: "http://fn/"}
  - name: b
    source: {bootstrapServers: [k:9092], topics: payments}
    function: {url: "http://fn/"}
)",
                              "kesm.yaml", kesm::kafka::checkSetting);
  CHECK(config.file == "kesm.yaml");
  REQUIRE(config.mappings.size() == 2);
  auto located = [](const Location& l) {
    return l.key + "@" + std::to_string(l.line) + ":" + std::to_string(l.column);
  };
  const SourceConfig& a = config.mappings[0].source;
  CHECK(located(a.bootstrap_servers_at) == "mappings[0].source.bootstrapServers@4:25");
  REQUIRE(a.topics_at.size() == 2);
  CHECK(located(a.topics_at[0]) == "mappings[0].source.topics[0]@6:11");
  CHECK(located(a.topics_at[1]) == "mappings[0].source.topics[1]@7:11");
  CHECK(located(a.librdkafka_at) == "mappings[0].source.librdkafka@8:19");
  const SourceConfig& b = config.mappings[1].source;
  CHECK(located(b.bootstrap_servers_at) == "mappings[1].source.bootstrapServers@11:32");
  REQUIRE(b.topics_at.size() == 1);
  CHECK(located(b.topics_at[0]) == "mappings[1].source.topics@11:50");
  CHECK(b.librdkafka_at.line == 0);
}

TEST_CASE("config: values written in other YAML styles are accepted", "[unit]") {
  // Quoted numbers (as Helm's quote writes them), block lists, and anchors.
  Config config = parseConfig(R"(mappings:
  - name: "orders"
    source:
      bootstrapServers:
        - kafka-0:9092
        - kafka-1:9092
      topics:
        - orders
      librdkafka: &rdkafka {fetch.max.bytes: 1048576}
    function: {url: "http://fn:8080/invoke", timeout: "5s"}
    batching: {batchSize: "250", maximumBatchingWindow: 0}
    scaling: {minimumPollers: +3, maximumPollers: 3}
  - name: refunds
    source:
      bootstrapServers: kafka-0:9092
      topics: [refunds]
      librdkafka: *rdkafka
    function: {url: "http://fn:8080/invoke"}
)",
                              "kesm.yaml", kesm::kafka::checkSetting);
  REQUIRE(config.mappings.size() == 2);
  const Mapping& m = config.mappings[0];
  CHECK(m.source.bootstrap_servers == std::vector<std::string>{"kafka-0:9092", "kafka-1:9092"});
  CHECK(m.function.timeout == 5s);
  CHECK(m.batching.batch_size == 250);
  CHECK(m.batching.maximum_batching_window == 0ms);
  CHECK(m.scaling.minimum_pollers == 3);
  CHECK(m.scaling.maximum_pollers == 3);
  CHECK(config.mappings[1].source.librdkafka ==
        std::vector<std::pair<std::string, std::string>>{{"fetch.max.bytes", "1048576"}});
}

TEST_CASE("config: scaling durations accept both ends of their ranges", "[unit]") {
  struct Case {
    std::string line; // appended under scaling
    Millis evaluation_interval;
    Millis scale_down_stabilization;
  };
  auto c = GENERATE(from_range(std::vector<Case>{
      {.line = "evaluationInterval: 1s",
       .evaluation_interval = 1s,
       .scale_down_stabilization = 60s},
      {.line = "evaluationInterval: 5m",
       .evaluation_interval = 5min,
       .scale_down_stabilization = 60s},
      {.line = "scaleDownStabilization: 0",
       .evaluation_interval = 5s,
       .scale_down_stabilization = 0ms},
      {.line = "scaleDownStabilization: 1h",
       .evaluation_interval = 5s,
       .scale_down_stabilization = 1h},
      {.line = "scaleDownStabilization: 1m30s",
       .evaluation_interval = 5s,
       .scale_down_stabilization = 90s},
  }));
  INFO(c.line);
  Config config = parseConfig(std::string(kMinimal) + "    scaling:\n      " + c.line + "\n",
                              "kesm.yaml", kesm::kafka::checkSetting);
  REQUIRE(config.mappings.size() == 1);
  CHECK(config.mappings[0].scaling.evaluation_interval == c.evaluation_interval);
  CHECK(config.mappings[0].scaling.scale_down_stabilization == c.scale_down_stabilization);
}

TEST_CASE("config: every broken rule is reported at once, in file order", "[unit]") {
  auto diagnostics = diagnosticsOf(R"(server:
  listen: nowhere
mappings:
  - name: orders
    source:
      bootstrapServers: kafka-0:9092
      topics: []
    function:
      url: ftp://fn/invoke
    batching:
      batchSize: 20000
      maximumBatchingWindow: 10m
    scaling:
      minimumPollers: 0
    retry:
      jiter: 0.1
  - name: orders
    source: {bootstrapServers: kafka-0:9092, topics: [x]}
)");
  struct Want {
    std::string key;
    int line;
    int column;
  };
  std::vector<Want> want{
      {.key = "server.listen", .line = 2, .column = 11},
      {.key = "mappings[0].source.topics", .line = 7, .column = 15},
      {.key = "mappings[0].function.url", .line = 9, .column = 12},
      {.key = "mappings[0].batching.batchSize", .line = 11, .column = 18},
      {.key = "mappings[0].batching.maximumBatchingWindow", .line = 12, .column = 30},
      {.key = "mappings[0].scaling.minimumPollers", .line = 14, .column = 23},
      {.key = "mappings[0].retry.jiter", .line = 16, .column = 7},
      {.key = "mappings[1].function", .line = 17, .column = 5},
      {.key = "mappings[1].name", .line = 17, .column = 11},
  };
  for (const auto& d : diagnostics) {
    UNSCOPED_INFO(d.toString());
  }
  REQUIRE(diagnostics.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO("diagnostic " << i);
    CHECK(diagnostics[i].key == want[i].key);
    CHECK(diagnostics[i].line == want[i].line);
    CHECK(diagnostics[i].column == want[i].column);
  }
}

TEST_CASE("config: an unknown key suggests the nearest known key", "[unit]") {
  auto diagnostics = diagnosticsOf(std::string(kMinimal) + R"(    batching:
      batchsize: 10
)");
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].toString() ==
        "kesm.yaml:9:7: mappings[0].batching.batchsize: unknown key, did you mean 'batchSize'?");
}

TEST_CASE("config: how diagnostics print", "[unit]") {
  struct Case {
    Diagnostic diagnostic;
    std::string want;
  };
  auto c = GENERATE(from_range(std::vector<Case>{
      {.diagnostic = {.file = "kesm.yaml",
                      .line = 12,
                      .column = 18,
                      .key = "mappings[0].batching.batchSize",
                      .rule = "must be an integer from 1 to 10000, got 20000"},
       .want = "kesm.yaml:12:18: mappings[0].batching.batchSize: must be an integer from 1 to "
               "10000, got 20000"},
      {.diagnostic = {.file = "kesm.yaml",
                      .line = 3,
                      .column = 1,
                      .key = "",
                      .rule = "invalid YAML: end of map not found"},
       .want = "kesm.yaml:3:1: invalid YAML: end of map not found"},
      {.diagnostic = {.file = "/etc/kesm.yaml",
                      .line = 0,
                      .column = 0,
                      .key = "",
                      .rule = "cannot read file: No such file or directory"},
       .want = "/etc/kesm.yaml: cannot read file: No such file or directory"},
  }));
  CHECK(c.diagnostic.toString() == c.want);
}

TEST_CASE("config: ConfigError::what lists every diagnostic, one per line", "[unit]") {
  try {
    parseConfig("mappings: []\nextra: 1\n", "kesm.yaml", kesm::kafka::checkSetting);
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) ==
          "kesm.yaml:1:11: mappings: must list at least one mapping, got an empty list\n"
          "kesm.yaml:2:1: extra: unknown key; the keys allowed at the top level are server, "
          "leaderElection, mappings");
  }
}

TEST_CASE("config: garbage never escapes as anything but ConfigError", "[unit]") {
  // Random bytes, and random text made of YAML's own punctuation, must end in a ConfigError
  // (or, by chance, a valid file), never in another exception or a crash.
  std::mt19937 rng(42);
  const std::string alphabet = "{}[]:,-?&*!|>'\"%@`#\n\t \\abc019.~";
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    std::size_t length = rng() % 200;
    for (std::size_t i = 0; i < length; ++i) {
      if (round % 2 == 0) {
        text += static_cast<char>(rng() % 256);
      } else {
        text += alphabet[rng() % alphabet.size()];
      }
    }
    INFO("round " << round);
    try {
      parseConfig(text, "fuzz.yaml", kesm::kafka::checkSetting);
    } catch (const ConfigError& e) {
      CHECK_FALSE(e.diagnostics().empty());
    }
  }
}

TEST_CASE("config: loadConfigFile on a missing file", "[unit]") {
  try {
    loadConfigFile("/nonexistent/kesm.yaml", kesm::kafka::checkSetting);
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    REQUIRE(e.diagnostics().size() == 1);
    const Diagnostic& d = e.diagnostics()[0];
    CHECK(d.file == "/nonexistent/kesm.yaml");
    CHECK(d.line == 0);
    CHECK(d.key.empty());
    CHECK(d.rule == "cannot read file: No such file or directory");
    CHECK(std::string(e.what()) ==
          "/nonexistent/kesm.yaml: cannot read file: No such file or directory");
  }
}

TEST_CASE("config: loadConfigFile reads a file and names it in diagnostics", "[unit]") {
  char path[] = "/tmp/kesm-config-test-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream out(path);
    out << kMinimal;
  }
  Config config = loadConfigFile(path, kesm::kafka::checkSetting);
  CHECK(config.mappings.at(0).name == "orders");
  {
    std::ofstream out(path, std::ios::app);
    out << "    batching: {batchSize: 0}\n";
  }
  try {
    loadConfigFile(path, kesm::kafka::checkSetting);
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    REQUIRE(e.diagnostics().size() == 1);
    CHECK(e.diagnostics()[0].file == path);
    CHECK(e.diagnostics()[0].line == 8);
  }
  std::remove(path);
}

TEST_CASE("config: function.nullValues and detectErrorBody", "[unit]") {
  const std::string base = R"(mappings:
  - name: orders
    source:
      bootstrapServers: kafka-0:9092
      topics: [orders]
    function:
      url: http://orders-fn:8080/invoke
)";
  Config config = parseConfig(base + "      nullValues: omit\n      detectErrorBody: false\n",
                              "kesm.yaml", kesm::kafka::checkSetting);
  CHECK(config.mappings.at(0).function.null_values == NullValues::kOmit);
  CHECK_FALSE(config.mappings.at(0).function.detect_error_body);

  auto d = diagnosticsOf(base + "      nullValues: NULL\n");
  REQUIRE(d.size() == 1);
  CHECK(d[0].line == 8);
  CHECK_THAT(d[0].rule, Catch::Contains("must be empty or omit"));
}
