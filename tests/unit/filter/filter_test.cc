// Record filtering: AWS Lambda's FilterCriteria patterns (EventBridge syntax) on Kafka record
// values, and the config errors of the patterns (docs/filtering.md). The matching cases follow
// the rows of AWS's filter rule table (null, empty, equals, ..., $or) with records of our own.

#include "filter/filter.h"
#include "filter/filter_yaml.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>
#include <yaml-cpp/yaml.h>

using kesm::filter::FilterError;
using kesm::filter::Filters;

namespace {

enum class Outcome { kPass, kDrop };
constexpr Outcome kPass = Outcome::kPass;
constexpr Outcome kDrop = Outcome::kDrop;
// A record whose value is null (a tombstone on a compacted topic).
const std::optional<std::string> kTombstone;

struct RecordCase {
  const char* name;
  std::optional<std::string> value; // the record's value bytes; kTombstone for null
  Outcome outcome;
};

std::string show(const std::vector<FilterError>& errors) {
  std::ostringstream out;
  for (const auto& e : errors) {
    out << e.line << ":" << e.column << ": " << e.key << ": " << e.rule << "\n";
  }
  return out.str();
}

// Compiles a `filters:` list written in YAML (or JSON, which is YAML too).
std::shared_ptr<const Filters> compile(const std::string& list_yaml) {
  std::vector<FilterError> errors;
  auto filters = kesm::filter::compileFilters(YAML::Load(list_yaml), "filters", errors);
  INFO(show(errors));
  REQUIRE(errors.empty());
  REQUIRE(filters != nullptr);
  return filters;
}

kesm::Record record(std::optional<std::string> value) {
  kesm::Record r;
  r.topic = "orders";
  r.value = std::move(value);
  return r;
}

// 1-based line and column of the first occurrence of `at` in `text`.
std::pair<int, int> positionOf(const std::string& text, const std::string& at) {
  const std::size_t offset = text.find(at);
  REQUIRE(offset != std::string::npos);
  const std::size_t line_start = text.rfind('\n', offset);
  const int column =
      static_cast<int>(line_start == std::string::npos ? offset + 1 : offset - line_start);
  const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + offset, '\n'));
  return {line, column};
}

// One pattern against each record of the table.
void expectOutcomes(const std::string& pattern, const std::vector<RecordCase>& cases) {
  const auto filters = compile("[" + pattern + "]");
  for (const auto& c : cases) {
    INFO("pattern " << pattern);
    INFO("record: " << c.name << ", value " << (c.value ? *c.value : std::string("null")));
    CHECK((filters->matches(record(c.value)) ? kPass : kDrop) == c.outcome);
  }
}

// The errors of a `filters:` list; `document` holds it under the key filters.
std::vector<FilterError> errorsOf(const std::string& document) {
  std::vector<FilterError> errors;
  const YAML::Node root = YAML::Load(document);
  const auto filters = kesm::filter::compileFilters(root["filters"], "filters", errors);
  CHECK((filters == nullptr) == !errors.empty());
  return errors;
}

} // namespace

// ---- AWS's comparison operators -----------------------------------------------------------------

TEST_CASE("filter: null matches a JSON null, not an absent field or an empty string", "[unit]") {
  expectOutcomes(R"({"value": {"user_id": [null]}})",
                 {
                     {"null", R"({"user_id": null})", kPass},
                     {"the string null", R"({"user_id": "null"})", kDrop},
                     {"empty string", R"({"user_id": ""})", kDrop},
                     {"absent", R"({"name": "x"})", kDrop},
                 });
}

TEST_CASE("filter: an empty string matches an empty string only", "[unit]") {
  expectOutcomes(R"({"value": {"last_name": [""]}})",
                 {
                     {"empty", R"({"last_name": ""})", kPass},
                     {"null", R"({"last_name": null})", kDrop},
                     {"a space", R"({"last_name": " "})", kDrop},
                     {"absent", R"({})", kDrop},
                 });
}

TEST_CASE("filter: equals is exact and typed", "[unit]") {
  expectOutcomes(R"({"value": {"city": ["Lyon"], "paid": [true]}})",
                 {
                     {"both equal", R"({"city": "Lyon", "paid": true})", kPass},
                     {"other case", R"({"city": "lyon", "paid": true})", kDrop},
                     {"the string true", R"({"city": "Lyon", "paid": "true"})", kDrop},
                     {"false", R"({"city": "Lyon", "paid": false})", kDrop},
                 });
  // Numbers compare as numbers, never as text.
  expectOutcomes(R"({"value": {"amount": [300]}})",
                 {
                     {"300", R"({"amount": 300})", kPass},
                     {"300.0", R"({"amount": 300.0})", kPass},
                     {"3e2", R"({"amount": 3e2})", kPass},
                     {"3000e-1", R"({"amount": 3000e-1})", kPass},
                     {"the string 300", R"({"amount": "300"})", kDrop},
                     {"301", R"({"amount": 301})", kDrop},
                 });
  expectOutcomes(R"({"value": {"amount": ["300"]}})",
                 {
                     {"the string", R"({"amount": "300"})", kPass},
                     {"the number", R"({"amount": 300})", kDrop},
                 });
}

TEST_CASE("filter: equals-ignore-case folds letters of several scripts", "[unit]") {
  expectOutcomes(R"({"value": {"name": [{"equals-ignore-case": "Alice"}]}})",
                 {
                     {"same", R"({"name": "Alice"})", kPass},
                     {"upper", R"({"name": "ALICE"})", kPass},
                     {"mixed", R"({"name": "aLiCe"})", kPass},
                     {"longer", R"({"name": "Alice2"})", kDrop},
                     {"not a string", R"({"name": 5})", kDrop},
                 });
  expectOutcomes(R"({"value": {"w": [{"equals-ignore-case": "ÉTÉ ÇA Ÿ ĀĹ ΣΟΦΊΑ МОСКВА Ёж"}]}})",
                 {
                     {"folded", R"({"w": "été ça ÿ āĺ σοφία москва ёж"})", kPass},
                     {"a letter differs", R"({"w": "ete ça ÿ āĺ σοφία москва ёж"})", kDrop},
                 });
}

TEST_CASE("filter: fields are ANDed, a field's list is ORed", "[unit]") {
  expectOutcomes(R"({"value": {"city": ["Lyon"], "day": ["Monday"]}})",
                 {
                     {"both", R"({"city": "Lyon", "day": "Monday"})", kPass},
                     {"one", R"({"city": "Lyon", "day": "Tuesday"})", kDrop},
                     {"one absent", R"({"city": "Lyon"})", kDrop},
                 });
  expectOutcomes(R"({"value": {"payment": ["credit", "debit"]}})",
                 {
                     {"first", R"({"payment": "credit"})", kPass},
                     {"second", R"({"payment": "debit"})", kPass},
                     {"neither", R"({"payment": "cash"})", kDrop},
                 });
}

TEST_CASE("filter: anything-but (AWS's not)", "[unit]") {
  expectOutcomes(R"({"value": {"weather": [{"anything-but": ["rain", "snow"]}]}})",
                 {
                     {"other", R"({"weather": "sun"})", kPass},
                     {"listed", R"({"weather": "snow"})", kDrop},
                     // anything-but needs the field: an absent one does not match.
                     {"absent", R"({})", kDrop},
                     {"a number is not one of the strings", R"({"weather": 5})", kPass},
                     {"null is not one of the strings", R"({"weather": null})", kPass},
                     {"an object has no value to compare", R"({"weather": {"a": 1}})", kDrop},
                 });
  expectOutcomes(R"({"value": {"limit": [{"anything-but": 100}]}})",
                 {
                     {"100", R"({"limit": 100})", kDrop},
                     {"100.0", R"({"limit": 1e2})", kDrop},
                     {"101", R"({"limit": 101})", kPass},
                 });
  expectOutcomes(R"({"value": {"region": [{"anything-but": {"prefix": "us-"}}]}})",
                 {
                     {"eu", R"({"region": "eu-west-1"})", kPass},
                     {"us", R"({"region": "us-east-1"})", kDrop},
                 });
  expectOutcomes(R"({"value": {"file": [{"anything-but": {"suffix": ".png"}}]}})",
                 {
                     {"jpg", R"({"file": "a.jpg"})", kPass},
                     {"png", R"({"file": "a.png"})", kDrop},
                 });
  expectOutcomes(R"({"value": {"state": [{"anything-but": {"equals-ignore-case": "init"}}]}})",
                 {
                     {"other", R"({"state": "running"})", kPass},
                     {"other case", R"({"state": "INIT"})", kDrop},
                 });
}

TEST_CASE("filter: numeric equals and ranges", "[unit]") {
  expectOutcomes(R"({"value": {"price": [{"numeric": ["=", 100]}]}})",
                 {
                     {"100", R"({"price": 100})", kPass},
                     {"100.00", R"({"price": 100.00})", kPass},
                     {"101", R"({"price": 101})", kDrop},
                     {"a string", R"({"price": "100"})", kDrop},
                 });
  expectOutcomes(R"({"value": {"price": [{"numeric": [">", 10, "<=", 20]}]}})",
                 {
                     {"the open lower bound", R"({"price": 10})", kDrop},
                     {"inside", R"({"price": 10.5})", kPass},
                     {"the closed upper bound", R"({"price": 20})", kPass},
                     {"above", R"({"price": 20.01})", kDrop},
                     {"negative", R"({"price": -15})", kDrop},
                     {"absent", R"({})", kDrop},
                 });
  expectOutcomes(R"({"value": {"t": [{"numeric": [">=", 0, "<", 5]}]}})",
                 {
                     {"0", R"({"t": 0})", kPass},
                     {"-0", R"({"t": -0})", kPass},
                     {"5", R"({"t": 5})", kDrop},
                 });
  // Beyond the range of a double: infinite, still comparable.
  expectOutcomes(R"({"value": {"n": [{"numeric": [">", 1e300]}]}})",
                 {
                     {"1e400", R"({"n": 1e400})", kPass},
                     {"-1e400", R"({"n": -1e400})", kDrop},
                     {"1e-400", R"({"n": 1e-400})", kDrop},
                 });
}

TEST_CASE("filter: exists asks whether the field is there", "[unit]") {
  // kesm's reading (filter.cc, docs/filtering.md): present with any value, null and objects
  // included. EventBridge only looks at leaf values, so there a field holding an object
  // matches exists:false and not exists:true.
  expectOutcomes(R"({"value": {"customer": {"email": [{"exists": true}]}}})",
                 {
                     {"a string", R"({"customer": {"email": "a@b.c"}})", kPass},
                     {"null", R"({"customer": {"email": null}})", kPass},
                     {"an object", R"({"customer": {"email": {"work": "a@b.c"}}})", kPass},
                     {"absent", R"({"customer": {"phone": "1"}})", kDrop},
                     {"no parent", R"({"order": 1})", kDrop},
                 });
  expectOutcomes(R"({"value": {"customer": {"email": [{"exists": false}]}}})",
                 {
                     {"absent", R"({"customer": {"phone": "1"}})", kPass},
                     {"no parent", R"({"order": 1})", kPass},
                     {"a parent that is no object", R"({"customer": "bob"})", kPass},
                     {"present", R"({"customer": {"email": "a@b.c"}})", kDrop},
                     {"null", R"({"customer": {"email": null}})", kDrop},
                     {"an object", R"({"customer": {"email": {}}})", kDrop},
                 });
}

TEST_CASE("filter: prefix and suffix, also ignoring case", "[unit]") {
  expectOutcomes(R"({"value": {"region": [{"prefix": "us-"}]}})",
                 {
                     {"begins with", R"({"region": "us-east-1"})", kPass},
                     {"exactly", R"({"region": "us-"})", kPass},
                     {"other", R"({"region": "eu-west-1"})", kDrop},
                     {"other case", R"({"region": "US-east-1"})", kDrop},
                     {"a number", R"({"region": 5})", kDrop},
                 });
  expectOutcomes(R"({"value": {"file": [{"suffix": ".png"}]}})",
                 {
                     {"ends with", R"({"file": "cat.png"})", kPass},
                     {"shorter", R"({"file": "png"})", kDrop},
                     {"other", R"({"file": "cat.jpg"})", kDrop},
                 });
  expectOutcomes(R"({"value": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}})",
                 {
                     {"lower", R"({"service": "eventbridge"})", kPass},
                     {"upper", R"({"service": "EVENTBRIDGE"})", kPass},
                     {"other", R"({"service": "events"})", kDrop},
                 });
  expectOutcomes(R"({"value": {"service": [{"suffix": {"equals-ignore-case": "tBridge"}}]}})",
                 {
                     {"upper", R"({"service": "EVENTBRIDGE"})", kPass},
                     {"other", R"({"service": "bridges"})", kDrop},
                     {"after a two-byte character", R"({"service": "\u00e9TBRIDGE"})", kPass},
                     {"ends in a two-byte character", R"({"service": "tbridg\u00e9"})", kDrop},
                     {"shorter", R"({"service": "bridge"})", kDrop},
                 });
}

TEST_CASE("filter: $or, in the value and at the top of a pattern", "[unit]") {
  expectOutcomes(R"({"value": {"$or": [{"city": ["Lyon"]}, {"day": ["Monday"]}]}})",
                 {
                     {"first", R"({"city": "Lyon", "day": "Sunday"})", kPass},
                     {"second", R"({"city": "Rome", "day": "Monday"})", kPass},
                     {"neither", R"({"city": "Rome", "day": "Sunday"})", kDrop},
                 });
  // The other fields of the map still all have to match.
  expectOutcomes(
      R"({"value": {"source": ["shop"],
                               "$or": [{"kind": ["order"]},
                                       {"amount": [{"numeric": [">", 100]}],
                                        "$or": [{"vip": [true]}, {"country": ["FR"]}]}]}})",
      {
          {"source and first", R"({"source": "shop", "kind": "order"})", kPass},
          {"source and nested", R"({"source": "shop", "amount": 200, "vip": true})", kPass},
          {"nested alternative fails", R"({"source": "shop", "amount": 200, "country": "DE"})",
           kDrop},
          {"other source", R"({"source": "pos", "kind": "order"})", kDrop},
      });
  expectOutcomes(R"({"$or": [{"value": {"level": ["error"]}}, {"value": [{"prefix": "ERROR"}]}]})",
                 {
                     {"JSON", R"({"level": "error"})", kPass},
                     {"text", "ERROR: disk full", kPass},
                     {"neither", R"({"level": "info"})", kDrop},
                     {"tombstone", kTombstone, kDrop},
                 });
}

TEST_CASE("filter: a field holding an array matches when an element does", "[unit]") {
  expectOutcomes(R"({"value": {"tags": ["red"]}})",
                 {
                     {"one of several", R"({"tags": ["blue", "red"]})", kPass},
                     {"nested arrays", R"({"tags": [["blue"], ["red"]]})", kPass},
                     {"not among them", R"({"tags": ["blue"]})", kDrop},
                     {"empty", R"({"tags": []})", kDrop},
                 });
  // EventBridge's reading: anything-but matches when any element is not excluded.
  expectOutcomes(R"({"value": {"tags": [{"anything-but": "red"}]}})",
                 {
                     {"another element", R"({"tags": ["red", "blue"]})", kPass},
                     {"only excluded", R"({"tags": ["red", "red"]})", kDrop},
                 });
  // The fields of a map are matched within one element of an array of objects.
  expectOutcomes(R"({"value": {"items": {"sku": ["A"], "qty": [2]}}})",
                 {
                     {"one element has both", R"({"items": [{"sku": "B", "qty": 1},
                                                             {"sku": "A", "qty": 2}]})",
                      kPass},
                     {"split over elements", R"({"items": [{"sku": "A", "qty": 1},
                                                            {"sku": "B", "qty": 2}]})",
                      kDrop},
                     {"an object", R"({"items": {"sku": "A", "qty": 2}})", kPass},
                 });
  // A value that is a JSON array is matched like a field holding one.
  expectOutcomes(R"({"value": {"id": [7]}})",
                 {
                     {"array of objects", R"([{"id": 1}, {"id": 7}])", kPass},
                     {"no element matches", R"([{"id": 1}])", kDrop},
                 });
}

TEST_CASE("filter: a value that is not JSON is matched as text", "[unit]") {
  // AWS's example for plain-string Kafka values.
  expectOutcomes(R"({"value": [{"anything-but": ["error"]}]})",
                 {
                     {"other text", "hello", kPass},
                     {"excluded text", "error", kDrop},
                     {"a JSON string is decoded", R"("error")", kDrop},
                 });
  expectOutcomes(R"({"value": [{"prefix": "ERROR"}]})",
                 {
                     {"log line", "ERROR: disk full", kPass},
                     {"other line", "WARN: disk 91% full", kDrop},
                     {"broken JSON", "ERROR{", kPass},
                     {"looks like JSON, is not", "{ERROR", kDrop},
                     {"a JSON object has no text", R"({"level": "ERROR"})", kDrop},
                 });
  // Whitespace around JSON is JSON; text that starts like a number or a word is text.
  expectOutcomes(R"({"value": [{"prefix": "2026-"}, 12.5, null]})",
                 {
                     {"timestamped line", "2026-01-01T00:00:00Z started", kPass},
                     {"a number", " 12.5\n", kPass},
                     {"null with spaces", "\tnull ", kPass},
                     {"a minus alone", "-", kDrop},
                     {"the word nullable", "nullable", kDrop},
                 });
  expectOutcomes(R"({"value": {"level": ["x"]}})",
                 {
                     {"padded object", "\n {\"level\": \"x\"} \r\n", kPass},
                     {"unclosed object", "{\"level\": \"x\"", kDrop},
                 });
  expectOutcomes(R"({"value": ["true story"]})", {
                                                     {"starts like JSON", "true story", kPass},
                                                 });
  expectOutcomes(R"({"value": [{"suffix": "end"}]})",
                 {
                     {"bytes that are not UTF-8", std::string("\xff\xfe the end"), kPass},
                 });
  // A JSON scalar value is a JSON value: 42 is a number, not the text "42".
  expectOutcomes(R"({"value": [42]})", {
                                           {"number", "42", kPass},
                                           {"text", "42 apples", kDrop},
                                       });
  // A pattern that looks inside the value never matches text, not even exists:false.
  expectOutcomes(R"({"value": {"level": [{"exists": false}]}})",
                 {
                     {"text", "no JSON here", kDrop},
                     {"JSON without the field", R"({"msg": "x"})", kPass},
                     {"tombstone", kTombstone, kDrop},
                 });
  expectOutcomes(R"({"value": [""]})", {
                                           {"empty value", "", kPass},
                                           {"tombstone", kTombstone, kDrop},
                                       });
}

TEST_CASE("filter: a tombstone is null and absent, nothing else", "[unit]") {
  struct Case {
    const char* pattern;
    Outcome tombstone;
    Outcome json_null; // the value is the four bytes null
    Outcome json_object;
  };
  auto c = GENERATE(values<Case>({
      {R"({"value": [null]})", kPass, kPass, kDrop},
      {R"({"value": [{"exists": false}]})", kPass, kDrop, kDrop},
      {R"({"value": [{"exists": true}]})", kDrop, kPass, kPass},
      {R"({"value": [{"anything-but": "x"}]})", kDrop, kPass, kDrop},
      {R"({"value": {"a": [null]}})", kDrop, kDrop, kDrop},
      {R"({"value": {"a": [{"exists": false}]}})", kDrop, kPass, kDrop},
  }));
  expectOutcomes(c.pattern, {
                                {"tombstone", kTombstone, c.tombstone},
                                {"JSON null", "null", c.json_null},
                                {"JSON object", R"({"a": 1})", c.json_object},
                            });
}

TEST_CASE("filter: a record passes when it matches any pattern", "[unit]") {
  const auto filters = compile(R"(
- {"value": {"type": ["order"], "amount": [{"numeric": [">", 100]}]}}
- value:
    status: [{"anything-but": ["test", "canceled"]}]
    device: [iPhone, 'Android']
)");
  CHECK(filters->size() == 2);
  CHECK(filters->matches(record(R"({"type": "order", "amount": 150})")));
  CHECK(filters->matches(record(R"({"status": "new", "device": "iPhone"})")));
  CHECK(filters->matches(record(R"({"status": "new", "device": "Android"})")));
  CHECK_FALSE(filters->matches(record(R"({"type": "order", "amount": 50})")));
  CHECK_FALSE(filters->matches(record(R"({"status": "test", "device": "iPhone"})")));
  CHECK_FALSE(filters->matches(record(kTombstone)));
}

TEST_CASE("filter: plain YAML scalars read as JSON values", "[unit]") {
  // [iPhone] is the string, [300] the number, [true] the boolean, [null] and [~] null; quoted,
  // each is a string.
  const auto filters = compile(R"(
- value:
    a: [iPhone]
    b: [300]
    c: [true]
    d: [null, ~]
    e: ["300", 'true', "null"]
)");
  CHECK(filters->matches(
      record(R"({"a": "iPhone", "b": 300.0, "c": true, "d": null, "e": "null"})")));
  CHECK_FALSE(filters->matches(
      record(R"({"a": "iPhone", "b": "300", "c": true, "d": null, "e": "null"})")));
  CHECK_FALSE(filters->matches(
      record(R"({"a": "iPhone", "b": 300, "c": "true", "d": null, "e": "null"})")));
  CHECK_FALSE(
      filters->matches(record(R"({"a": "iPhone", "b": 300, "c": true, "d": null, "e": 300})")));
}

// ---- Config errors ------------------------------------------------------------------------------

TEST_CASE("filter errors: every rule broken, with line, column and key path", "[unit]") {
  struct Case {
    const char* name;
    std::string document; // holds the list under `filters:`
    const char* at;       // the error points at the first occurrence of this text
    std::string key;
    std::string rule_contains;
  };
  auto c = GENERATE(values<Case>({
      {"a leaf that is not a list", "filters:\n  - {\"value\": {\"type\": \"order\"}}\n",
       "\"order\"", "filters[0].value.type",
       "must be a list of values or matchers, like [\"x\"], got 'order' (write [\"order\"] "
       "to match it)"},
      {"a number that is not in a list", "filters:\n  - value:\n      n: 5\n", "5",
       "filters[0].value.n", "got 5 (write [5] to match it)"},
      {"a matcher without its list", "filters:\n  - value:\n      price: {\"prefix\": \"x\"}\n",
       "\"prefix\"", "filters[0].value.price.prefix",
       "'prefix' is a matcher, and a matcher goes in the list of a field, like price: "
       "[{\"prefix\": ...}]"},
      {"a numeric matcher without its list",
       "filters:\n  - value:\n      price: {\"numeric\": [\">\", 1]}\n", "\"numeric\"",
       "filters[0].value.price.numeric", "'numeric' is a matcher"},
      {"a top-level key other than value", "filters:\n  - {\"key\": [\"a\"]}\n", "\"key\"",
       "filters[0].key", "filters Kafka records on their value only"},
      {"a field of the value at the top", "filters:\n  - {\"type\": [\"order\"]}\n", "\"type\"",
       "filters[0].type",
       "the fields of a JSON value go under value, like {\"value\": {\"type\": [...]}}"},
      {"a typo of value", "filters:\n  - {\"valeu\": [\"a\"]}\n", "\"valeu\"", "filters[0].valeu",
       "did you mean 'value'?"},
      {"AWS's Pattern wrapper", "filters:\n  - Pattern: '{\"value\": {}}'\n", "Pattern",
       "filters[0].Pattern", "not AWS's {\"Pattern\": \"...\"} wrapper"},
      {"a pattern written as a JSON string", "filters:\n  - '{\"value\": {\"a\": [1]}}'\n", "'{",
       "filters[0]", "write the pattern's JSON without quotes"},
      {"an empty pattern", "filters:\n  - {}\n", "{}", "filters[0]", "an empty pattern"},
      {"an empty nested map", "filters:\n  - {\"value\": {}}\n", "{}", "filters[0].value",
       "an empty map names no field"},
      {"an empty list", "filters:\n  - {\"value\": {\"a\": []}}\n", "[]", "filters[0].value.a",
       "an empty list matches nothing"},
      {"a list in the list", "filters:\n  - {\"value\": {\"a\": [[1]]}}\n", "[1]",
       "filters[0].value.a[0]", "a list in a field's list"},
      {"a duplicate field", "filters:\n  - value:\n      a: [1]\n      a: [2]\n", "a: [2]",
       "filters[0].value.a", "appears more than once in the same map (first at line 3)"},
      {"a number quoted in numeric",
       "filters:\n  - {\"value\": {\"n\": [{\"numeric\": [\"<\", \"10\"]}]}}\n", "\"10\"",
       "filters[0].value.n[0].numeric[1]", "write the number without quotes"},
      {"an unknown numeric operator",
       "filters:\n  - {\"value\": {\"n\": [{\"numeric\": [\"=>\", 10]}]}}\n", "\"=>\"",
       "filters[0].value.n[0].numeric[0]", "unknown operator '=>'"},
      {"a range upside down",
       "filters:\n  - {\"value\": {\"n\": [{\"numeric\": [\">\", 5, \"<\", 1]}]}}\n", "1]",
       "filters[0].value.n[0].numeric[3]",
       "the lower bound must be below the upper bound, got lower 5 and upper 1"},
      {"an empty range",
       "filters:\n  - {\"value\": {\"n\": [{\"numeric\": [\"<\", 1, \">=\", 1]}]}}\n", "1]",
       "filters[0].value.n[0].numeric[3]",
       "the lower bound must be below the upper bound, got lower 1 and upper 1"},
      {"two lower bounds",
       "filters:\n  - {\"value\": {\"n\": [{\"numeric\": [\">\", 1, \">=\", 2]}]}}\n", "\">=\"",
       "filters[0].value.n[0].numeric[2]", "a second lower bound"},
      {"= with a bound",
       "filters:\n  - {\"value\": {\"n\": [{\"numeric\": [\"=\", 1, \"<\", 2]}]}}\n", "\"=\"",
       "filters[0].value.n[0].numeric[0]", "'=' stands alone"},
      {"numeric without a number", "filters:\n  - {\"value\": {\"n\": [{\"numeric\": [\">\"]}]}}\n",
       "[\">\"]", "filters[0].value.n[0].numeric", "numeric takes an operator and a number"},
      {"an infinite number", "filters:\n  - {\"value\": {\"n\": [1e400]}}\n", "1e400",
       "filters[0].value.n[0]", "numbers must be finite, got 1e400"},
      {"YAML's infinity", "filters:\n  - {\"value\": {\"n\": [{\"numeric\": [\"<\", .inf]}]}}\n",
       ".inf", "filters[0].value.n[0].numeric[1]", "numbers must be finite, got .inf"},
      {"exists that is not a boolean",
       "filters:\n  - {\"value\": {\"n\": [{\"exists\": \"yes\"}]}}\n", "\"yes\"",
       "filters[0].value.n[0].exists", "must be true or false, got 'yes'"},
      {"prefix of a number", "filters:\n  - {\"value\": {\"n\": [{\"prefix\": 2024}]}}\n", "2024",
       "filters[0].value.n[0].prefix", "quote it, \"2024\", to mean the text"},
      {"anything-but of strings and numbers",
       "filters:\n  - {\"value\": {\"n\": [{\"anything-but\": [\"a\", 1]}]}}\n", "1]",
       "filters[0].value.n[0].anything-but[1]", "only strings or only numbers"},
      {"anything-but of null", "filters:\n  - {\"value\": {\"n\": [{\"anything-but\": null}]}}\n",
       // yaml-cpp's mark of a null is unreliable (an empty value has none): the key, then.
       "\"anything-but\"", "filters[0].value.n[0].anything-but",
       "anything-but takes a string, a number"},
      {"an unknown anything-but option",
       "filters:\n  - {\"value\": {\"n\": [{\"anything-but\": {\"sufix\": \"a\"}}]}}\n",
       "\"sufix\"", "filters[0].value.n[0].anything-but.sufix",
       "unknown anything-but option 'sufix', did you mean 'suffix'?"},
      {"a matcher with two keys",
       "filters:\n  - {\"value\": {\"n\": [{\"prefix\": \"a\", \"suffix\": \"b\"}]}}\n",
       "{\"prefix\"", "filters[0].value.n[0]", "a matcher is a map with one key"},
      {"wildcard", "filters:\n  - {\"value\": {\"n\": [{\"wildcard\": \"*.png\"}]}}\n",
       "\"wildcard\"", "filters[0].value.n[0].wildcard", "do not support"},
      {"$or with one alternative", "filters:\n  - {\"value\": {\"$or\": [{\"a\": [1]}]}}\n", "[{",
       "filters[0].value.$or", "with one alternative, write its fields in place of the $or"},
      {"$or of a non-map", "filters:\n  - {\"value\": {\"$or\": [{\"a\": [1]}, [\"b\"]]}}\n",
       "[\"b\"]", "filters[0].value.$or[1]", "an alternative of $or must be a map"},
      {"filters that is a map", "filters:\n  value: {\"a\": [1]}\n", "value", "filters",
       "put '- ' before the pattern"},
      {"AWS's FilterCriteria", "filters:\n  Filters:\n    - Pattern: '{}'\n", "Filters", "filters",
       "not AWS's FilterCriteria"},
      {"an empty filters list", "filters: []\n", "[]", "filters",
       "an empty list would drop every record"},
  }));
  INFO(c.name);
  const auto errors = errorsOf(c.document);
  INFO(show(errors));
  REQUIRE(errors.size() == 1);
  const auto [line, column] = positionOf(c.document, c.at);
  CHECK(errors[0].line == line);
  CHECK(errors[0].column == column);
  CHECK(errors[0].key == c.key);
  CHECK_THAT(errors[0].rule, Catch::Contains(c.rule_contains));
}

TEST_CASE("filter errors: a filters key with nothing after it", "[unit]") {
  // yaml-cpp gives an empty value no position: the caller knows where its key is.
  const auto errors = errorsOf("filters:\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].line == 0);
  CHECK(errors[0].key == "filters");
  CHECK_THAT(errors[0].rule, Catch::Contains("must be a list of patterns"));
}

TEST_CASE("filter errors: an unknown matcher names the closest one", "[unit]") {
  struct Case {
    const char* written;
    const char* closest;
  };
  auto c = GENERATE(values<Case>({
      {"prefx", "prefix"},
      {"Prefix", "prefix"},
      {"sufix", "suffix"},
      {"equals_ignore_case", "equals-ignore-case"},
      {"equalsIgnoreCase", "equals-ignore-case"},
      {"anythingBut", "anything-but"},
      {"anything-bot", "anything-but"},
      {"numerci", "numeric"},
      {"exist", "exists"},
  }));
  const auto errors = errorsOf(std::string("filters:\n  - {\"value\": {\"n\": [{\"") + c.written +
                               "\": \"x\"}]}}\n");
  INFO(show(errors));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].line == 2);
  CHECK(errors[0].column == 23); // the key
  CHECK(errors[0].key == std::string("filters[0].value.n[0].") + c.written);
  CHECK_THAT(errors[0].rule, Catch::Contains(std::string("unknown matcher '") + c.written +
                                             "', did you mean '" + c.closest + "'?"));
}

TEST_CASE("filter errors: a word close to no matcher lists them all", "[unit]") {
  const auto errors = errorsOf("filters:\n  - {\"value\": {\"n\": [{\"between\": [1, 2]}]}}\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rule == "unknown matcher 'between' (known: prefix, suffix, equals-ignore-case, "
                          "anything-but, numeric, exists)");
}

TEST_CASE("filter errors: the key path starts at the mapping", "[unit]") {
  const YAML::Node root = YAML::Load(R"(mappings:
  - name: orders
    filters:
      - {"value": {"type": ["order"]}}
      - value:
          price: [{"numeric": [">", 100]}, {"prefx": "1"}]
)");
  std::vector<FilterError> errors;
  const auto filters =
      kesm::filter::compileFilters(root["mappings"][0]["filters"], "mappings[0].filters", errors);
  CHECK(filters == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].line == 6);
  CHECK(errors[0].column == 45);
  CHECK(errors[0].key == "mappings[0].filters[1].value.price[1].prefx");
}

TEST_CASE("filter errors: all errors of all patterns are reported at once", "[unit]") {
  const auto errors = errorsOf(R"(filters:
  - {"value": {"a": "x", "b": [{"exists": 1}]}}
  - {"headers": ["x"]}
  - {"value": [{"numeric": ["<", "5"]}]}
)");
  INFO(show(errors));
  REQUIRE(errors.size() == 4);
  CHECK(errors[0].key == "filters[0].value.a");
  CHECK(errors[1].key == "filters[0].value.b[0].exists");
  CHECK(errors[2].key == "filters[1].headers");
  CHECK(errors[3].key == "filters[2].value[0].numeric[1]");
}

TEST_CASE("filter errors: the limits", "[unit]") {
  SECTION("at most 20 patterns") {
    std::string document = "filters:\n";
    for (std::size_t i = 0; i < kesm::filter::kMaxPatterns + 1; ++i) {
      document += "  - {\"value\": [" + std::to_string(i) + "]}\n";
    }
    const auto errors = errorsOf(document);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].line == 2);
    CHECK(errors[0].column == 3);
    CHECK(errors[0].rule == "at most 20 patterns per mapping, this list has 21 (merge patterns "
                            "with $or)");
    std::string twenty = "filters:\n";
    for (std::size_t i = 0; i < kesm::filter::kMaxPatterns; ++i) {
      twenty += "  - {\"value\": [" + std::to_string(i) + "]}\n";
    }
    CHECK(errorsOf(twenty).empty());
  }
  SECTION("at most 100 matchers in a list") {
    auto list = [](std::size_t n) {
      std::string items;
      for (std::size_t i = 0; i < n; ++i) {
        items += (i == 0 ? "" : ", ") + std::to_string(i);
      }
      return "filters:\n  - {\"value\": {\"n\": [" + items + "]}}\n";
    };
    const auto errors = errorsOf(list(kesm::filter::kMaxMatchers + 1));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].key == "filters[0].value.n");
    CHECK(errors[0].column == 21); // the list
    CHECK_THAT(errors[0].rule, Catch::Contains("at most 100 values or matchers, this one 101"));
    CHECK(errorsOf(list(kesm::filter::kMaxMatchers)).empty());
  }
  SECTION("at most 16 levels of maps") {
    auto nested = [](std::size_t maps) {
      // The pattern is the first map, `value` holds the second.
      std::string text = "{\"value\": ";
      for (std::size_t i = 2; i < maps; ++i) {
        text += "{\"f" + std::to_string(i) + "\": ";
      }
      text += "{\"leaf\": [1]}";
      for (std::size_t i = 1; i < maps; ++i) {
        text += "}";
      }
      return "filters:\n  - " + text + "\n";
    };
    CHECK(errorsOf(nested(kesm::filter::kMaxPatternDepth)).empty());
    const auto errors = errorsOf(nested(kesm::filter::kMaxPatternDepth + 1));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].key == "filters[0].value.f2.f3.f4.f5.f6.f7.f8.f9.f10.f11.f12.f13.f14.f15.f16");
    CHECK_THAT(errors[0].rule, Catch::Contains("at most 16 levels of maps"));
  }
}
