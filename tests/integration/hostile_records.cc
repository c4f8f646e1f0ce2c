#include "hostile_records.h"

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>

namespace kesm::test {

namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) {
    out.push_back(static_cast<char>(v));
  }
  return out;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

} // namespace

std::string allByteValues(std::size_t size) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    out[i] = static_cast<char>(i % 256);
  }
  return out;
}

std::string describe(const std::optional<std::string>& s) {
  if (!s) {
    return "null";
  }
  if (s->size() > 64) {
    return std::to_string(s->size()) + " bytes";
  }
  std::ostringstream out;
  out << '"';
  for (char c : *s) {
    auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b < 0x7f && b != '\\' && b != '"') {
      out << c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out << "\\x" << kHex[b >> 4] << kHex[b & 0xf];
    }
  }
  out << '"';
  return out.str();
}

std::vector<Hostile> hostileRecords() {
  const std::string not_utf8 = bytes({0xff, 0xfe, 0x80, 0xc0, 0x00, 0xc3, 0x28, 0xed, 0xa0, 0x80,
                                      0xf4, 0x90, 0x80, 0x80, 0xe2, 0x82});
  std::vector<Hostile> out;
  out.push_back({.what = "empty value", .key = "k-empty-value", .value = ""});
  out.push_back({.what = "null value (tombstone)", .key = "k-null-value", .value = std::nullopt});
  out.push_back({.what = "null key", .key = std::nullopt, .value = "v-null-key"});
  out.push_back({.what = "empty key", .key = "", .value = "v-empty-key"});
  out.push_back({.what = "null key and null value", .key = std::nullopt, .value = std::nullopt});
  out.push_back({.what = "empty key and empty value", .key = "", .value = ""});
  out.push_back({.what = "1 MiB value of all byte values",
                 .key = "big",
                 .value = allByteValues(1024 * 1024),
                 .headers = {{"h", "v"}}});
  out.push_back({.what = "non-UTF-8 key and value", .key = not_utf8, .value = not_utf8});
  out.push_back({.what = "non-UTF-8 header names",
                 .key = "k",
                 .value = "v",
                 .headers = {{bytes({0xff, 0xfe}), "lone bytes"},
                             {bytes({0x80, 0xc0, 0xc3, 0x28}), "stray continuation, bad pair"},
                             {bytes({0xed, 0xa0, 0x80}), "a UTF-16 surrogate in UTF-8"},
                             {bytes({0xf4, 0x90, 0x80, 0x80}), "above U+10FFFF"},
                             {"caf\xc3\xa9 \xf0\x9f\x98\x80", "valid UTF-8 stays as is"},
                             {"\xee\xbe\x80\xee\xbf\xbf", "the reserved U+EF80..U+EFFF"},
                             {"\\uef80", "the escape's own spelling"}}});
  out.push_back({.what = "header values with NUL, 0xff, null and empty",
                 .key = "k",
                 .value = "v",
                 .headers = {{"nul", bytes({0x00})},
                             {"binary", bytes({0x00, 0xff, 0x00, 0xfe, 0x80, 0x7f})},
                             {"null", std::nullopt},
                             {"empty", ""},
                             {"all", allByteValues(256)}}});
  Hostile many{.what = "100 headers, duplicate names kept in order", .key = "k", .value = "v"};
  for (int i = 0; i < 100; ++i) {
    std::string name = i % 10 == 9 ? "dup" : "h-" + std::to_string(i);
    std::optional<std::string> value;
    if (i % 7 != 3) {
      value = std::to_string(i) + bytes({0x00, 0xff & (i * 37)});
    }
    many.headers.push_back({name, value});
  }
  out.push_back(many);
  out.push_back(
      {.what = "quotes, backslashes and control characters",
       .key = "\"key\" \\ \n\t\r\b\f" + bytes({0x01, 0x1f, 0x7f}),
       .value = "{\"json\":\"in\\\"side\"}\r\n\\u0000" + bytes({0x00, 0x1b}),
       .headers = {{"q\"b\\s\n\t" + bytes({0x01, 0x1f, 0x7f}), "\"\\\n"}, {"</script>", "\\\\"}}});
  // librdkafka's consumer API returns header names as C strings (rd_kafka_header_get_all
  // gives no name length), so a name is read up to its first NUL byte. Documented in
  // docs/architecture.md; this record pins the behaviour.
  out.push_back({.what = "NUL inside a header name",
                 .key = "k",
                 .value = "v",
                 .headers = {{std::string("nul\0tail", 8), "x"}, {std::string("\0", 1), "y"}},
                 .expected_headers = {{"nul", "x"}, {"", "y"}}});
  return out;
}

void checkHostileRecordsArrive(const std::string& bootstrap, const std::string& topic,
                               const std::function<ConfigYaml(const std::string&)>& make_config,
                               Nulls nulls) {
  const std::vector<Hostile> sent = hostileRecords();
  {
    // librdkafka refuses records above message.max.bytes (1,000,000) by default.
    app::Producer producer(bootstrap, {{"message.max.bytes", "4000000"}});
    for (const Hostile& h : sent) {
      producer.produce(topic, 0, h.key, h.value, h.headers);
    }
    producer.flush(60s);
  }

  std::mutex mutex;
  std::map<std::int64_t, samplefn::ReceivedRecord> first_delivery;
  std::vector<std::int64_t> arrival_order;
  samplefn::SampleFunctionOptions fn;
  fn.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    std::lock_guard lock(mutex);
    for (const auto& r : batch) {
      arrival_order.push_back(r.offset);
      first_delivery.try_emplace(r.offset, r);
    }
  };
  samplefn::SampleFunction function(fn);

  ConfigYaml config = make_config(function.url());
  if (nulls == Nulls::kOmit) {
    for (auto& m : config.mappings) {
      m.function.set("nullValues", "omit");
    }
  }
  const std::string yaml = config.str();
  const std::string config_path = writeTempFile("hostile.yaml", yaml);
  const std::string log_path = writeTempFile("hostile.log", "");
  {
    KesmProcess kesm({"run", "--config", config_path}, log_path);
    const bool all = waitUntil(60s, [&] {
      std::lock_guard lock(mutex);
      return first_delivery.size() == sent.size();
    });
    INFO("kesm log:\n" << readFile(log_path));
    REQUIRE(all);
    kesm.signal(SIGTERM);
    CHECK(kesm.wait(30s) == 0);
  }

  // Every body was strict JSON of valid UTF-8: a body the reader rejects is answered 400,
  // counted as a failure, and retried by kesm.
  CHECK(function.stats().failures == 0);

  std::lock_guard lock(mutex);
  // In offset order: first deliveries come 0, 1, 2, ... (a retry may repeat a prefix).
  std::int64_t next = 0;
  for (std::int64_t offset : arrival_order) {
    INFO("offset " << offset << " arrived when " << next << " was expected next");
    REQUIRE(offset <= next);
    next = std::max(next, offset + 1);
  }
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const Hostile& h = sent[i];
    const samplefn::ReceivedRecord& got = first_delivery.at(static_cast<std::int64_t>(i));
    INFO("offset " << i << ": " << h.what);
    CHECK(got.topic == topic);
    CHECK(got.partition == 0);
    CHECK(got.timestamp_ms > 0);
    INFO("key sent " << describe(h.key) << ", got " << describe(got.key));
    CHECK(got.key == h.key);
    // By default Kafka's nulls arrive as empty ones (invoker/payload.h, EventFormat).
    const auto expected = [&](const std::optional<std::string>& v) {
      return nulls == Nulls::kDefault && !v ? std::optional<std::string>("") : v;
    };
    INFO("value sent " << describe(h.value) << ", got " << describe(got.value));
    CHECK(got.value == expected(h.value));
    std::vector<Header> want = h.expected_headers.empty() ? h.headers : h.expected_headers;
    for (Header& header : want) {
      header.value = expected(header.value);
    }
    REQUIRE(got.headers.size() == want.size());
    for (std::size_t k = 0; k < want.size(); ++k) {
      INFO("header " << k << ": name sent " << describe(want[k].key) << ", got "
                     << describe(got.headers[k].key) << "; value sent " << describe(want[k].value)
                     << ", got " << describe(got.headers[k].value));
      CHECK(got.headers[k].key == want[k].key);
      CHECK(got.headers[k].value == want[k].value);
    }
  }
}

} // namespace kesm::test
