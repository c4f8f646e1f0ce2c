// parseConfig judges the librdkafka map with the SettingValidator it is given (config/ does
// not link librdkafka; kafka::checkSetting is the real one). A fake one shows where its
// refusals land and what it is asked.

#include "config/config.h"

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace kesm::config;

namespace {

const std::string kHead = "mappings:\n"
                          "  - name: orders\n"
                          "    source:\n"
                          "      bootstrapServers: k:9092\n"
                          "      topics: [t]\n"
                          "      librdkafka:\n";
const std::string kTail = "    function: {url: http://fn:8080/}\n";

using Settings = std::vector<std::pair<std::string, std::string>>;

// Refuses the name "no.such", and any value "bad" with `value_reason`; records what it saw.
SettingValidator fake(Settings& asked, std::string value_reason) {
  return [&asked, value_reason](const std::string& name,
                                const std::string& value) -> std::optional<SettingRefusal> {
    asked.emplace_back(name, value);
    if (name == "no.such") {
      return SettingRefusal{SettingRefusal::Part::kName, "No such configuration property"};
    }
    if (value == "bad") {
      return SettingRefusal{SettingRefusal::Part::kValue, value_reason};
    }
    return std::nullopt;
  };
}

std::vector<Diagnostic> diagnosticsOf(const std::string& settings, const SettingValidator& v) {
  try {
    parseConfig(kHead + settings + kTail, "kesm.yaml", v);
  } catch (const ConfigError& e) {
    return e.diagnostics();
  }
  return {};
}

} // namespace

TEST_CASE("setting validator: an unknown name is reported at the key", "[unit]") {
  Settings asked;
  auto d = diagnosticsOf("        fetch.max.bytes: 1048576\n        no.such: 5\n", fake(asked, ""));
  REQUIRE(d.size() == 1);
  CHECK(d[0].toString() == "kesm.yaml:8:9: mappings[0].source.librdkafka.no.such: librdkafka "
                           "refuses it: No such configuration property");
}

TEST_CASE("setting validator: a refused value is reported at the value, and shown", "[unit]") {
  Settings asked;
  auto d = diagnosticsOf("        socket.timeout.ms: bad\n", fake(asked, "Invalid value"));
  REQUIRE(d.size() == 1);
  CHECK(d[0].line == 7);
  CHECK(d[0].column == 28);
  CHECK(d[0].rule == "librdkafka refuses it: Invalid value, got 'bad'");
  // A reason that already quotes the value is not followed by it again.
  d = diagnosticsOf("        socket.timeout.ms: bad\n", fake(asked, "Invalid value \"bad\""));
  REQUIRE(d.size() == 1);
  CHECK(d[0].rule == "librdkafka refuses it: Invalid value \"bad\"");
}

TEST_CASE("setting validator: asked about each setting as written, reserved ones never", "[unit]") {
  Settings asked;
  const Config config = parseConfig(kHead +
                                        "        fetch.max.bytes: 1048576\n"
                                        "        client.rack: \"r1\"\n"
                                        "        enable.partition.eof: true\n" +
                                        kTail,
                                    "kesm.yaml", fake(asked, ""));
  const Settings expected{
      {"fetch.max.bytes", "1048576"}, {"client.rack", "r1"}, {"enable.partition.eof", "true"}};
  CHECK(asked == expected);
  CHECK(config.mappings.at(0).source.librdkafka == expected);

  asked.clear();
  auto d = diagnosticsOf("        group.id: mine\n        fetch.max.bytes: [1]\n", fake(asked, ""));
  CHECK(d.size() == 2);
  CHECK(asked.empty()); // kesm's own rule, and a list, come first
}

TEST_CASE("setting validator: a refused setting is left out, the others kept", "[unit]") {
  Settings asked;
  auto d = diagnosticsOf("        a.b: bad\n        c.d: good\n", fake(asked, "x"));
  REQUIRE(d.size() == 1);
  CHECK(asked.size() == 2); // every setting is judged, not only the first refused
}

TEST_CASE("setting validator: parseConfig refuses to run without one", "[unit]") {
  CHECK_THROWS_AS(parseConfig(kHead + "        a.b: c\n" + kTail, "kesm.yaml", SettingValidator{}),
                  std::invalid_argument);
}
