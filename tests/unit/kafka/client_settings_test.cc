// kafka::clientSettings: the properties every client of a mapping's cluster gets.

#include "kafka/kafka.h"

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

using namespace kesm::config;
using Settings = std::vector<std::pair<std::string, std::string>>;

TEST_CASE("client settings: plaintext, servers joined, the librdkafka map last", "[unit]") {
  SourceConfig source;
  source.bootstrap_servers = {"k0:9092", "k1:9092"};
  source.librdkafka = {{"fetch.max.bytes", "1048576"}, {"security.protocol", "ignored-later"}};
  const Settings expected{{"bootstrap.servers", "k0:9092,k1:9092"},
                          {"security.protocol", "plaintext"},
                          {"fetch.max.bytes", "1048576"},
                          {"security.protocol", "ignored-later"}};
  CHECK(kesm::kafka::clientSettings(source) == expected);
}

TEST_CASE("client settings: TLS with a client certificate and a key password", "[unit]") {
  SourceConfig source;
  source.bootstrap_servers = {"k:9093"};
  source.security.protocol = SecurityProtocol::kSsl;
  TlsConfig tls;
  tls.certificate_file = "/c.pem";
  tls.key_file = "/k.pem";
  tls.key_password.kind = SecretSource::Kind::kEnv;
  tls.key_password.value = "pw";
  source.security.tls = tls;
  const Settings expected{{"bootstrap.servers", "k:9093"},
                          {"security.protocol", "ssl"},
                          {"ssl.certificate.location", "/c.pem"},
                          {"ssl.key.location", "/k.pem"},
                          {"ssl.key.password", "pw"},
                          {"ssl.endpoint.identification.algorithm", "https"}};
  CHECK(kesm::kafka::clientSettings(source) == expected);
}

TEST_CASE("client settings: SASL mechanisms and credentials", "[unit]") {
  SourceConfig source;
  source.bootstrap_servers = {"k:9092"};
  source.security.protocol = SecurityProtocol::kSaslPlaintext;
  SaslConfig sasl;
  sasl.mechanism = SaslMechanism::kPlain;
  sasl.username.value = "alice";
  sasl.password.value = "s3cret";
  source.security.sasl = sasl;
  const Settings expected{{"bootstrap.servers", "k:9092"},
                          {"security.protocol", "sasl_plaintext"},
                          {"sasl.mechanisms", "PLAIN"},
                          {"sasl.username", "alice"},
                          {"sasl.password", "s3cret"}};
  CHECK(kesm::kafka::clientSettings(source) == expected);
}
