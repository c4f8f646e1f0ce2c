// The bounds on what reading a config may cost: file size, alias expansion, list lengths and
// the compiled size of filters. Each row: the file and its one exact diagnostic.

#include "config/config.h"
#include "kafka/kafka.h"
#include "rule_case.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

using namespace kesm::config;
using namespace kesm::config::test;

namespace {

// "[prefix0, prefix1, ...]" with n items.
std::string flowList(const std::string& prefix, std::size_t n) {
  std::string out = "[";
  for (std::size_t i = 0; i < n; ++i) {
    out += (i ? ", " : "") + prefix + std::to_string(i);
  }
  return out + "]";
}

std::string repeat(const std::string& text, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += text;
  }
  return out;
}

// One mapping; `source` and `more` are spliced in. Line 3 is the source map.
std::string mapping(const std::string& source, const std::string& more = "") {
  return "mappings:\n"
         "  - name: orders\n"
         "    source: " +
         source +
         "\n"
         "    function: {url: 'http://fn:8080/'}\n" +
         more;
}

// `levels` anchors, each a map of four aliases of the one before: 4^levels leaves.
std::string aliasBomb(int levels) {
  std::string out = "          a0: &a0 {x: [1], y: [2], z: [3], w: [4]}\n";
  for (int i = 1; i <= levels; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    out += "          a" + std::to_string(i) + ": &a" + std::to_string(i) + " {p: " + prev +
           ", q: " + prev + ", r: " + prev + ", s: " + prev + "}\n";
  }
  return out;
}

const std::string kFilterHead = "    filters:\n"
                                "      - value:\n"; // lines 5 and 6; the bomb starts at 7

} // namespace

TEST_CASE("bounds: each limit is one exact diagnostic", "[unit]") {
  std::string many_mappings = "mappings:\n";
  for (std::size_t i = 0; i <= kMaxMappings; ++i) {
    many_mappings += "  - {name: m" + std::to_string(i) +
                     ", source: {bootstrapServers: k:9092, topics: [t]}, function: {url: "
                     "'http://fn:8080/'}}\n";
  }
  std::string many_settings = "{bootstrapServers: k:9092, topics: [t], librdkafka: {";
  for (std::size_t i = 0; i <= kMaxLibrdkafkaSettings; ++i) {
    many_settings += (i ? ", " : "") + std::string("k") + std::to_string(i) + ": 1";
  }
  many_settings += "}}";
  auto c = GENERATE_COPY(from_range(std::vector<RuleCase>{
      {.rule = "topics",
       .yaml = mapping("{bootstrapServers: k:9092, topics: " + flowList("t", kMaxTopics + 1) + "}"),
       .key = "mappings[0].source.topics",
       .line = 3,
       .column = 48,
       .message = "holds at most 1000 topics, got 1001"},
      {.rule = "bootstrap servers",
       .yaml = mapping(
           "{topics: [t], bootstrapServers: " + flowList("k:", kMaxBootstrapServers + 1) + "}"),
       .key = "mappings[0].source.bootstrapServers",
       .line = 3,
       .column = 45,
       .message = "holds at most 100 servers, got 101"},
      {.rule = "librdkafka settings",
       .yaml = mapping(many_settings),
       .key = "mappings[0].source.librdkafka",
       .line = 3,
       .column = 65,
       .message = "holds at most 300 settings, got 301"},
      {.rule = "mappings",
       .yaml = many_mappings,
       .key = "mappings",
       .line = 2,
       .column = 3,
       .message = "holds at most 100 mappings (run another kesm for more), got 101"},
      {.rule = "aliases of aliases inside one filter pattern (4^12 leaves): refused at the "
               "alias that passes the bound, before any node is walked",
       .yaml = mapping("{bootstrapServers: k:9092, topics: [t]}", kFilterHead + aliasBomb(12)),
       .key = "",
       .line = 14, // the third alias of a7
       .column = 39,
       .message = "this alias expands the file past 250000 values or 4 MiB of text (each use of "
                  "an alias counts as a copy of what it names); write the values out, or nest "
                  "fewer aliases"},
      {.rule = "a smaller alias bomb (4^6 leaves) passes the file bound, not the filters' one",
       .yaml = mapping("{bootstrapServers: k:9092, topics: [t]}", kFilterHead + aliasBomb(6)),
       // Where the budget ran out: a copy of a1, whose position is where a1 was written.
       .key = "mappings[0].filters[0].value.a5.r.q.q.q",
       .line = 8,
       .column = 15,
       .message = "the filters of a mapping hold at most 10000 maps, fields, values and matchers "
                  "in all, each use of a YAML alias counted as a copy; these hold more"},
      {.rule = "one long text aliased many times counts its bytes each time",
       .yaml = "big: &big '" + std::string(100000, 'x') + "'\nlist: [" +
               [] {
                 std::string aliases;
                 for (int i = 0; i < 50; ++i) {
                   aliases += (i ? ", " : "") + std::string("*big");
                 }
                 return aliases;
               }() +
               "]\n",
       .key = "",
       .line = 2,
       .column = 248, // the 41st alias: 42 copies of 100000 bytes pass 4 MiB
       .message = "this alias expands the file past 250000 values or 4 MiB of text (each use of "
                  "an alias counts as a copy of what it names); write the values out, or nest "
                  "fewer aliases"},
      {.rule = "more values than any config holds, without an alias",
       .yaml = "x: [" + repeat("1,", 260000) + "1]\n",
       .key = "",
       .line = 1,
       .column = 499999, // the 249998th item: 3 values before the items
       .message = "the file holds more than 250000 values or 4 MiB of text, the most kesm reads"},
  }));
  auto started = std::chrono::steady_clock::now();
  checkRule(c);
  auto took = std::chrono::steady_clock::now() - started;
  // Bounded work: well under the seconds an unbounded walk of these would take.
  CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("bounds: a file over 1 MiB is refused where it passes the limit", "[unit]") {
  std::string text = "# " + std::string(100, 'x') + "\n";
  while (text.size() <= kMaxConfigBytes) {
    text += text;
  }
  auto diagnostics = diagnosticsOf(text);
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].toString() ==
        "kesm.yaml:10181:37: the file is larger than 1 MiB (1048576 bytes), the most kesm reads; "
        "it passes the limit here");
}

TEST_CASE("bounds: loadConfigFile reads at most 1 MiB of a device that never ends", "[unit]") {
  auto started = std::chrono::steady_clock::now();
  try {
    loadConfigFile("/dev/zero", kesm::kafka::checkSetting);
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) == "/dev/zero:1:1048577: the file is larger than 1 MiB "
                                   "(1048576 bytes), the most kesm reads; it passes the limit "
                                   "here");
  }
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
}

TEST_CASE("bounds: at most 100 diagnostics are listed, then how many more", "[unit]") {
  std::string yaml = "mappings:\n  - name: orders\n";
  for (int i = 0; i < 150; ++i) {
    yaml += "    k" + std::to_string(i) + ": 1\n";
  }
  auto diagnostics = diagnosticsOf(yaml);
  REQUIRE(diagnostics.size() == kMaxDiagnostics + 1);
  CHECK(diagnostics[0].line == 2); // the first in file order are kept
  CHECK(diagnostics.back().toString() == "kesm.yaml: and 52 more errors not shown");
}
