// libFuzzer target: arbitrary bytes as a kesm config file, through the parser that
// `kesm validate` and `kesm run` use (config::parseConfig, behind loadConfigFile), with the
// same librdkafka setting check (kafka::checkSetting).
//
// Expected outcomes: a Config, or a ConfigError whose every diagnostic has a rule and a
// sane position. Findings: any other exception (it escapes and aborts), a crash, a leak,
// undefined behaviour, a hang, or an accepted config that breaks a rule of
// docs/configuration.md (checked below, so the validator cannot silently let it through).

#include "config/config.h"
#include "kafka/kafka.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

namespace {

using kesm::config::Millis;

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "config_fuzz: %s\n", what.c_str());
  std::abort();
}

void require(bool ok, const std::string& what) {
  if (!ok) {
    finding("accepted a config that breaks a documented rule: " + what);
  }
}

bool within(Millis v, Millis lo, Millis hi) { return v >= lo && v <= hi; }

// 1..max characters of letters, digits, '.', '_', '-' (mapping names, Kafka topic names).
bool isName(const std::string& s, std::size_t max) {
  if (s.empty() || s.size() > max) {
    return false;
  }
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

void checkAccepted(const kesm::config::Config& config) {
  using namespace std::chrono_literals;
  static const std::set<std::string> kAssignors = {"range", "roundrobin", "cooperative-sticky"};
  static const std::set<std::string> kRefused = {"bootstrap.servers",
                                                 "metadata.broker.list",
                                                 "group.id",
                                                 "auto.offset.reset",
                                                 "enable.auto.commit",
                                                 "enable.auto.offset.store",
                                                 "partition.assignment.strategy"};
  require(!config.mappings.empty(), "no mappings");
  require(!config.server.listen.empty(), "empty server.listen");
  std::set<std::string> names;
  std::set<std::string> groups;
  for (const auto& m : config.mappings) {
    require(isName(m.name, 64), "mapping name '" + m.name + "'");
    require(names.insert(m.name).second, "duplicate mapping name");
    require(!m.source.bootstrap_servers.empty(), "no bootstrapServers");
    for (const auto& server : m.source.bootstrap_servers) {
      require(server.find(':') != std::string::npos, "bootstrap server without a port");
    }
    require(!m.source.topics.empty(), "no topics");
    std::set<std::string> topics;
    for (const auto& topic : m.source.topics) {
      require(isName(topic, 249), "topic '" + topic + "'");
      require(topics.insert(topic).second, "duplicate topic");
    }
    require(!m.source.consumer_group_id.empty(), "empty consumerGroupId");
    require(groups.insert(m.source.consumer_group_id).second, "shared consumerGroupId");
    require(kAssignors.count(m.source.partition_assignor) == 1, "partitionAssignor");
    for (const auto& [key, value] : m.source.librdkafka) {
      require(kRefused.count(key) == 0, "refused librdkafka setting " + key);
    }
    require(m.function.url.rfind("http://", 0) == 0, "function.url '" + m.function.url + "'");
    require(within(m.function.timeout, 1ms, 15min), "function.timeout");
    require(m.batching.batch_size >= 1 && m.batching.batch_size <= 10000, "batchSize");
    require(within(m.batching.maximum_batching_window, 0ms, 300s), "maximumBatchingWindow");
    require(m.batching.maximum_payload_bytes == kesm::config::kMaxPayloadBytes, "payload cap");
    const auto& s = m.scaling;
    require(s.minimum_pollers >= 1 && s.minimum_pollers <= 200, "minimumPollers");
    require(s.maximum_pollers >= 1 && s.maximum_pollers <= 2000, "maximumPollers");
    require(s.maximum_pollers >= s.minimum_pollers, "maximumPollers < minimumPollers");
    require(within(s.grace_period, 0ms, 10min), "gracePeriod");
    require(within(s.evaluation_interval, 1s, 5min), "evaluationInterval");
    require(within(s.scale_down_stabilization, 0ms, 1h), "scaleDownStabilization");
    const auto& r = m.retry;
    require(r.initial_backoff >= 1ms && r.initial_backoff <= r.maximum_backoff, "initialBackoff");
    require(r.maximum_backoff <= 15min, "maximumBackoff");
    require(std::isfinite(r.backoff_multiplier) && r.backoff_multiplier >= 1 &&
                r.backoff_multiplier <= 10,
            "backoffMultiplier");
    require(std::isfinite(r.jitter) && r.jitter >= 0 && r.jitter <= 1, "jitter");
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    checkAccepted(kesm::config::parseConfig(text, "fuzz.yaml", kesm::kafka::checkSetting));
  } catch (const kesm::config::ConfigError& e) {
    if (e.diagnostics().empty()) {
      finding("a ConfigError without diagnostics");
    }
    for (const auto& d : e.diagnostics()) {
      if (d.rule.empty() || d.line < 0 || d.column < 0 || d.file != "fuzz.yaml") {
        finding("a malformed diagnostic: " + d.toString());
      }
    }
  }
  // The duration grammar on the same bytes: never negative.
  if (auto d = kesm::config::parseDuration(text); d && d->count() < 0) {
    finding("parseDuration gave a negative duration for '" + text + "'");
  }
  return 0;
}
