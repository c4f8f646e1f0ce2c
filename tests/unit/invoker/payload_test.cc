#include "invoker/payload.h"
#include "samplefn/sample_function.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <random>
#include <set>

using namespace kesm;
using namespace kesm::invoker;

namespace {

Record makeRecord(std::string topic, int partition, std::int64_t offset) {
  Record r;
  r.topic = std::move(topic);
  r.partition = Partition{partition};
  r.offset = Offset{offset};
  return r;
}

std::size_t predictedSize(const Batch& batch, const std::string& servers) {
  std::size_t total = encodedEnvelopeOverhead(servers);
  std::set<std::pair<std::string, std::int32_t>> seen;
  for (const Record& r : batch.records) {
    if (seen.emplace(r.topic, r.partition.value()).second) {
      total += encodedPartitionOverhead(r.topic, r.partition);
    }
    total += encodedRecordSize(r);
  }
  return total;
}

std::string randomBytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) {
    c = static_cast<char>(rng() & 0xff);
  }
  return s;
}

void checkRoundTrip(const Batch& batch) {
  // Lossless format: nulls stay nulls (function.nullValues: omit).
  auto received = samplefn::parseLambdaKafkaEvent(
      encodeLambdaKafkaEvent(batch, "b:9092", EventFormat{.nulls = NullStyle::kOmit}));
  // The event groups records by partition: compare per partition, in order.
  std::map<std::pair<std::string, std::int32_t>, std::vector<const Record*>> sent_by_tp;
  for (const Record& r : batch.records) {
    sent_by_tp[{r.topic, r.partition.value()}].push_back(&r);
  }
  std::map<std::pair<std::string, std::int32_t>, std::vector<const samplefn::ReceivedRecord*>>
      got_by_tp;
  for (const auto& r : received) {
    got_by_tp[{r.topic, r.partition}].push_back(&r);
  }
  REQUIRE(received.size() == batch.records.size());
  REQUIRE(got_by_tp.size() == sent_by_tp.size());
  for (const auto& [tp, sent] : sent_by_tp) {
    const auto& got = got_by_tp.at(tp);
    REQUIRE(got.size() == sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
      const Record& s = *sent[i];
      const samplefn::ReceivedRecord& g = *got[i];
      CHECK(g.offset == s.offset.value());
      CHECK(g.timestamp_ms == s.timestamp_ms);
      CHECK(g.key == s.key);
      CHECK(g.value == s.value);
      REQUIRE(g.headers.size() == s.headers.size());
      for (std::size_t h = 0; h < s.headers.size(); ++h) {
        CHECK(g.headers[h].key == s.headers[h].key);
        CHECK(g.headers[h].value == s.headers[h].value); // null and empty stay apart
      }
    }
  }
}

} // namespace

TEST_CASE("payload: exact JSON of a small batch", "[unit]") {
  Record a = makeRecord("orders", 0, 10);
  a.timestamp_ms = 1545084650987;
  a.value = std::string("\x00\xff", 2);
  a.headers = {{"h", "hi"}, {"n", std::nullopt}};

  Record b = makeRecord("orders", 1, 5);
  b.timestamp_ms = 1;
  b.timestamp_type = TimestampType::kLogAppendTime;
  b.key = "k";
  b.value = "";

  Record c = makeRecord("orders", 0, 11);
  c.timestamp_ms = 2;
  c.timestamp_type = TimestampType::kNotAvailable;
  c.key = "ab";

  Batch batch;
  batch.records = {a, b, c};
  const std::string expected =
      R"({"eventSource":"SelfManagedKafka","bootstrapServers":"b1:9092,b2:9092","records":{)"
      R"("orders-0":[)"
      R"({"topic":"orders","partition":0,"offset":10,"timestamp":1545084650987,)"
      R"("timestampType":"CREATE_TIME","value":"AP8=","headers":[{"h":[104,105]},{"n":[]}]},)"
      R"({"topic":"orders","partition":0,"offset":11,"timestamp":2,)"
      R"("timestampType":"NO_TIMESTAMP_TYPE","key":"YWI=","value":"","headers":[]}],)"
      R"("orders-1":[)"
      R"({"topic":"orders","partition":1,"offset":5,"timestamp":1,)"
      R"("timestampType":"LOG_APPEND_TIME","key":"aw==","value":"","headers":[]}]}})";
  const std::string json = encodeLambdaKafkaEvent(batch, "b1:9092,b2:9092");
  CHECK(json == expected);
  CHECK(predictedSize(batch, "b1:9092,b2:9092") == json.size());
}

TEST_CASE("payload: base64 matches the RFC 4648 test vectors", "[unit]") {
  struct Vector {
    std::string input;
    std::string encoded;
  };
  auto v =
      GENERATE(Vector{.input = "", .encoded = ""}, Vector{.input = "f", .encoded = "Zg=="},
               Vector{.input = "fo", .encoded = "Zm8="}, Vector{.input = "foo", .encoded = "Zm9v"},
               Vector{.input = "foob", .encoded = "Zm9vYg=="},
               Vector{.input = "fooba", .encoded = "Zm9vYmE="},
               Vector{.input = "foobar", .encoded = "Zm9vYmFy"},
               Vector{.input = std::string("\x00\xff\xfe", 3), .encoded = "AP/+"});
  CAPTURE(v.input);
  CHECK(base64Encode(v.input) == v.encoded);
}

TEST_CASE("payload: strings are JSON-escaped and non-UTF-8 header key bytes become uefXX escapes",
          "[unit]") {
  struct Case {
    const char* name;
    std::string header_key;
    std::string expected; // as it appears in the JSON, quotes included
  };
  auto c = GENERATE(
      Case{.name = "plain", .header_key = "plain", .expected = R"("plain")"},
      Case{.name = "quote and backslash", .header_key = R"(a"b\c)", .expected = R"("a\"b\\c")"},
      Case{.name = "control characters",
           .header_key = std::string("\n\t\x01\x1f\x00", 5),
           .expected = R"("\u000a\u0009\u0001\u001f\u0000")"},
      Case{.name = "DEL is legal JSON", .header_key = "\x7f", .expected = "\"\x7f\""},
      Case{.name = "valid UTF-8 is kept",
           .header_key = "caf\xc3\xa9 \xf0\x9f\x98\x80",
           .expected = "\"caf\xc3\xa9 \xf0\x9f\x98\x80\""},
      Case{.name = "lone byte 0xff", .header_key = "a\xff", .expected = R"("a\uefff")"},
      Case{.name = "truncated sequence at the end",
           .header_key = "a\xc3",
           .expected = R"("a\uefc3")"},
      Case{.name = "overlong encoding", .header_key = "\xc0\xaf", .expected = R"("\uefc0\uefaf")"},
      Case{.name = "UTF-16 surrogate",
           .header_key = "\xed\xa0\x80",
           .expected = R"("\uefed\uefa0\uef80")"},
      Case{.name = "above U+10FFFF",
           .header_key = "\xf4\x90\x80\x80",
           .expected = R"("\ueff4\uef90\uef80\uef80")"},
      Case{.name = "reserved code points U+EF80 and U+EFFF are escaped byte by byte",
           .header_key = "\xee\xbe\x80\xee\xbf\xbf",
           .expected = R"("\uefee\uefbe\uef80\uefee\uefbf\uefbf")"},
      Case{.name = "code points next to the reserved range stay verbatim",
           .header_key = "\xee\xbd\xbf\xef\x80\x80",
           .expected = "\"\xee\xbd\xbf\xef\x80\x80\""});
  CAPTURE(c.name);
  Record r = makeRecord("t", 0, 0);
  r.headers = {{c.header_key, "x"}};
  Batch batch;
  batch.records = {r};
  const std::string json = encodeLambdaKafkaEvent(batch, "b");
  CHECK(json.find("\"headers\":[{" + c.expected + ":[120]}]") != std::string::npos);
  CHECK(predictedSize(batch, "b") == json.size());

  // The body is strict JSON, and the key comes back byte for byte.
  auto received = samplefn::parseLambdaKafkaEvent(json);
  REQUIRE(received.size() == 1);
  REQUIRE(received[0].headers.size() == 1);
  CHECK(received[0].headers[0].key == c.header_key);
}

TEST_CASE("payload: odd topic names are escaped in the record and in the partition key", "[unit]") {
  Record r = makeRecord("we\"ird\\topic\x01", 3, 7);
  r.value = "v";
  Batch batch;
  batch.records = {r};
  const std::string json = encodeLambdaKafkaEvent(batch, "host\"1:9092");
  CHECK(json.find(R"("bootstrapServers":"host\"1:9092")") != std::string::npos);
  CHECK(json.find(R"("we\"ird\\topic\u0001-3":[)") != std::string::npos);
  CHECK(json.find(R"({"topic":"we\"ird\\topic\u0001","partition":3,)") != std::string::npos);
  CHECK(predictedSize(batch, "host\"1:9092") == json.size());
  auto received = samplefn::parseLambdaKafkaEvent(json);
  REQUIRE(received.size() == 1);
  CHECK(received[0].topic == r.topic);
}

TEST_CASE("payload: envelope + partition overheads + record sizes == encoded size", "[unit]") {
  auto seed = GENERATE(range(1, 41));
  std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
  const std::vector<std::string> topics = {"a",           "orders", "t\"q",
                                           "caf\xc3\xa9", "x\xff",  std::string("nul\x00", 4)};
  const std::vector<std::string> servers_choices = {"", "b:9092", "k-0:9092,k-1:9092",
                                                    "odd\\\"\x02"};
  const std::string servers = servers_choices[rng() % servers_choices.size()];
  Batch batch;
  const std::size_t n = 1 + rng() % 60;
  for (std::size_t i = 0; i < n; ++i) {
    Record r = makeRecord(topics[rng() % topics.size()],
                          static_cast<int>(rng() % 4 == 0 ? 1000 + rng() % 5 : rng() % 12),
                          static_cast<std::int64_t>(rng() >> (rng() % 64)));
    r.timestamp_ms = static_cast<std::int64_t>(rng() >> (rng() % 64)) * (rng() % 5 == 0 ? -1 : 1);
    r.timestamp_type = static_cast<TimestampType>(rng() % 3);
    if (rng() % 4 != 0) {
      r.key = randomBytes(rng, rng() % 40);
    }
    if (rng() % 5 != 0) {
      r.value = randomBytes(rng, rng() % 300);
    }
    const std::size_t headers = rng() % 4 == 0 ? rng() % 8 : 0;
    for (std::size_t h = 0; h < headers; ++h) {
      Header header;
      header.key = randomBytes(rng, rng() % 10);
      if (rng() % 3 != 0) {
        header.value = randomBytes(rng, rng() % 20);
      }
      r.headers.push_back(std::move(header));
    }
    batch.records.push_back(std::move(r));
  }
  CAPTURE(seed, n);
  const std::string json = encodeLambdaKafkaEvent(batch, servers);
  CHECK(predictedSize(batch, servers) == json.size());
  // Every generated body is parseable.
  CHECK(samplefn::parseLambdaKafkaEvent(json).size() == batch.records.size());
}

TEST_CASE("payload: an empty batch is the envelope plus one byte", "[unit]") {
  const std::string json = encodeLambdaKafkaEvent(Batch{}, "b:9092");
  CHECK(json == R"({"eventSource":"SelfManagedKafka","bootstrapServers":"b:9092","records":{}})");
  CHECK(json.size() == encodedEnvelopeOverhead("b:9092") + 1);
}

TEST_CASE("payload: round trip through parseLambdaKafkaEvent preserves every byte", "[unit]") {
  std::mt19937_64 rng(42);
  Batch batch;

  Record big = makeRecord("big", 0, 1);
  big.key = randomBytes(rng, 17);
  big.value = randomBytes(rng, 1024 * 1024);
  batch.records.push_back(big);

  Record binary = makeRecord("bin", 2, 99);
  binary.key = std::string("\x00\x80\xff\xc3", 4); // not UTF-8
  binary.value = std::string("\xed\xa0\x80\x00", 4);
  binary.timestamp_ms = 1700000000123;
  binary.timestamp_type = TimestampType::kLogAppendTime;
  batch.records.push_back(binary);

  Record many_headers = makeRecord("big", 0, 2);
  for (int h = 0; h < 100; ++h) {
    Header header;
    header.key = "header-" + std::to_string(h);
    if (h % 10 != 0) {
      header.value = randomBytes(rng, static_cast<std::size_t>(h));
    }
    many_headers.headers.push_back(std::move(header));
  }
  many_headers.headers.push_back({"all-bytes", std::string()});
  for (int b = 0; b < 256; ++b) {
    many_headers.headers.back().value->push_back(static_cast<char>(b));
  }
  batch.records.push_back(many_headers);

  Record empty_key = makeRecord("bin", 2, 100); // empty key and value are not null
  empty_key.key = "";
  empty_key.value = "";
  batch.records.push_back(empty_key);

  Record tombstone = makeRecord("t\"x", 7, 3); // null key and value
  batch.records.push_back(tombstone);

  checkRoundTrip(batch);
}

TEST_CASE("payload: a 6 MiB body encodes in a few milliseconds", "[unit]") {
  std::mt19937_64 rng(7);
  Batch batch;
  for (int i = 0; i < 500; ++i) {
    Record r = makeRecord("orders", i % 8, i);
    r.key = randomBytes(rng, 16);
    r.value = randomBytes(rng, 9 * 1024);
    r.headers = {{"trace", randomBytes(rng, 16)}};
    batch.records.push_back(std::move(r));
  }
  const auto start = std::chrono::steady_clock::now();
  const std::string json = encodeLambdaKafkaEvent(batch, "b:9092");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(json.size() > 6'000'000);
  CHECK(predictedSize(batch, "b:9092") == json.size());
  // Generous bound for a loaded 2-core CI machine; typically a few ms.
  CHECK(elapsed < std::chrono::milliseconds(250));
}
