// kesm's cloudEvents protocol against real CloudEvents peers we did not write, built by
// tests/cloudevents/peers.sh into KESM_CE_DIR: a sink on the CloudEvents Go SDK (parses with
// NewEventFromHTTPRequest / NewEventsFromHTTPRequest, Validate()s each event) and Google's
// Functions Framework for Python (--signature-type cloudevent). Kafka is the mock cluster.

#include "app/runtime.h"
#include "common/json.h"
#include "harness.h"
#include "invoker/cloudevents.h"
#include "invoker/payload.h"
#include "kafka/kafka.h"
#include "net/http.h"
#include "tests/unit/net/tls_peer.h"

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <set>
#include <sys/socket.h>
#include <unistd.h>

using namespace kesm;
using namespace kesm::test;

namespace {

constexpr int kPartitions = 3;
constexpr int kPerPartition = 10;
constexpr std::int64_t kBaseTimestamp = 1764644880123; // ms ending in 123: never trimmed
const std::string kTopic = "ce-orders";

std::string ceDir() { return KESM_CE_DIR; }

// The numbered records, then one record that already is a CloudEvent (Kafka binary binding)
// at the end of partition 0. Values are JSON; key k<P>-<O>; header tenant: acme.
void produceRecords(const std::string& bootstrap) {
  app::Producer producer(bootstrap);
  for (int p = 0; p < kPartitions; ++p) {
    for (int o = 0; o < kPerPartition; ++o) {
      producer.produce(kTopic, p, "k" + std::to_string(p) + "-" + std::to_string(o),
                       R"({"p":)" + std::to_string(p) + R"(,"o":)" + std::to_string(o) + "}",
                       {{"tenant", "acme"}, {"X-Not-An-Attribute", "dropped"}},
                       kBaseTimestamp + o * 1000);
    }
  }
  producer.produce(kTopic, 0, std::nullopt, R"({"order":1})",
                   {{"ce_specversion", "1.0"},
                    {"ce_id", "order-1"},
                    {"ce_source", "/shop"},
                    {"ce_type", "com.example.order"},
                    {"content-type", "application/json"}},
                   kBaseTimestamp);
  producer.flush(30s);
}

// The JSON lines of a peer's output file (those complete so far).
std::vector<json::Value> readLines(const std::string& path) {
  std::vector<json::Value> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!in.eof()) { // a line still being written has no newline yet
      out.push_back(json::parse(line));
    }
  }
  return out;
}

std::string str(const json::Value& object, const char* name) {
  const json::Value* v = object.find(name);
  return v != nullptr && v->kind == json::Value::Kind::kString ? v->text : "<absent>";
}

// The attributes of one received event: the Go SDK writes them at the top level, the
// Functions Framework handler under "attributes".
const json::Value& attributesOf(const json::Value& line) {
  const json::Value* a = line.find("attributes");
  return a != nullptr ? *a : line;
}

// Checks what every peer must have received: each record, kesm's attributes on it, first
// arrivals in offset order per partition, the pre-formed event as itself. `exactly_once`:
// no record twice.
void checkReceived(const std::vector<json::Value>& lines, const std::string& mapping,
                   bool exactly_once) {
  std::map<std::string, int> seen;
  std::map<int, std::int64_t> last_first_arrival;
  bool passed_through = false;
  for (const json::Value& line : lines) {
    REQUIRE(line.find("error") == nullptr); // the SDK could not parse or validate an event
    const json::Value& a = attributesOf(line);
    const std::string id = str(a, "id");
    INFO("event " << id);
    if (id == "order-1") {
      passed_through = true;
      CHECK(str(a, "source") == "/shop");
      CHECK(str(a, "type") == "com.example.order");
      CHECK(str(a, "subject") == "<absent>");
      CHECK(str(a, "datacontenttype") == "application/json");
      continue;
    }
    int p = -1;
    long long o = -1;
    REQUIRE(std::sscanf(id.c_str(), "partition:%d/offset:%lld", &p, &o) == 2);
    const std::string subject = "partition:" + std::to_string(p) + "#" + std::to_string(o);
    CHECK(str(a, "specversion") == "1.0");
    CHECK(str(a, "source") == "/kesm/mappings/" + mapping + "#" + kTopic);
    CHECK(str(a, "type") == "dev.knative.kafka.event");
    CHECK(str(a, "subject") == subject);
    CHECK(str(a, "time") == invoker::rfc3339Millis(kBaseTimestamp + o * 1000));
    CHECK(str(a, "partitionkey") == "k" + std::to_string(p) + "-" + std::to_string(o));
    CHECK(str(a, "tenant") == "acme");
    CHECK(str(a, "datacontenttype") != "<absent>"); // application/json: the value is JSON
    const json::Value* data = line.find("data");
    REQUIRE(data != nullptr);
    CHECK(data->find("o") != nullptr);
    if (seen[id]++ == 0) {
      auto [it, first] = last_first_arrival.try_emplace(p, o);
      if (!first) {
        CHECK(o == it->second + 1); // first arrivals in offset order, none skipped
        it->second = o;
      } else {
        CHECK(o == 0);
      }
    }
  }
  CHECK(passed_through);
  CHECK(seen.size() == std::size_t{kPartitions * kPerPartition});
  if (exactly_once) {
    for (const auto& [id, count] : seen) {
      INFO("event " << id);
      CHECK(count == 1);
    }
  }
}

std::size_t distinctIds(const std::string& path) {
  std::set<std::string> ids;
  for (const json::Value& line : readLines(path)) {
    ids.insert(str(attributesOf(line), "id"));
  }
  return ids.size();
}

// Runs kesm in-process with one cloudEvents mapping until every record arrived and the
// group committed them all.
void deliver(const std::string& mapping, const std::string& bootstrap, const std::string& url,
             const std::string& mode, const std::string& out, const std::string& topic = kTopic,
             std::size_t total = kPartitions * kPerPartition + 1, const std::string& tls = "") {
  MappingYaml m = testMapping(mapping, bootstrap, topic, url, 1, 1);
  m.function.set("protocol", "cloudEvents").set("cloudEvents", "{mode: " + mode + "}");
  if (!tls.empty()) {
    m.function.set("tls", tls);
  }
  auto config = config::parseConfig(configYaml(m), "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  bool arrived = waitUntil(120s, [&] {
    return distinctIds(out) >= total && runtime.snapshot().at(0).committed >= total;
  });
  INFO("distinct events " << distinctIds(out) << ", committed "
                          << runtime.snapshot().at(0).committed);
  CHECK(arrived);
  REQUIRE(runtime.stop());
}

struct GoSink {
  std::string out, addr_file, log;
  std::optional<ChildProcess> process;
  std::string url;
  // With `tls`, serves HTTPS with the PKI's server certificate (CN and SAN localhost).
  explicit GoSink(const std::string& name, const std::string& fail_once = "",
                  const TestPki* tls = nullptr) {
    out = writeTempFile(name + ".jsonl", "");
    addr_file = writeTempFile(name + ".addr", "");
    unlink(addr_file.c_str());
    log = writeTempFile(name + ".log", "");
    std::vector<std::string> args = {"-listen", "127.0.0.1:0", "-addr-file", addr_file,
                                     "-out",    out,           "-fail-once", fail_once};
    if (tls != nullptr) {
      args.insert(args.end(),
                  {"-tls-cert", tls->path("server.pem"), "-tls-key", tls->path("server.key")});
    }
    process.emplace(ceDir() + "/bin/cloudevents-sink", args, log);
    std::string addr;
    REQUIRE(waitUntil(30s, [&] {
      std::ifstream in(addr_file);
      return static_cast<bool>(std::getline(in, addr));
    }));
    // The certificate names localhost, not 127.0.0.1's port: ask by name.
    url = tls != nullptr ? "https://localhost:" + addr.substr(addr.rfind(':') + 1) + "/"
                         : "http://" + addr + "/";
  }
};

std::uint16_t freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  close(fd);
  return ntohs(sa.sin_port);
}

} // namespace

TEST_CASE("cloudEvents binary mode: the CloudEvents Go SDK gets every record once, in order, "
          "with Knative's attributes, and a pre-formed CloudEvent as itself",
          "[integration][cloudevents]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic(kTopic, kPartitions);
  produceRecords(cluster.bootstrapServers());
  GoSink sink("ce-go-binary");
  deliver("ce-binary", cluster.bootstrapServers(), sink.url, "binary", sink.out);
  checkReceived(readLines(sink.out), "ce-binary", true);
}

TEST_CASE("cloudEvents batch mode: the CloudEvents Go SDK parses each "
          "application/cloudevents-batch+json request, every record arrives once, in order",
          "[integration][cloudevents]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic(kTopic, kPartitions);
  produceRecords(cluster.bootstrapServers());
  GoSink sink("ce-go-batch");
  deliver("ce-batch", cluster.bootstrapServers(), sink.url, "batch", sink.out);
  checkReceived(readLines(sink.out), "ce-batch", true);
}

TEST_CASE("cloudEvents binary mode: a record the Go SDK sink fails once (500) is retried, "
          "nothing is lost or reordered",
          "[integration][cloudevents]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic(kTopic, kPartitions);
  produceRecords(cluster.bootstrapServers());
  GoSink sink("ce-go-fail", "partition:1/offset:5");
  deliver("ce-fail", cluster.bootstrapServers(), sink.url, "binary", sink.out);
  // The records sent before the failed one are committed at once (a partial failure), so
  // nothing arrives twice: the failed record was not recorded by the sink.
  checkReceived(readLines(sink.out), "ce-fail", true);
  std::ifstream log(sink.log);
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK(text.find("failing once: partition:1/offset:5") != std::string::npos);
}

TEST_CASE("cloudEvents over https: the CloudEvents Go SDK behind TLS with the test's CA gets "
          "every record once, in order, in both modes",
          "[integration][cloudevents]") {
  const std::string mode = GENERATE(std::string("binary"), std::string("batch"));
  INFO("mode " << mode);
  TestPki pki;
  app::MockKafkaCluster cluster(1);
  cluster.createTopic(kTopic, kPartitions);
  produceRecords(cluster.bootstrapServers());
  GoSink sink("ce-go-https-" + mode, "", &pki);
  REQUIRE(sink.url.rfind("https://localhost:", 0) == 0);
  deliver("ce-https-" + mode, cluster.bootstrapServers(), sink.url, mode, sink.out, kTopic,
          kPartitions * kPerPartition + 1, "{caFile: " + pki.path("ca.pem") + "}");
  checkReceived(readLines(sink.out), "ce-https-" + mode, true);
}

TEST_CASE("cloudEvents binary mode: Google's Functions Framework (--signature-type cloudevent) "
          "gets every record with its attributes, a raised record is retried",
          "[integration][cloudevents]") {
  app::MockKafkaCluster cluster(1);
  cluster.createTopic(kTopic, kPartitions);
  produceRecords(cluster.bootstrapServers());
  const std::string out = writeTempFile("ce-ff.jsonl", "");
  const std::uint16_t port = freePort();
  ChildProcess ff(ceDir() + "/venv/bin/functions-framework",
                  {"--target", "receive", "--source",
                   std::string(KESM_SOURCE_DIR) + "/tests/cloudevents/functions_framework/main.py",
                   "--signature-type", "cloudevent", "--host", "127.0.0.1", "--port",
                   std::to_string(port)},
                  writeTempFile("ce-ff.log", ""),
                  {"KESM_CE_OUT=" + out, "KESM_CE_FAIL_ONCE=partition:2/offset:3",
                   "PYTHONDONTWRITEBYTECODE=1"}); // no __pycache__ in the source tree
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  net::HttpClient probe(net::parseUrl(url));
  REQUIRE(waitUntil(60s, [&] { return probe.request("GET", "/", "", {}, 2s).transportOk(); }));
  deliver("ce-ff", cluster.bootstrapServers(), url, "binary", out);
  checkReceived(readLines(out), "ce-ff", true);
  ff.signal(SIGTERM); // gunicorn stops its workers on TERM
  ff.wait(20s);
}

TEST_CASE("cloudEvents: binary values, tombstones, non-UTF-8 keys and headers, big numbers reach "
          "the CloudEvents Go SDK as valid events in both modes",
          "[integration][cloudevents]") {
  const std::string mode = GENERATE(std::string("binary"), std::string("batch"));
  INFO("mode " << mode);
  app::MockKafkaCluster cluster(1);
  const std::string topic = "ce-hostile";
  cluster.createTopic(topic, 1);
  const std::string binary("\x00\xFF\x80 binary", 10);
  {
    app::Producer producer(cluster.bootstrapServers());
    producer.produce(topic, 0, std::string("\xFF\xFEk"), binary,
                     {{"note", "hello world \"q\" 100%"}}, kBaseTimestamp);
    producer.produce(topic, 0, std::string("t"), std::nullopt, {}, kBaseTimestamp);
    producer.produce(topic, 0, std::nullopt, std::string("plain text"),
                     {{"content-type", "text/plain; charset=utf-8"}, {"bin", "\xC3\x28"}},
                     kBaseTimestamp);
    producer.produce(topic, 0, std::nullopt, std::string(R"({"n":12345678901234567890123})"), {},
                     kBaseTimestamp);
    producer.flush(30s);
  }
  GoSink sink("ce-go-hostile-" + mode);
  deliver("ce-hostile-" + mode, cluster.bootstrapServers(), sink.url, mode, sink.out, topic, 4);
  std::map<std::string, json::Value> events;
  for (json::Value& line : readLines(sink.out)) {
    REQUIRE(line.find("error") == nullptr);
    events[str(line, "id")] = line;
  }
  REQUIRE(events.size() == 4);
  const json::Value& e0 = events["partition:0/offset:0"];
  CHECK(str(e0, "data_base64") == invoker::base64Encode(binary));
  CHECK(str(e0, "datacontenttype") == "application/octet-stream");
  // Binary mode percent-encodes ce- values as the HTTP binding requires; the Go SDK (2.16.2)
  // does not decode them. Batch mode carries them as JSON strings.
  if (mode == "binary") {
    CHECK(str(e0, "partitionkey") == "%EF%BF%BD%EF%BF%BDk");
    CHECK(str(e0, "note") == "hello%20world%20%22q%22%20100%25");
  } else {
    CHECK(str(e0, "partitionkey") == "\xEF\xBF\xBD\xEF\xBF\xBDk");
    CHECK(str(e0, "note") == "hello world \"q\" 100%");
  }
  const json::Value& e1 = events["partition:0/offset:1"];
  CHECK(e1.find("data") == nullptr);
  CHECK(e1.find("data_base64") == nullptr);
  const json::Value& e2 = events["partition:0/offset:2"];
  CHECK(str(e2, "data") == "plain text");
  CHECK(str(e2, "datacontenttype") == "text/plain; charset=utf-8");
  CHECK(str(e2, "bin") == (mode == "binary" ? "%EF%BF%BD(" : "\xEF\xBF\xBD("));
  const json::Value* n = events["partition:0/offset:3"].find("data");
  REQUIRE(n != nullptr);
  REQUIRE(n->find("n") != nullptr);
  CHECK(n->find("n")->text == "12345678901234567890123");
}
