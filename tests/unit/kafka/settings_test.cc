// Kafka client vocabulary (kafka/kafka.h, kafka/rdkafka_adapter.h).

#include "kafka/kafka.h"
#include "kafka/rdkafka_adapter.h"

#include <catch2/catch.hpp>
#include <librdkafka/rdkafka.h>

using namespace kesm;
using namespace kesm::kafka;

namespace {

std::string valueOf(rd_kafka_conf_t* conf, const char* key) {
  char buf[512];
  size_t size = sizeof buf;
  if (rd_kafka_conf_get(conf, key, buf, &size) != RD_KAFKA_CONF_OK) {
    return "<unset>";
  }
  return buf;
}

std::string valueIn(const Settings& settings, const std::string& key) {
  std::string found = "<absent>";
  for (const auto& [k, v] : settings) {
    if (k == key) {
      found = v; // the last one wins, as in librdkafka
    }
  }
  return found;
}

} // namespace

TEST_CASE("a bootstrap list is joined with commas, nothing else", "[unit][kafka]") {
  CHECK(joinServers({}) == "");
  CHECK(joinServers({"a:9092"}) == "a:9092");
  CHECK(joinServers({"a:9092", "b:9093", "c:9094"}) == "a:9092,b:9093,c:9094");
}

TEST_CASE("refused credentials and missing ACLs are access errors, outages are not",
          "[unit][kafka]") {
  CHECK(isAccessRefused(RD_KAFKA_RESP_ERR__AUTHENTICATION));
  CHECK(isAccessRefused(RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED));
  CHECK(isAccessRefused(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED));
  CHECK(isAccessRefused(RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED));
  CHECK(isAccessRefused(RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED));
  CHECK_FALSE(isAccessRefused(RD_KAFKA_RESP_ERR__TRANSPORT));
  CHECK_FALSE(isAccessRefused(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN));
  CHECK_FALSE(isAccessRefused(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
  CHECK_FALSE(isAccessRefused(RD_KAFKA_RESP_ERR_NO_ERROR));
}

TEST_CASE("settings are applied in order: a later one overrides an earlier one", "[unit][kafka]") {
  rd_kafka_conf_t* conf = newConf(
      {{"client.id", "first"}, {"linger.ms", "7"}, {"client.id", "second"}}, OnRefused::kThrow);
  CHECK(valueOf(conf, "client.id") == "second");
  CHECK(valueOf(conf, "linger.ms") == "7");
  rd_kafka_conf_destroy(conf);
}

TEST_CASE("a refused setting names its key and librdkafka's reason, never its value",
          "[unit][kafka]") {
  const std::string secret = "hunter2-not-a-number";
  try {
    rd_kafka_conf_t* conf =
        newConf({{"client.id", "ok"}, {"session.timeout.ms", secret}}, OnRefused::kThrow);
    rd_kafka_conf_destroy(conf);
    FAIL("no SettingError");
  } catch (const SettingError& e) {
    CHECK(e.key() == "session.timeout.ms");
    CHECK_FALSE(e.reason().empty());
    CHECK(std::string(e.what()) == "librdkafka setting session.timeout.ms: " + e.reason());
    CHECK(std::string(e.what()).find(secret) == std::string::npos);
  }
  CHECK_THROWS_AS(newConf({{"no.such.setting", "1"}}, OnRefused::kThrow), SettingError);
}

TEST_CASE("skipping leaves out only the refused settings", "[unit][kafka]") {
  rd_kafka_conf_t* conf =
      newConf({{"no.such.setting", "1"}, {"client.id", "kept"}, {"session.timeout.ms", "x"}},
              OnRefused::kSkip);
  CHECK(valueOf(conf, "client.id") == "kept");
  CHECK(valueOf(conf, "no.such.setting") == "<unset>");
  rd_kafka_conf_destroy(conf);
}

TEST_CASE("consumer settings: offsets are committed by kesm only, and the user's map comes last",
          "[unit][kafka]") {
  config::Mapping mapping;
  mapping.source.bootstrap_servers = {"a:9092", "b:9092"};
  mapping.source.consumer_group_id = "orders-group";
  mapping.source.librdkafka = {{"session.timeout.ms", "10000"}};
  Settings settings = consumerSettings(mapping, "kesm-orders-3");
  CHECK(valueIn(settings, "group.id") == "orders-group");
  CHECK(valueIn(settings, "client.id") == "kesm-orders-3");
  CHECK(valueIn(settings, "enable.auto.commit") == "false");
  CHECK(valueIn(settings, "enable.auto.offset.store") == "false");
  CHECK(valueIn(settings, "auto.offset.reset") == "earliest");
  CHECK(valueIn(settings, "bootstrap.servers") == "a:9092,b:9092");
  CHECK(valueIn(settings, "session.timeout.ms") == "10000"); // the user's overrides kesm's
  // librdkafka accepts every one of them.
  rd_kafka_conf_destroy(newConf(settings, OnRefused::kThrow));
}
