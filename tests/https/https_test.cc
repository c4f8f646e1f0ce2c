// HTTPS to the function (docs/functions.md, "HTTPS"): kesm delivering over TLS to a server we
// did not write, Python's ssl + http.server (https_function.py), with a PKI made by the openssl
// command line (TestPki of tests/unit/net/tls_peer.h), against the mock cluster.

#include "app/runtime.h"
#include "kafka/kafka.h"
#include "poller/invoker_factory.h"
#include "tests/integration/harness.h"
#include "tests/unit/net/tls_peer.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

using namespace kesm;
using namespace kesm::test;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// https_function.py as a child process, in a folder of its own under the PKI's.
class HttpsFunction {
public:
  // Serves `cert` (.pem and .key in the PKI's folder).
  HttpsFunction(const TestPki& pki, const std::string& name, bool require_client_cert = false,
                const std::string& cert = "server")
      : dir_(pki.path(name)) {
    if (::mkdir(dir_.c_str(), 0700) != 0) {
      throw std::runtime_error("cannot make " + dir_);
    }
    std::vector<std::string> args = {std::string(KESM_SOURCE_DIR) +
                                         "/tests/https/https_function.py",
                                     "--cert",
                                     pki.path(cert + ".pem"),
                                     "--key",
                                     pki.path(cert + ".key"),
                                     "--dir",
                                     dir_};
    if (require_client_cert) {
      args.insert(args.end(), {"--client-ca", pki.path("ca.pem")});
    }
    process_ = std::make_unique<ChildProcess>("python3", args, dir_ + "/log");
    std::string port;
    if (!waitUntil(15s,
                   [&] {
                     port = slurp(dir_ + "/port");
                     return !port.empty() || !process_->running();
                   }) ||
        port.empty()) {
      throw std::runtime_error("https_function.py did not start: " + slurp(dir_ + "/log"));
    }
    port_ = port;
  }

  std::string url(const std::string& host = "localhost") const {
    return "https://" + host + ":" + port_ + "/invoke";
  }

  std::vector<std::string> events() const {
    std::vector<std::string> lines;
    std::istringstream in(slurp(dir_ + "/events"));
    for (std::string line; std::getline(in, line);) {
      lines.push_back(line);
    }
    return lines;
  }

  int count(const std::string& prefix) const {
    int n = 0;
    for (const auto& line : events()) {
      n += line.rfind(prefix, 0) == 0 ? 1 : 0;
    }
    return n;
  }

  // The offsets of `topic` received, per partition, in arrival order.
  std::map<int, std::vector<std::int64_t>> received(const std::string& topic) const {
    std::map<int, std::vector<std::int64_t>> out;
    for (const auto& line : events()) {
      std::istringstream in(line);
      std::string word, t;
      int partition = 0;
      std::int64_t offset = 0;
      if (in >> word >> t >> partition >> offset && word == "rec" && t == topic) {
        out[partition].push_back(offset);
      }
    }
    return out;
  }

  std::string log() const { return slurp(dir_ + "/log") + slurp(dir_ + "/events"); }

private:
  std::string dir_;
  std::string port_;
  std::unique_ptr<ChildProcess> process_;
};

// expired.pem/.key: like server.pem (same CA, same SANs) but valid until yesterday.
void makeExpiredServerCert(const TestPki& pki) {
  const std::string script =
      "set -e; cd '" + pki.dir() +
      "'; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out expired.key "
      "2>/dev/null; openssl req -new -key expired.key -out expired.csr -subj /CN=localhost; "
      "openssl x509 -req -in expired.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
      "-out expired.pem -days -1 -extfile server.ext 2>/dev/null";
  if (std::system(("bash -c \"" + script + "\"").c_str()) != 0) {
    throw std::runtime_error("cannot make an expired certificate: " + script);
  }
}

std::vector<std::int64_t> upTo(std::int64_t n) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 0; i < n; ++i) {
    v.push_back(i);
  }
  return v;
}

bool allDelivered(const HttpsFunction& fn, const std::string& topic, int partitions,
                  std::int64_t per_partition) {
  const auto got = fn.received(topic);
  for (int p = 0; p < partitions; ++p) {
    auto it = got.find(p);
    if (it == got.end() || static_cast<std::int64_t>(it->second.size()) < per_partition) {
      return false;
    }
  }
  return true;
}

MappingYaml httpsMapping(const std::string& name, const std::string& bootstrap,
                         const std::string& url, const std::string& tls) {
  MappingYaml m = testMapping(name, bootstrap, name, url, 1, 1);
  m.function.set("tls", tls);
  return m;
}

// The attempt number of the first "retrying since attempt 1 failed; attempt N:" note; 0 if none.
int retryAttempt(const std::string& status) {
  const std::string marker = "retrying since attempt 1 failed; attempt ";
  const auto at = status.find(marker);
  return at == std::string::npos ? 0 : std::atoi(status.c_str() + at + marker.size());
}

// kesm's /status once it holds each of `texts` in a retry note of attempt `attempt` or later
// (a retried failure, not a one-off), or what it said at the deadline.
std::string retriedWith(app::Runtime& runtime, const std::vector<std::string>& texts,
                        int attempt = 3) {
  std::string status;
  waitUntil(30s, [&] {
    status = scrape(runtime, "/status");
    return retryAttempt(status) >= attempt &&
           std::all_of(texts.begin(), texts.end(),
                       [&](const auto& t) { return status.find(t) != std::string::npos; });
  });
  return status;
}

} // namespace

TEST_CASE("https: every record delivered in order over TLS with caFile, on one kept-alive "
          "connection for dozens of batches",
          "[integration][https]") {
  TestPki pki;
  HttpsFunction fn(pki, "fn");
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("secure", 2);
  constexpr int kPerPartition = 300;
  produceNumbered(cluster.bootstrapServers(), "secure", 2, kPerPartition);

  // By name: the certificate's DNS SAN, and SNI sent.
  MappingYaml m = httpsMapping("secure", cluster.bootstrapServers(), fn.url("localhost"),
                               "{caFile: " + pki.path("ca.pem") + "}");
  m.batching.set("batchSize", 10);
  m.scaling.set("maxConcurrentBatches", 1); // one invoke worker: one connection to count
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  const bool done = waitUntil(60s, [&] { return allDelivered(fn, "secure", 2, kPerPartition); });
  const bool committed = waitUntil(30s, [&] {
    auto offsets = committedOffsets(config.mappings[0]);
    return offsets[0] == kPerPartition && offsets[1] == kPerPartition;
  });
  const std::string status = scrape(runtime, "/status");
  REQUIRE(runtime.stop());
  INFO(fn.log());
  INFO(status);
  REQUIRE(done);
  CHECK(committed);
  const auto got = fn.received("secure");
  CHECK(got.at(0) == upTo(kPerPartition)); // in order, each once: nothing failed
  CHECK(got.at(1) == upTo(kPerPartition));
  // 600 records in batches of at most 10: at least 60 POSTs, all on one TLS connection.
  CHECK(fn.count("req ") >= 2 * kPerPartition / 10);
  CHECK(fn.count("conn") == 1);
  CHECK(fn.count("fail") == 0);
}

TEST_CASE("https: a server certificate from an unknown CA is refused and retried, the partition "
          "held with the reason in /status, nothing delivered or committed",
          "[integration][https]") {
  TestPki pki;
  HttpsFunction fn(pki, "fn");
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("wrongca", 1);
  produceNumbered(cluster.bootstrapServers(), "wrongca", 1, 20);
  auto config =
      config::parseConfig(configYaml(httpsMapping("wrongca", cluster.bootstrapServers(), fn.url(),
                                                  "{caFile: " + pki.path("other-ca.pem") + "}")),
                          "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  // Retried: a later attempt, not only the first, says why.
  std::string status = retriedWith(runtime, {"connection_error: TLS handshake with localhost:"});
  INFO(status);
  INFO(fn.log());
  CHECK_THAT(status,
             Catch::Contains("certificate verify failed: unable to get local issuer certificate"));
  CHECK_THAT(status, Catch::Contains("\"name\":\"wrongca\",\"state\":\"Enabled\""));
  CHECK(fn.count("req ") == 0);
  CHECK(fn.count("conn") == 0);
  REQUIRE(runtime.stop());
  CHECK(committedOffsets(config.mappings[0])[0] == -1);
}

TEST_CASE("https: an expired server certificate is refused and retried with that reason",
          "[integration][https]") {
  TestPki pki;
  makeExpiredServerCert(pki);
  HttpsFunction fn(pki, "fn", false, "expired");
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("expired", 1);
  produceNumbered(cluster.bootstrapServers(), "expired", 1, 20);
  auto config =
      config::parseConfig(configYaml(httpsMapping("expired", cluster.bootstrapServers(), fn.url(),
                                                  "{caFile: " + pki.path("ca.pem") + "}")),
                          "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  std::string status = retriedWith(runtime, {"connection_error: TLS handshake with localhost:",
                                             "certificate verify failed: certificate has expired"});
  INFO(status);
  INFO(fn.log());
  CHECK_THAT(status, Catch::Contains("certificate verify failed: certificate has expired"));
  CHECK_THAT(status, Catch::Contains("\"name\":\"expired\",\"state\":\"Enabled\""));
  CHECK(fn.count("req ") == 0);
  REQUIRE(runtime.stop());
  CHECK(committedOffsets(config.mappings[0])[0] == -1);
}

TEST_CASE("https: a certificate without the expected host name is refused as a hostname mismatch "
          "naming the name, and retried",
          "[integration][https]") {
  TestPki pki;
  HttpsFunction fn(pki, "fn");
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("wrongname", 1);
  produceNumbered(cluster.bootstrapServers(), "wrongname", 1, 20);
  // The CA is right; the certificate carries localhost and 127.0.0.1, not other.example.
  auto config = config::parseConfig(
      configYaml(httpsMapping("wrongname", cluster.bootstrapServers(), fn.url("127.0.0.1"),
                              "{caFile: " + pki.path("ca.pem") + ", serverName: other.example}")),
      "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  std::string status = retriedWith(runtime, {"connection_error: TLS handshake with 127.0.0.1:"});
  INFO(status);
  INFO(fn.log());
  CHECK_THAT(status, Catch::Contains("certificate verify failed: hostname mismatch: the "
                                     "certificate is not valid for other.example"));
  CHECK_THAT(status, Catch::Contains("\"name\":\"wrongname\",\"state\":\"Enabled\""));
  CHECK(fn.count("req ") == 0);
  REQUIRE(runtime.stop());
  CHECK(committedOffsets(config.mappings[0])[0] == -1);
}

TEST_CASE("https: a server that requires a client certificate refuses a mapping without "
          "certificateFile and serves one with it",
          "[integration][https]") {
  TestPki pki;
  HttpsFunction fn(pki, "fn", /*require_client_cert=*/true);
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("anon", 1);
  cluster.createTopic("mtls", 2);
  produceNumbered(cluster.bootstrapServers(), "anon", 1, 20);
  produceNumbered(cluster.bootstrapServers(), "mtls", 2, 100);
  const std::string ca = "caFile: " + pki.path("ca.pem");
  ConfigYaml yaml{
      .mappings = {httpsMapping("anon", cluster.bootstrapServers(), fn.url(), "{" + ca + "}"),
                   httpsMapping("mtls", cluster.bootstrapServers(), fn.url(),
                                "{" + ca + ", certificateFile: " + pki.path("client.pem") +
                                    ", keyFile: " + pki.path("client.key") + "}")}};
  auto config = config::parseConfig(yaml.str(), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  const bool delivered = waitUntil(60s, [&] { return allDelivered(fn, "mtls", 2, 100); });
  // TLS 1.3: the client's handshake completes; the server's alert comes with the answer.
  std::string status = retriedWith(runtime, {"connection_error: TLS", "certificate required"});
  INFO(status);
  INFO(fn.log());
  CHECK(delivered);
  CHECK_THAT(status, Catch::Contains("certificate required"));
  CHECK(fn.received("mtls").at(0) == upTo(100));
  CHECK(fn.received("mtls").at(1) == upTo(100));
  CHECK(fn.received("anon").empty());
  REQUIRE(runtime.stop());
  CHECK(committedOffsets(config.mappings[0])[0] == -1);
}

TEST_CASE("https: an unreadable caFile is a startup error naming the file, in validate and run",
          "[integration][https]") {
  TestPki pki;
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("t", 1);
  auto run = [&](const std::vector<std::string>& args, const std::string& name) {
    const std::string log = pki.path(name + ".log");
    KesmProcess kesm(args, log);
    const int status = kesm.wait(60s);
    return std::pair(status, slurp(log));
  };
  const std::string url = "https://localhost:1/invoke";
  SECTION("a missing file: a config error (exit 2) at its place in the file") {
    const std::string missing = pki.path("no-such-ca.pem");
    const std::string file = writeTempFile(
        "https-missing.yaml", configYaml(httpsMapping("t", cluster.bootstrapServers(), url,
                                                      "{caFile: " + missing + "}")));
    for (const char* command : {"validate", "run"}) {
      auto [status, out] = run({command, "--config", file}, std::string("missing-") + command);
      INFO(command << ": " << out);
      CHECK(status == 2);
      CHECK_THAT(out, Catch::Contains("mappings[0].function.tls: cannot read " + missing));
    }
  }
  SECTION("a file that is no PEM: kesm run exits 1 at start naming it, before any delivery") {
    const std::string junk = writeTempFile("https-junk.pem", "not a certificate\n");
    const std::string file = writeTempFile(
        "https-junk.yaml",
        configYaml(httpsMapping("t", cluster.bootstrapServers(), url, "{caFile: " + junk + "}")));
    auto [status, out] = run({"run", "--config", file}, "junk");
    INFO(out);
    CHECK(status == 1);
    CHECK_THAT(out, Catch::Contains("kesm: mappings[0].function.tls (line ") &&
                        Catch::Contains("TLS: cannot load CA file " + junk));
    // The same from the factory, which every protocol's invokers are built by.
    auto config = config::parseConfig(slurp(file), "test.yaml", kafka::checkSetting);
    CHECK_THROWS_WITH(poller::invokerFactory(config.mappings[0]), Catch::Contains(junk));
    ::unlink(junk.c_str());
  }
}
