// The CloudEvents encoders (attributes as Knative's KafkaSource sets them, pass-through of a
// Kafka-binding CloudEvent, the HTTP binding's header encoding, the batch JSON) and the
// binary-mode invoker's stop-at-first-failure mapping against a real HTTP server.

#include "common/json.h"
#include "invoker/cloudevents.h"
#include "net/http.h"

#include <catch2/catch.hpp>
#include <mutex>
#include <set>
#include <thread>

using namespace kesm;
using namespace kesm::invoker;

namespace {

Record makeRecord(std::int32_t partition, std::int64_t offset) {
  Record r;
  r.topic = "orders";
  r.partition = Partition{partition};
  r.offset = Offset{offset};
  r.timestamp_ms = 1764644880123; // 2025-12-02T03:08:00.123Z
  r.key = "k";
  r.value = R"({"n":1})";
  return r;
}

std::string header(const net::Headers& headers, const std::string& name) {
  for (const auto& [n, v] : headers) {
    if (n == name) {
      return v;
    }
  }
  return "<absent>";
}

} // namespace

TEST_CASE("cloudEvents: a record becomes a CloudEvent with Knative's id and subject") {
  Record r = makeRecord(3, 42);
  r.headers = {{"traceparent", "00-abc-01"},
               {"content-type", "application/json"},
               {"X-Upper", "dropped"},
               {"this-has-dashes", "dropped"},
               {"averyveryverylongname1", "dropped: over 20"},
               {"id", "reserved: dropped"},
               {"nullvalue", std::nullopt},
               {"tenant", "a"},
               {"tenant", "b"}};
  CloudEvent e = recordToCloudEvent(r, "/kesm/mappings/m", "dev.knative.kafka.event");
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"specversion", "1.0"},
      {"id", "partition:3/offset:42"},
      {"source", "/kesm/mappings/m#orders"},
      {"type", "dev.knative.kafka.event"},
      {"subject", "partition:3#42"},
      {"time", "2025-12-02T03:08:00.123Z"},
      {"datacontenttype", "application/json"},
      {"partitionkey", "k"},
      {"traceparent", "00-abc-01"},
      {"tenant", "b"}};
  CHECK(e.attributes == expected);
  CHECK(e.data == std::optional<std::string>(R"({"n":1})"));
}

TEST_CASE("cloudEvents: no key, no timestamp, a tombstone: no partitionkey, no time, no data") {
  Record r = makeRecord(0, 0);
  r.key.reset();
  r.value.reset();
  r.timestamp_type = TimestampType::kNotAvailable;
  CloudEvent e = recordToCloudEvent(r, "/s", "t");
  CHECK(e.attribute("partitionkey") == nullptr);
  CHECK(e.attribute("time") == nullptr);
  CHECK_FALSE(e.data.has_value());
  CHECK(header(binaryModeHeaders(e), "Content-Type") == "application/json");
  CHECK(encodeBatch({e}).find("data") == std::string::npos);
}

TEST_CASE("cloudEvents: a record that is a CloudEvent in the Kafka binding passes through as that "
          "event") {
  Record r = makeRecord(1, 7);
  r.headers = {{"ce_specversion", "1.0"},
               {"ce_id", "order-17"},
               {"ce_source", "/shop"},
               {"ce_type", "com.example.order"},
               {"ce_subject", "o17"},
               {"content-type", "text/plain"},
               {"ce_Bad", "dropped: upper case"},
               {"traceparent", "not a ce_ header: dropped"},
               {"ce_myext", "x"}};
  CloudEvent e = recordToCloudEvent(r, "/kesm/mappings/m", "dev.knative.kafka.event");
  CHECK(*e.attribute("id") == "order-17");
  CHECK(*e.attribute("source") == "/shop");
  CHECK(*e.attribute("type") == "com.example.order");
  CHECK(*e.attribute("subject") == "o17");
  CHECK(*e.attribute("datacontenttype") == "text/plain");
  CHECK(*e.attribute("myext") == "x");
  CHECK(*e.attribute("partitionkey") == "k"); // the key, as the Kafka binding maps it
  CHECK(e.attribute("bad") == nullptr);
  CHECK(e.attribute("traceparent") == nullptr);
  CHECK(e.attribute("time") == nullptr);
  // Three of the four required headers are not a CloudEvent: kesm's own attributes.
  r.headers = {{"ce_specversion", "1.0"}, {"ce_id", "x"}, {"ce_source", "/shop"}};
  CHECK(*recordToCloudEvent(r, "/p", "t").attribute("id") == "partition:1/offset:7");
}

TEST_CASE("cloudEvents: attribute names and strings") {
  CHECK(isAttributeName("a"));
  CHECK(isAttributeName("traceparent"));
  CHECK(isAttributeName("abcdefghij0123456789"));
  CHECK_FALSE(isAttributeName("abcdefghij01234567890"));
  CHECK_FALSE(isAttributeName(""));
  CHECK_FALSE(isAttributeName("Trace"));
  CHECK_FALSE(isAttributeName("x-y"));
  CHECK_FALSE(isAttributeName("x_y"));
  CHECK(toAttributeString("caf\xC3\xA9") == "caf\xC3\xA9");
  CHECK(toAttributeString(std::string("a\0b\n\xFF\xC2\x85z", 8)) ==
        "a\xEF\xBF\xBD"
        "b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDz");
  // A non-UTF-8 key still yields a valid event, never a throw.
  Record r = makeRecord(0, 1);
  r.key = std::string("\xFF\xFE", 2);
  CHECK(*recordToCloudEvent(r, "/s", "t").attribute("partitionkey") == "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("cloudEvents: RFC 3339 times in UTC with milliseconds") {
  CHECK(rfc3339Millis(0) == "1970-01-01T00:00:00.000Z");
  CHECK(rfc3339Millis(951782400999) == "2000-02-29T00:00:00.999Z");
  CHECK(rfc3339Millis(253402300799000) == "9999-12-31T23:59:59.000Z");
}

TEST_CASE("cloudEvents: binary mode: ce- headers percent-encoded as the HTTP binding requires") {
  CHECK(percentEncodeHeaderValue("partition:0/offset:1") == "partition:0/offset:1");
  CHECK(percentEncodeHeaderValue("a b\"c%d") == "a%20b%22c%25d");
  CHECK(percentEncodeHeaderValue("caf\xC3\xA9\n") == "caf%C3%A9%0A");
  Record r = makeRecord(2, 9);
  r.headers = {{"note", "hello world"}};
  net::Headers h = binaryModeHeaders(recordToCloudEvent(r, "/s", "t"));
  CHECK(header(h, "ce-id") == "partition:2/offset:9");
  CHECK(header(h, "ce-note") == "hello%20world");
  CHECK(header(h, "ce-time") == "2025-12-02T03:08:00.123Z");
  CHECK(header(h, "Content-Type") == "application/json"); // the value is JSON
  CHECK(header(h, "ce-datacontenttype") == "<absent>");
  r.value = std::string("\x00\xFF", 2);
  CHECK(header(binaryModeHeaders(recordToCloudEvent(r, "/s", "t")), "Content-Type") ==
        "application/octet-stream");
}

TEST_CASE("cloudEvents: batch mode: a JSON array of structured events, data by content type") {
  Record json_record = makeRecord(0, 1);
  Record text_record = makeRecord(0, 2);
  text_record.value = "caf\xC3\xA9 \"quoted\"";
  text_record.headers = {{"content-type", "text/plain; charset=utf-8"}};
  Record binary_record = makeRecord(0, 3);
  binary_record.value = std::string("\x00\xFF", 2);
  Record big_number = makeRecord(0, 4);
  big_number.value = "12345678901234567890123";
  std::vector<CloudEvent> events;
  for (const Record* r : {&json_record, &text_record, &binary_record, &big_number}) {
    events.push_back(recordToCloudEvent(*r, "/s", "t"));
  }
  const std::string body = encodeBatch(events);
  json::Value doc = json::parse(body); // strict JSON
  REQUIRE(doc.kind == json::Value::Kind::kArray);
  REQUIRE(doc.items.size() == 4);
  CHECK(doc.items[0].find("id")->text == "partition:0/offset:1");
  CHECK(doc.items[0].find("data")->find("n")->text == "1");
  CHECK(doc.items[1].find("data")->text == "caf\xC3\xA9 \"quoted\"");
  CHECK(doc.items[2].find("data") == nullptr);
  CHECK(doc.items[2].find("data_base64")->text == "AP8=");
  CHECK(doc.items[2].find("datacontenttype")->text == "application/octet-stream");
  // Embedded as the record holds it: no precision lost to a double.
  CHECK(body.find(R"("data":12345678901234567890123)") != std::string::npos);
  CHECK(encodeBatch({}) == "[]");
}

namespace {

// A function that answers 500 for the records it is told to fail.
struct Sink {
  std::mutex mutex;
  std::vector<std::string> ids;
  std::set<std::string> fail;
  net::HttpServer server{"127.0.0.1:0",
                         [this](const net::HttpRequest& req) {
                           std::lock_guard lock(mutex);
                           const std::string id = req.header("ce-id");
                           ids.push_back(id);
                           net::HttpResponse res;
                           res.status = fail.count(id) ? 500 : 202;
                           return res;
                         },
                         serverOptions()};
  static net::HttpServerOptions serverOptions() {
    net::HttpServerOptions o;
    o.body_limit_bytes = 1 << 20;
    return o;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server.port()) + "/"; }
};

} // namespace

TEST_CASE("cloudEvents: binary mode sends one record per request in order and stops at the first "
          "failure") {
  Sink sink;
  CloudEventsInvokerOptions opts;
  opts.url = sink.url();
  opts.timeout = std::chrono::seconds(5);
  opts.source_prefix = "/s";
  auto invoker = makeCloudEventsInvoker(opts);
  Batch batch;
  batch.records = {makeRecord(0, 10), makeRecord(1, 20), makeRecord(0, 11),
                   makeRecord(1, 21), makeRecord(2, 30), makeRecord(0, 12)};
  batch.records[4].filtered = true; // travels for its commit only: never sent

  InvokeResult ok = invoker->invoke(batch);
  CHECK(ok.outcome == InvokeOutcome::kSuccess);
  CHECK(sink.ids == std::vector<std::string>{"partition:0/offset:10", "partition:1/offset:20",
                                             "partition:0/offset:11", "partition:1/offset:21",
                                             "partition:0/offset:12"});

  SECTION("a later record fails: its partition from it, the others from their first unsent") {
    sink.ids.clear();
    sink.fail = {"partition:0/offset:11"};
    InvokeResult r = invoker->invoke(batch);
    CHECK(r.outcome == InvokeOutcome::kPartialFailure);
    CHECK(r.http_status == 500);
    CHECK(sink.ids.size() == 3); // nothing after the failed record
    REQUIRE(r.item_failures.size() == 3);
    CHECK(r.item_failures[0].tp.partition.value() == 0);
    CHECK(r.item_failures[0].offset == 11);
    CHECK(r.item_failures[1].tp.partition.value() == 1);
    CHECK(r.item_failures[1].offset == 21);
    CHECK(r.item_failures[2].tp.partition.value() == 2);
    CHECK(r.item_failures[2].offset == 30);
  }
  SECTION("the first record fails: the batch fails as that request did") {
    sink.fail = {"partition:0/offset:10"};
    InvokeResult r = invoker->invoke(batch);
    CHECK(r.outcome == InvokeOutcome::kHttpError);
    CHECK(r.item_failures.empty());
  }
  SECTION("no function listening: a connection error") {
    opts.url = "http://127.0.0.1:1/";
    CHECK(makeCloudEventsInvoker(opts)->invoke(batch).outcome == InvokeOutcome::kConnectionError);
  }
}

TEST_CASE("cloudEvents: batch mode sends one application/cloudevents-batch+json request") {
  std::mutex mutex;
  std::vector<net::HttpRequest> requests;
  net::HttpServerOptions server_opts;
  server_opts.body_limit_bytes = 1 << 20;
  net::HttpServer server(
      "127.0.0.1:0",
      [&](const net::HttpRequest& req) {
        std::lock_guard lock(mutex);
        requests.push_back(req);
        return net::HttpResponse{};
      },
      server_opts);
  CloudEventsInvokerOptions opts;
  opts.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/events";
  opts.mode = CloudEventsMode::kBatch;
  opts.source_prefix = "/s";
  Batch batch;
  batch.records = {makeRecord(0, 1), makeRecord(0, 2)};
  CHECK(makeCloudEventsInvoker(opts)->invoke(batch).ok());
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].target == "/events");
  CHECK(requests[0].header("Content-Type") == "application/cloudevents-batch+json");
  CHECK(json::parse(requests[0].body).items.size() == 2);
}

TEST_CASE("cloudEvents: binary mode: the function timeout bounds the whole batch") {
  net::HttpServerOptions server_opts;
  server_opts.body_limit_bytes = 1 << 20;
  net::HttpServer server(
      "127.0.0.1:0",
      [](const net::HttpRequest&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        return net::HttpResponse{};
      },
      server_opts);
  CloudEventsInvokerOptions opts;
  opts.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  opts.timeout = std::chrono::milliseconds(500);
  opts.source_prefix = "/s";
  Batch batch;
  batch.records = {makeRecord(0, 1), makeRecord(0, 2), makeRecord(0, 3)};
  const auto start = std::chrono::steady_clock::now();
  InvokeResult r = makeCloudEventsInvoker(opts)->invoke(batch);
  const auto took = std::chrono::steady_clock::now() - start;
  // The first record took 300 ms, the second had 200 ms left and timed out.
  CHECK(r.outcome == InvokeOutcome::kPartialFailure);
  REQUIRE(r.item_failures.size() == 1);
  CHECK(r.item_failures[0].offset == 2);
  CHECK(took < std::chrono::milliseconds(1500));
}
