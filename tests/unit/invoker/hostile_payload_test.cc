// The encoder on records that break naive encoders: null versus empty, non-UTF-8 bytes in
// keys, values and header names, NUL and 0xff in header values, null header values, 100
// headers, quotes, backslashes and control characters, 1 MiB values against the 6 MiB cap.
// Each event must be strict JSON (samplefn's reader) and decode to the exact bytes.

#include "invoker/payload.h"
#include "samplefn/sample_function.h"

#include <catch2/catch.hpp>
#include <random>
#include <set>

using namespace kesm;
using namespace kesm::invoker;

namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) {
    out.push_back(static_cast<char>(v));
  }
  return out;
}

std::string allByteValues(std::size_t size) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    out[i] = static_cast<char>(i % 256);
  }
  return out;
}

Record makeRecord(std::int64_t offset) {
  Record r;
  r.topic = "hostile";
  r.partition = Partition{0};
  r.offset = Offset{offset};
  r.timestamp_ms = 1700000000000 + offset;
  return r;
}

// Lossless: nulls stay nulls (function.nullValues: omit).
const EventFormat kOmitNulls{.nulls = NullStyle::kOmit};

std::size_t predictedSize(const Batch& batch, const std::string& servers,
                          const EventFormat& format = {}) {
  std::size_t total = encodedEnvelopeOverhead(servers);
  std::set<std::pair<std::string, std::int32_t>> seen;
  for (const Record& r : batch.records) {
    if (seen.emplace(r.topic, r.partition.value()).second) {
      total += encodedPartitionOverhead(r.topic, r.partition);
    }
    total += encodedRecordSize(r, format);
  }
  return total;
}

// One partition: records come back in the order sent, every byte equal.
void requireExactRoundTrip(const Batch& batch) {
  const std::string json = encodeLambdaKafkaEvent(batch, "b:9092", kOmitNulls);
  REQUIRE(predictedSize(batch, "b:9092", kOmitNulls) == json.size());
  const auto got = samplefn::parseLambdaKafkaEvent(json);
  REQUIRE(got.size() == batch.records.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const Record& s = batch.records[i];
    CAPTURE(i);
    CHECK(got[i].topic == s.topic);
    CHECK(got[i].partition == s.partition.value());
    CHECK(got[i].offset == s.offset.value());
    CHECK(got[i].timestamp_ms == s.timestamp_ms);
    CHECK(got[i].key == s.key);
    CHECK(got[i].value == s.value);
    REQUIRE(got[i].headers.size() == s.headers.size());
    for (std::size_t h = 0; h < s.headers.size(); ++h) {
      CAPTURE(h);
      CHECK(got[i].headers[h].key == s.headers[h].key);
      CHECK(got[i].headers[h].value == s.headers[h].value);
    }
  }
}

} // namespace

TEST_CASE("hostile: every hostile record round-trips byte for byte", "[unit]") {
  struct Case {
    const char* name;
    std::optional<std::string> key;
    std::optional<std::string> value;
    std::vector<Header> headers{};
  };
  const std::string not_utf8 = bytes({0xff, 0xfe, 0x80, 0xc0, 0x00, 0xc3, 0x28, 0xed, 0xa0, 0x80,
                                      0xf4, 0x90, 0x80, 0x80, 0xe2, 0x82});
  std::vector<Header> many;
  for (int i = 0; i < 100; ++i) {
    many.push_back(
        {i % 10 == 9 ? "dup" : "h-" + std::to_string(i),
         i % 7 == 3 ? std::nullopt : std::optional<std::string>(bytes({0x00, (i * 37) & 0xff}))});
  }
  auto c = GENERATE_COPY(
      Case{.name = "empty value", .key = "k", .value = ""},
      Case{.name = "null value", .key = "k", .value = std::nullopt},
      Case{.name = "null key", .key = std::nullopt, .value = "v"},
      Case{.name = "empty key", .key = "", .value = "v"},
      Case{.name = "null key and value", .key = std::nullopt, .value = std::nullopt},
      Case{.name = "1 MiB of all byte values", .key = "big", .value = allByteValues(1 << 20)},
      Case{.name = "non-UTF-8 key and value", .key = not_utf8, .value = not_utf8},
      Case{.name = "non-UTF-8 header names",
           .key = "k",
           .value = "v",
           .headers = {{bytes({0xff, 0xfe}), "a"},
                       {bytes({0x80, 0xc0}), "b"},
                       {not_utf8.substr(0, 4), "c"},
                       {not_utf8, "d"},
                       {"\xee\xbe\x80\xee\xbf\xbf", "reserved"},
                       {"\\uefff", "the escape's spelling"}}},
      Case{.name = "header values with NUL, 0xff, null and empty",
           .key = "k",
           .value = "v",
           .headers = {{"nul", bytes({0x00})},
                       {"bin", bytes({0x00, 0xff, 0x00, 0xfe})},
                       {"null", std::nullopt},
                       {"empty", ""},
                       {"all", allByteValues(256)}}},
      Case{.name = "100 headers", .key = "k", .value = "v", .headers = many},
      Case{.name = "quotes, backslashes, control characters",
           .key = "\"key\" \\ \n\t\r\b\f" + bytes({0x01, 0x1f, 0x7f}),
           .value = "{\"json\":\"in\\\"side\"}\\u0000" + bytes({0x00, 0x1b}),
           .headers = {{"q\"b\\s\n\t" + bytes({0x00, 0x01, 0x1f, 0x7f}), "\"\\\n"},
                       {"", "an empty header name"}}});
  CAPTURE(c.name);
  Record r = makeRecord(0);
  r.key = c.key;
  r.value = c.value;
  r.headers = c.headers;
  Batch batch;
  batch.records = {r};
  requireExactRoundTrip(batch);
}

TEST_CASE("hostile: with nullValues omit, null and empty stay distinct in the JSON", "[unit]") {
  Record r = makeRecord(5);
  r.key = "";
  r.headers = {{"n", std::nullopt}, {"e", ""}};
  Batch batch;
  batch.records = {r};
  const std::string json = encodeLambdaKafkaEvent(batch, "b", kOmitNulls);
  // An empty key is "", a null value is absent (as AWS), a null header value is null.
  CHECK(json.find(R"("key":"","headers":[{"n":null},{"e":[]}]})") != std::string::npos);
  CHECK(json.find("\"value\"") == std::string::npos);
  CHECK(predictedSize(batch, "b", kOmitNulls) == json.size());
}

TEST_CASE("hostile: by default a tombstone is an empty value and a null header value []",
          "[unit]") {
  Record r = makeRecord(6);
  r.headers = {{"n", std::nullopt}, {"e", ""}};
  Batch batch;
  batch.records = {r};
  const std::string json = encodeLambdaKafkaEvent(batch, "b");
  // No key (null keys are left out, as AWS does); powertools' KafkaEvent, parser model and
  // ConsumerRecords need a "value" string and byte-array header values.
  CHECK(json.find(R"("timestampType":"CREATE_TIME","value":"","headers":[{"n":[]},{"e":[]}]})") !=
        std::string::npos);
  CHECK(json.find("\"key\"") == std::string::npos);
  CHECK(predictedSize(batch, "b") == json.size());
  const auto got = samplefn::parseLambdaKafkaEvent(json);
  REQUIRE(got.size() == 1);
  CHECK(got[0].value == std::optional<std::string>(""));
  REQUIRE(got[0].headers.size() == 2);
  CHECK(got[0].headers[0].value == std::optional<std::string>(""));
}

TEST_CASE("hostile: header values are signed bytes, as AWS (Java) sends them", "[unit]") {
  Record r = makeRecord(7);
  r.value = "v";
  r.headers = {{"e", "\xc3\xab"}, {"edges", bytes({0x00, 0x7f, 0x80, 0x9c, 0xff})}};
  Batch batch;
  batch.records = {r};
  const std::string json = encodeLambdaKafkaEvent(batch, "b");
  CHECK(json.find(R"("headers":[{"e":[-61,-85]},{"edges":[0,127,-128,-100,-1]}]})") !=
        std::string::npos);
  CHECK(predictedSize(batch, "b") == json.size());
}

TEST_CASE("hostile: the header key rule is lossless on random bytes", "[unit]") {
  auto seed = GENERATE(range(1, 21));
  std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
  // Bytes biased toward what is hard: lead and continuation bytes, EE BE/BF, NUL, '"', '\'.
  const std::string interesting = bytes({0x00, 0x22, 0x5c, 0x7f, 0x80, 0xbe, 0xbf, 0xc0, 0xc2, 0xc3,
                                         0xdf, 0xe0, 0xed, 0xee, 0xef, 0xf0, 0xf4, 0xf5, 0xff});
  Record r = makeRecord(1);
  for (int h = 0; h < 50; ++h) {
    std::string key;
    const std::size_t n = rng() % 12;
    for (std::size_t i = 0; i < n; ++i) {
      key.push_back(rng() % 2 ? interesting[rng() % interesting.size()]
                              : static_cast<char>(rng() & 0xff));
    }
    r.headers.push_back({key, std::nullopt});
  }
  Batch batch;
  batch.records = {r};
  CAPTURE(seed);
  requireExactRoundTrip(batch);
}

TEST_CASE("hostile: jsonStringBytes inverts the rule and leaves other text alone", "[unit]") {
  struct Case {
    std::string decoded;
    std::string bytes;
  };
  auto c = GENERATE(Case{"plain", "plain"}, Case{"caf\xc3\xa9", "caf\xc3\xa9"},
                    Case{"\xee\xbe\x80", "\x80"},         // U+EF80
                    Case{"\xee\xbf\xbf", "\xff"},         // U+EFFF
                    Case{"\xee\xbd\xbf", "\xee\xbd\xbf"}, // U+EF7F: not reserved
                    Case{"\xef\x80\x80", "\xef\x80\x80"}, // U+F000: not reserved
                    Case{"a\xee\xbf\xbe", "a\xfe"},       // U+EFFE
                    Case{"\xee\xbe", "\xee\xbe"});        // truncated: left as is
  CHECK(jsonStringBytes(c.decoded) == c.bytes);
}

TEST_CASE("hostile: 1 MiB records against the 6 MiB cap: the sizes are exact", "[unit]") {
  // The batcher cuts on encodedRecordSize(); with 1 MiB values (about 1.4 MB of base64)
  // four records fit under 6 MiB and five do not, and the prediction is exact to the byte
  // on both sides of the cap.
  constexpr std::size_t kCap = 6 * 1024 * 1024;
  const std::string big = allByteValues(1 << 20);
  Batch batch;
  std::size_t predicted =
      encodedEnvelopeOverhead("b:9092") + encodedPartitionOverhead("hostile", Partition{0});
  for (int i = 0; i < 5; ++i) {
    Record r = makeRecord(i);
    r.key = "k";
    r.value = big;
    r.headers = {{"h", "v"}};
    predicted += encodedRecordSize(r);
    batch.records.push_back(r);
    const std::string json = encodeLambdaKafkaEvent(batch, "b:9092");
    CAPTURE(i);
    CHECK(json.size() == predicted);
    CHECK((json.size() <= kCap) == (i < 4));
  }
  // The record that would cross the cap by one byte: fill a batch of four up to exactly
  // the cap with a fifth record whose header key takes the remaining bytes.
  batch.records.resize(4);
  const std::size_t four = encodeLambdaKafkaEvent(batch, "b:9092").size();
  Record filler = makeRecord(4);
  filler.headers = {{"", "x"}};
  const std::size_t base = encodedRecordSize(filler);
  REQUIRE(four + base <= kCap);
  filler.headers[0].key = std::string(kCap - four - base, 'f');
  batch.records.push_back(filler);
  CHECK(encodeLambdaKafkaEvent(batch, "b:9092").size() == kCap);
  batch.records.back().headers[0].key.push_back('f');
  CHECK(encodeLambdaKafkaEvent(batch, "b:9092").size() == kCap + 1);
}
