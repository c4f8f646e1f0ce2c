// The filter compiler words what it found with config/yaml_diagnostics.h, shared with the
// config parser, but in its own way: found text cut after 40 characters, and a quoted number
// ("5") shown as the text it is. These pin that wording, which the filter had before the
// helpers were shared.

#include "filter/filter_yaml.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>
#include <yaml-cpp/yaml.h>

using kesm::filter::FilterError;

namespace {

// The one error of an `exists` matcher holding `written`.
FilterError existsError(const std::string& written) {
  std::vector<FilterError> errors;
  const YAML::Node root =
      YAML::Load("filters:\n  - {\"value\": {\"n\": [{\"exists\": " + written + "}]}}\n");
  kesm::filter::compileFilters(root["filters"], "filters", errors);
  REQUIRE(errors.size() == 1);
  return errors[0];
}

} // namespace

TEST_CASE("filter messages: found text is cut after 40 characters", "[unit]") {
  const std::string forty(40, 'a');
  CHECK(existsError("\"" + forty + "\"").rule == "must be true or false, got '" + forty + "'");
  CHECK(existsError("\"" + forty + "b\"").rule == "must be true or false, got '" + forty + "...'");
}

TEST_CASE("filter messages: a plain number is shown as written, a quoted one as text", "[unit]") {
  CHECK(existsError("5").rule == "must be true or false, got 5");
  CHECK(existsError("\"5\"").rule == "must be true or false, got '5'");
  CHECK(existsError("-1.5e3").rule == "must be true or false, got -1.5e3");
}

TEST_CASE("filter messages: control characters are escaped, empty values named", "[unit]") {
  CHECK(existsError("\"a\\tb\"").rule == "must be true or false, got 'a\\x09b'");
  CHECK(existsError("\"\"").rule == "must be true or false, got an empty string");
  CHECK(existsError("[]").rule == "must be true or false, got a list");
  CHECK(existsError("{}").rule == "must be true or false, got a map");
}

TEST_CASE("filter messages: a near miss needs fewer edits than a third of the name", "[unit]") {
  std::vector<FilterError> errors;
  // "equals_ignore_casx": '_' counts as '-', one edit from equals-ignore-case.
  const YAML::Node root =
      YAML::Load("filters:\n  - {\"value\": {\"n\": [{\"EQUALS_IGNORE_CASX\": \"x\"}]}}\n");
  kesm::filter::compileFilters(root["filters"], "filters", errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rule == "unknown matcher 'EQUALS_IGNORE_CASX', did you mean "
                          "'equals-ignore-case'? (known: prefix, suffix, equals-ignore-case, "
                          "anything-but, numeric, exists)");
}
