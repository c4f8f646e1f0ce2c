// config/yaml_diagnostics.h: the reading and wording shared by the config parser and the
// filter compiler, tested on its own.

#include "config/config.h"
#include "config/yaml_diagnostics.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>
#include <yaml-cpp/yaml.h>

using namespace kesm::config;
using namespace kesm::config::detail;

namespace {

bool neverNumber(const YAML::Node&) { return false; }

std::string lowerCase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

} // namespace

TEST_CASE("yaml diagnostics: quoteText cuts, marks the cut and escapes control bytes", "[unit]") {
  CHECK(quoteText("abc", 3) == "'abc'");
  CHECK(quoteText("abcd", 3) == "'abc...'");
  CHECK(quoteText(std::string("a\0b\x7f", 4), 10) == "'a\\x00b\\x7f'");
  CHECK(quoteText("", 3) == "''");
}

TEST_CASE("yaml diagnostics: the config shows numbers as written, text up to 60 characters",
          "[unit]") {
  CHECK(quote("-2.5e3") == "-2.5e3");
  CHECK(quote("5x") == "'5x'");
  const std::string sixty(60, 'x');
  CHECK(quote(sixty) == "'" + sixty + "'");
  CHECK(quote(sixty + "y") == "'" + sixty + "...'");
  // A quoted number is still shown as a number: the config reads "100" as 100.
  CHECK(describe(YAML::Load("\"100\"")) == "100");
  CHECK(describe(YAML::Load("''")) == "an empty string");
  CHECK(describe(YAML::Load("~")) == "an empty value");
  CHECK(describe(YAML::Load("[1]")) == "a list");
  CHECK(describe(YAML::Load("{a: 1}")) == "a map");
  CHECK(describe(YAML::Node()) == "an empty value");
  CHECK(describeNode(YAML::Load("7"), Quoting{10, neverNumber}) == "'7'");
}

TEST_CASE("yaml diagnostics: positions are 1-based, with fallbacks for empty values", "[unit]") {
  const YAML::Node root = YAML::Load("a:\n  b: 1\n  c:\n");
  const Pos a = posOf(root["a"], kFileStart);
  CHECK(a.line == 2);
  CHECK(a.column == 3);
  CHECK(posOf(YAML::Node(YAML::NodeType::Undefined), Pos{7, 8}).line == 7);
  // c's value is empty: yaml-cpp would mark where the next token starts.
  const Pos c = valuePos(root["a"]["c"], Pos{3, 3});
  CHECK(c.line == 3);
  CHECK(c.column == 3);
  CHECK(joinPath("", "a") == "a");
  CHECK(joinPath("a", "b") == "a.b");
  CHECK(indexPath("a", 2) == "a[2]");
  CHECK(joinNames({"x", "y", "z"}) == "x, y, z");
}

TEST_CASE("yaml diagnostics: nearestName takes the nearest within the limit", "[unit]") {
  const std::vector<std::string_view> known{"batchSize", "maximumBatchingWindow"};
  CHECK(nearestName("bacthSize", known, 3, lowerCase) == "batchSize");
  CHECK(nearestName("BATCHSIZE", known, 3, lowerCase) == "batchSize");
  CHECK(nearestName("batch", known, 3, lowerCase).empty());
}

TEST_CASE("yaml diagnostics: the Reporter sorts by position and caps the list", "[unit]") {
  Reporter reporter("kesm.yaml");
  reporter.add(Pos{3, 1}, "b", "second");
  reporter.add(Pos{1, 5}, "a", "first");
  reporter.add(Pos{3, 1}, "c", "third, same place as the second");
  try {
    reporter.raise();
    FAIL("raise() returned");
  } catch (const ConfigError& e) {
    REQUIRE(e.diagnostics().size() == 3);
    CHECK(e.diagnostics()[0].rule == "first");
    CHECK(e.diagnostics()[1].rule == "second");
    CHECK(e.diagnostics()[2].rule == "third, same place as the second");
  }
  Reporter many("kesm.yaml");
  for (std::size_t i = 0; i < kMaxDiagnostics + 5; ++i) {
    many.add(Pos{static_cast<int>(i) + 1, 1}, "", "rule");
  }
  try {
    many.raise();
    FAIL("raise() returned");
  } catch (const ConfigError& e) {
    REQUIRE(e.diagnostics().size() == kMaxDiagnostics + 1);
    CHECK(e.diagnostics().back().toString() == "kesm.yaml: and 5 more errors not shown");
  }
}

TEST_CASE("yaml diagnostics: typed readers leave the value when the rule is broken", "[unit]") {
  const YAML::Node root = YAML::Load("n: 12\nbig: 99999999999\nx: 1.5\nd: 5\nb: yes\n");
  Reporter reporter("kesm.yaml");
  auto fields = entriesOf(reporter, root, "s", kFileStart);
  REQUIRE(fields.size() == 5);
  int n = 0;
  CHECK(readInt(reporter, &fields[0], 1, 100, n));
  CHECK(n == 12);
  CHECK_FALSE(readInt(reporter, &fields[1], 1, 100, n));
  CHECK(n == 12);
  double x = 0;
  readNumber(reporter, &fields[2], 0, 1, x);
  CHECK(x == 0);
  Millis d{7};
  CHECK_FALSE(
      readDuration(reporter, &fields[3], DurationRange{Millis{0}, Millis{10}, "0", "10ms"}, d));
  CHECK(d == Millis{7});
  bool b = false;
  readBool(reporter, &fields[4], b);
  CHECK_FALSE(b);
  CHECK_FALSE(readInt(reporter, nullptr, 1, 100, n)); // absent: nothing reported
  try {
    reporter.raise();
  } catch (const ConfigError& e) {
    REQUIRE(e.diagnostics().size() == 4);
    CHECK(e.diagnostics()[0].toString() == "kesm.yaml:2:6: s.big: must be an integer from 1 to "
                                           "100, got 99999999999");
    CHECK(e.diagnostics()[1].toString() ==
          "kesm.yaml:3:4: s.x: must be a number from 0 to 1, got 1.5");
    CHECK(e.diagnostics()[2].toString() ==
          "kesm.yaml:4:4: s.d: a duration needs a unit: ms, s, m or h (for example 30s), got 5");
    CHECK(e.diagnostics()[3].toString() == "kesm.yaml:5:4: s.b: must be true or false, got 'yes'");
  }
}
