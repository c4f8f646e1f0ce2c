#pragma once

// Kafka client vocabulary shared by every component that talks to Kafka (pollers, the lag
// probe, the preflight, the onFailure producer): the settings kesm gives a consumer, how a
// bootstrap list is written, which librdkafka errors mean "access refused", and the one error
// a refused setting raises. No librdkafka type here; adapters use kafka/rdkafka_adapter.h.
// Pure functions; thread-safe.

#include "config/config.h"

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kesm::kafka {

// librdkafka settings, applied in order: a later one overrides an earlier one.
using Settings = std::vector<std::pair<std::string, std::string>>;

// "host1:9092,host2:9092": bootstrap.servers, and the event's bootstrapServers.
std::string joinServers(const std::vector<std::string>& servers);

// The librdkafka properties of every client kesm makes for a mapping's cluster (pollers, lag
// probe, preflight, onFailure producer), from one function so that a security setting cannot
// reach one client and miss another. In order: bootstrap.servers, security (protocol, SASL,
// TLS), then the source's librdkafka map, which therefore wins. Holds the secrets loaded by
// config::loadSecrets: never log it.
Settings clientSettings(const config::SourceConfig& source);

// librdkafka's own judgement of one setting of a config's `librdkafka:` map: the
// config::SettingValidator every real parse passes to config::parseConfig. nullopt when
// librdkafka accepts `name` = `value` on a fresh conf; else which part it refuses (an unknown
// name, or a bad value) and librdkafka's reason.
std::optional<config::SettingRefusal> checkSetting(const std::string& name,
                                                   const std::string& value);

// librdkafka settings kesm applies before the user's `librdkafka:` map. Exposed so tests
// and docs can show them.
Settings consumerSettings(const config::Mapping& mapping, const std::string& client_id);

// A librdkafka error code (an rd_kafka_resp_err_t) that retrying cannot fix: refused
// credentials (SASL) or a missing ACL (topic, group, cluster authorization).
bool isAccessRefused(int librdkafka_error);

// librdkafka refused a setting. Names the key and librdkafka's reason, never the value: it
// may be a secret. what(): "librdkafka setting <key>: <reason>".
class SettingError : public std::runtime_error {
public:
  SettingError(std::string key, std::string reason);
  const std::string& key() const { return key_; }
  const std::string& reason() const { return reason_; }

private:
  std::string key_;
  std::string reason_;
};

} // namespace kesm::kafka
