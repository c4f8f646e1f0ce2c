// kesm through authenticated and encrypted listeners of a real Apache Kafka broker
// (tests/e2e/kafka.sh opens SASL_PLAINTEXT, SSL with client certificates, and SASL_SSL):
// every record delivered through each, secrets read from files and environment variables and
// never shown, and a wrong password disabling only its own mapping, with the reason.

#include "config/config.h"
#include "e2e_harness.h"

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;

namespace {

constexpr const char* kPassword = "kesm-secret"; // tests/e2e/kafka.sh's test user

struct Secured {
  std::string name;
  std::string listener; // kafka.sh listener name
  std::string security; // YAML lines under source (6 spaces)
};

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs one kesm process with every mapping of `cases` (each on its own topic of `broker_dir`'s
// broker, produced through the PLAINTEXT listener) and waits until each delivered all.
void deliverThrough(const std::string& broker_dir, const std::vector<Secured>& cases,
                    const std::string& label) {
  const std::string plaintext = brokerListener(broker_dir, "plaintext");
  constexpr int kPartitions = 2;
  constexpr int kPerPartition = 300;
  std::vector<std::unique_ptr<Deliveries>> deliveries;
  std::vector<std::unique_ptr<samplefn::SampleFunction>> functions;
  std::vector<MappingYaml> specs;
  for (const auto& c : cases) {
    const std::string topic = uniqueName(c.name);
    createTopic(plaintext, topic, kPartitions);
    produceNumbered(plaintext, topic, kPartitions, kPerPartition);
    deliveries.push_back(std::make_unique<Deliveries>());
    samplefn::SampleFunctionOptions fn;
    auto* sink = deliveries.back().get();
    fn.on_batch = [sink](const auto& batch) { sink->add(batch); };
    functions.push_back(std::make_unique<samplefn::SampleFunction>(fn));
    MappingYaml m =
        e2eMapping(c.name, brokerListener(broker_dir, c.listener), topic, functions.back()->url());
    m.librdkafka.erase("debug");
    m.source_lines = c.security;
    specs.push_back(m);
  }
  const std::uint16_t port = freePort();
  const std::string yaml = e2eConfigYaml(port, specs);
  const std::string log_path = writeTempFile("e2e-" + label + ".log", "");
  DumpLogOnFailure dump(log_path);
  INFO("kesm log: " << log_path << "\n" << yaml);
  KesmProcess kesm({"run", "--config", writeTempFile("e2e-" + label + ".yaml", yaml)}, log_path);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("mapping " << cases[i].name << " through " << cases[i].listener);
    bool all = waitUntil(90s, [&] {
      for (int p = 0; p < kPartitions; ++p) {
        if (!deliveries[i]->missing(p, kPerPartition).empty()) {
          return false;
        }
      }
      return true;
    });
    CHECK(all);
  }
  auto status = httpGet(port, "/status");
  auto metrics = httpGet(port, "/metrics");
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);
  // The password appears nowhere kesm writes.
  CHECK(readFile(log_path).find(kPassword) == std::string::npos);
  CHECK(status.body.find(kPassword) == std::string::npos);
  CHECK(metrics.body.find(kPassword) == std::string::npos);
}

} // namespace

TEST_CASE("kesm consumes through SASL/PLAIN, mutual TLS and SASL_SSL listeners of Apache Kafka "
          "4.4",
          "[e2e]") {
  sharedBroker(); // started once for the whole suite
  const std::string dir = sharedBrokerDir();
  const std::string tls = brokerTlsDir(dir);
  const std::string password_file =
      writeTempFile("e2e-kafka-password", std::string(kPassword) + "\n");
  setenv("KESM_E2E_KEY_PASSWORD", "kesm-key-pass", 1);
  deliverThrough(dir,
                 {
                     {"plain", "sasl",
                      "      security:\n"
                      "        sasl:\n"
                      "          mechanism: PLAIN\n"
                      "          username: kesm\n"
                      "          passwordFile: " +
                          password_file + "\n"},
                     {"mtls", "ssl",
                      "      security:\n"
                      "        tls:\n"
                      "          caFile: " +
                          tls + "/ca.pem\n" + "          certificateFile: " + tls +
                          "/client.pem\n" + "          keyFile: " + tls +
                          "/client-encrypted.key\n"
                          "          keyPasswordEnv: KESM_E2E_KEY_PASSWORD\n"},
                     {"plain-tls", "sasl_ssl",
                      "      security:\n"
                      "        protocol: SASL_SSL\n"
                      "        sasl:\n"
                      "          mechanism: PLAIN\n"
                      "          username: kesm\n"
                      "          passwordFile: " +
                          password_file +
                          "\n"
                          "        tls:\n"
                          "          caFile: " +
                          tls + "/ca.pem\n"},
                 },
                 "security-44");
}

TEST_CASE("kesm consumes through SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (Apache Kafka 3.9.1: "
          "librdkafka 2.0.2's SCRAM is refused by Kafka 4.x)",
          "[e2e]") {
  OwnBroker broker(sharedBrokerDir() + "-scram", "3.9.1");
  const std::string tls = brokerTlsDir(broker.dir());
  setenv("KESM_E2E_KAFKA_PASSWORD", kPassword, 1);
  deliverThrough(broker.dir(),
                 {
                     {"scram256", "sasl",
                      "      security:\n"
                      "        sasl:\n"
                      "          mechanism: SCRAM-SHA-256\n"
                      "          username: kesm\n"
                      "          passwordEnv: KESM_E2E_KAFKA_PASSWORD\n"},
                     {"scram512-tls", "sasl_ssl",
                      "      security:\n"
                      "        sasl:\n"
                      "          mechanism: SCRAM-SHA-512\n"
                      "          username: kesm\n"
                      "          passwordEnv: KESM_E2E_KAFKA_PASSWORD\n"
                      "        tls:\n"
                      "          caFile: " +
                          tls + "/ca.pem\n"},
                 },
                 "security-scram");
}

TEST_CASE("a wrong password disables its mapping with the reason, and the other mapping runs",
          "[e2e]") {
  const std::string dir = sharedBrokerDir();
  sharedBroker();
  const std::string plaintext = brokerListener(dir, "plaintext");
  const std::string good_topic = uniqueName("good-creds");
  const std::string bad_topic = uniqueName("bad-creds");
  createTopic(plaintext, good_topic, 2);
  createTopic(plaintext, bad_topic, 2);
  produceNumbered(plaintext, good_topic, 2, 200);
  produceNumbered(plaintext, bad_topic, 2, 200);
  Deliveries good;
  Deliveries bad;
  samplefn::SampleFunctionOptions good_fn;
  good_fn.on_batch = [&](const auto& batch) { good.add(batch); };
  samplefn::SampleFunction good_function(good_fn);
  samplefn::SampleFunctionOptions bad_fn;
  bad_fn.on_batch = [&](const auto& batch) { bad.add(batch); };
  samplefn::SampleFunction bad_function(bad_fn);
  const std::string wrong = "not-the-password";
  const std::string wrong_file = writeTempFile("e2e-wrong-password", wrong);
  const std::string right_file = writeTempFile("e2e-right-password", kPassword);
  auto sasl = [&](const std::string& file) {
    return "      security:\n"
           "        sasl:\n"
           "          mechanism: PLAIN\n"
           "          username: kesm\n"
           "          passwordFile: " +
           file + "\n";
  };
  MappingYaml ok =
      e2eMapping("good-creds", brokerListener(dir, "sasl"), good_topic, good_function.url());
  ok.librdkafka.erase("debug");
  ok.source_lines = sasl(right_file);
  MappingYaml ko =
      e2eMapping("bad-creds", brokerListener(dir, "sasl"), bad_topic, bad_function.url());
  ko.librdkafka.erase("debug");
  ko.source_lines = sasl(wrong_file);
  const std::uint16_t port = freePort();
  const std::string yaml = e2eConfigYaml(port, {ok, ko});
  const std::string log_path = writeTempFile("e2e-wrong-password.log", "");
  DumpLogOnFailure dump(log_path);
  INFO("kesm log: " << log_path);
  KesmProcess kesm({"run", "--config", writeTempFile("e2e-wrong-password.yaml", yaml)}, log_path);
  bool delivered =
      waitUntil(90s, [&] { return good.missing(0, 200).empty() && good.missing(1, 200).empty(); });
  CHECK(delivered);
  auto status = httpGet(port, "/status");
  auto metrics = httpGet(port, "/metrics");
  INFO(status.body);
  CHECK(status.body.find("\"name\":\"bad-creds\",\"state\":\"Disabled\"") != std::string::npos);
  CHECK(status.body.find("\"name\":\"good-creds\",\"state\":\"Enabled\"") != std::string::npos);
  // The reason says what failed, where the config names it.
  CHECK(status.body.find("Authentication failed") != std::string::npos);
  CHECK(status.body.find("mappings[1].source.bootstrapServers") != std::string::npos);
  CHECK(metric(metrics.body, "kesm_mapping_state",
               {{"mapping", "bad-creds"}, {"state", "Disabled"}}) == 1);
  CHECK(bad.total() == 0);
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);
  const std::string log = readFile(log_path);
  CHECK(log.find("mapping DISABLED") != std::string::npos);
  CHECK(log.find(wrong) == std::string::npos);
  CHECK(log.find(kPassword) == std::string::npos);
}
