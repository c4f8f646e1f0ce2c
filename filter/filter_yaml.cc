#include "filter/filter_yaml.h"

#include "config/yaml_diagnostics.h"
#include "filter/pattern.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

namespace kesm::filter {

namespace {

using detail::Matcher;
using detail::MatcherKind;
using detail::PatternNode;

// ---- Positions, paths and messages (config/yaml_diagnostics.h) --------------------------------

using config::detail::indexPath;
using config::detail::joinNames;
using config::detail::Pos;
using config::detail::posOf;
using config::detail::valuePos;

constexpr std::size_t kMaxQuoted = 40; // characters of found text a message shows

std::string quote(std::string_view text) { return config::detail::quoteText(text, kMaxQuoted); }

// A plain scalar that reads as a number is shown as written; quoted, it is text ("5").
bool shownAsNumber(const YAML::Node& scalar) {
  return scalar.Tag() != "!" && detail::parseNumber(scalar.Scalar()).has_value();
}

std::string describe(const YAML::Node& node) {
  static const config::detail::Quoting kQuoting{kMaxQuoted, shownAsNumber};
  return config::detail::describeNode(node, kQuoting);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    } else if (c == '_') {
      c = '-'; // equals_ignore_case is a near miss of equals-ignore-case
    }
  }
  return out;
}

// The known name closest to `name` (ignoring case, '_' for '-'), or empty when none is near.
std::string_view closest(std::string_view name, const std::vector<std::string_view>& known) {
  if (name.size() > 64) {
    return {};
  }
  return config::detail::nearestName(name, known, std::max<std::size_t>(3, name.size() / 3) + 1,
                                     lower);
}

const std::vector<std::string_view> kMatchers{"prefix",       "suffix",  "equals-ignore-case",
                                              "anything-but", "numeric", "exists"};
// EventBridge has these too; AWS Lambda's event filtering does not.
const std::vector<std::string_view> kUnsupportedMatchers{"wildcard", "cidr"};
const std::vector<std::string_view> kAnythingButMatchers{"prefix", "suffix", "equals-ignore-case"};
const std::vector<std::string_view> kNumericOperators{"=", "<", "<=", ">", ">="};

bool isMatcherName(std::string_view name) {
  return std::find(kMatchers.begin(), kMatchers.end(), name) != kMatchers.end();
}

// ---- Scalars ----------------------------------------------------------------------------------

// A scalar or null node read the way JSON reads a value: quoted text is a string; plain
// null, ~ or nothing is null; plain true/false a boolean; a plain decimal number a number;
// any other plain text a string, so YAML's [iPhone] means ["iPhone"].
struct Scalar {
  enum class Kind { kNull, kBool, kNumber, kString };
  Kind kind = Kind::kNull;
  bool boolean = false;
  double number = 0;
  std::string text;
};

Scalar readScalar(const YAML::Node& node) {
  Scalar s;
  if (!node.IsScalar()) {
    return s;
  }
  s.text = node.Scalar();
  const std::string& tag = node.Tag();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") { // quoted, block or tagged text
    s.kind = Scalar::Kind::kString;
    return s;
  }
  if (s.text == "true" || s.text == "True" || s.text == "TRUE" || s.text == "false" ||
      s.text == "False" || s.text == "FALSE") {
    s.kind = Scalar::Kind::kBool;
    s.boolean = s.text[0] == 't' || s.text[0] == 'T';
    return s;
  }
  const std::string word = lower(s.text);
  if (word == ".inf" || word == "+.inf" || word == "-.inf" || word == ".nan") {
    s.kind = Scalar::Kind::kNumber; // YAML's infinities and NaN: numbers, but not finite
    s.number = word == ".nan" ? NAN : word[0] == '-' ? -INFINITY : INFINITY;
    return s;
  }
  if (auto number = detail::parseNumber(s.text)) {
    s.kind = Scalar::Kind::kNumber;
    s.number = *number;
    return s;
  }
  s.kind = Scalar::Kind::kString;
  return s;
}

// ---- The compiler -----------------------------------------------------------------------------

class Compiler {
public:
  explicit Compiler(std::vector<FilterError>& errors) : errors_(errors) {}

  std::optional<PatternNode> pattern(const YAML::Node& node, const std::string& path, Pos pos) {
    if (!node.IsMap()) {
      std::string rule = "a pattern must be a map, like {\"value\": {\"type\": [\"order\"]}}";
      if (node.IsScalar() && node.Scalar().find('{') != std::string::npos) {
        rule += "; this is a string: write the pattern's JSON without quotes around it (YAML "
                "reads JSON as it is)";
      } else {
        rule += ", got " + describe(node);
      }
      error(pos, path, rule);
      return std::nullopt;
    }
    PatternNode out;
    if (!mapNode(node, path, pos, 1, Level::kRecord, out)) {
      return std::nullopt;
    }
    return out;
  }

private:
  // The top map of a pattern names parts of the record (only `value`); maps below it name
  // members of a JSON object.
  enum class Level { kRecord, kObject };

  void error(Pos pos, std::string key, std::string rule) {
    errors_.push_back(FilterError{pos.line, pos.column, std::move(key), std::move(rule)});
  }

  // Counts one element of the compiled filters. False once the budget is spent: the caller
  // stops there, so the walk ends soon after, however the aliases nest.
  bool charge(Pos pos, const std::string& path) {
    if (elements_ < kMaxFilterElements) {
      ++elements_;
      return true;
    }
    if (!exhausted_) {
      exhausted_ = true;
      error(pos, path,
            "the filters of a mapping hold at most " + std::to_string(kMaxFilterElements) +
                " maps, fields, values and matchers in all, each use of a YAML alias counted "
                "as a copy; these hold more");
    }
    return false;
  }

  bool mapNode(const YAML::Node& map, const std::string& path, Pos pos, std::size_t depth,
               Level level, PatternNode& out) {
    if (!charge(pos, path)) {
      return false;
    }
    if (depth > kMaxPatternDepth) {
      error(pos, path,
            "nested too deeply: a pattern holds at most " + std::to_string(kMaxPatternDepth) +
                " levels of maps (each map below a field and each $or alternative is one)");
      return false;
    }
    if (map.size() == 0) {
      error(pos, path,
            level == Level::kRecord
                ? "an empty pattern; name the record's value, like {\"value\": {\"type\": "
                  "[\"order\"]}} (leave filters out to deliver every record)"
                : "an empty map names no field; name one, like {\"type\": [\"order\"]}");
      return false;
    }
    bool ok = true;
    std::map<std::string, int> seen; // name -> line
    for (auto it = map.begin(); it != map.end(); ++it) {
      // Copies, not references: it-> returns a temporary proxy.
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      const Pos key_pos = posOf(key, pos);
      if (!key.IsScalar()) {
        error(key_pos, path, "a key must be a field name, got " + describe(key) + " as a key");
        ok = false;
        continue;
      }
      const std::string& name = key.Scalar();
      const std::string field_path = path + "." + name;
      if (auto [first, inserted] = seen.emplace(name, key_pos.line); !inserted) {
        error(key_pos, field_path,
              "appears more than once in the same map (first at line " +
                  std::to_string(first->second) + ")");
        ok = false;
        continue;
      }
      // yaml-cpp gives an empty value no position of its own: point at its key.
      const Pos value_pos = valuePos(value, key_pos);
      if (name == "$or") {
        ok = orList(value, field_path, value_pos, depth, level, out.any_of) && ok;
        continue;
      }
      if (name == "<<") {
        error(key_pos, field_path, "YAML merge keys ('<<') are not supported; write the keys out");
        ok = false;
        continue;
      }
      if (level == Level::kRecord && name != "value") {
        error(key_pos, field_path, recordKeyRule(name));
        ok = false;
        continue;
      }
      ok = field(name, value, field_path, value_pos, depth, out) && ok;
    }
    return ok;
  }

  static std::string recordKeyRule(std::string_view name) {
    const std::string allowed = "the keys allowed at the top of a pattern are value and $or";
    const std::string word = lower(name);
    if (word == "pattern" || word == "filters") {
      return "unknown key: write the pattern itself as the list entry, not AWS's "
             "{\"Pattern\": \"...\"} wrapper; " +
             allowed;
    }
    if (word == "key" || word == "headers" || word == "topic" || word == "partition" ||
        word == "offset" || word == "timestamp" || word == "timestamptype") {
      return "unknown key: kesm, like AWS Lambda, filters Kafka records on their value only; " +
             allowed;
    }
    if (!closest(name, {"value"}).empty()) {
      return "unknown key, did you mean 'value'? (" + allowed + ")";
    }
    return "unknown key; " + allowed + ": the fields of a JSON value go under value, like " +
           "{\"value\": {\"" + std::string(name) + "\": [...]}}";
  }

  bool orList(const YAML::Node& value, const std::string& path, Pos pos, std::size_t depth,
              Level level, std::vector<PatternNode>& out) {
    const char* shape = "$or must be a list of at least two patterns (maps), like "
                        "[{\"type\": [\"order\"]}, {\"amount\": [{\"numeric\": [\">\", 100]}]}]";
    if (!value.IsSequence()) {
      error(pos, path, std::string(shape) + ", got " + describe(value));
      return false;
    }
    if (value.size() < 2) {
      error(pos, path,
            std::string(shape) + (value.size() == 1
                                      ? "; with one alternative, write its fields in place of "
                                        "the $or"
                                      : ""));
      return false;
    }
    if (value.size() > kMaxMatchers) {
      error(pos, path,
            "$or holds at most " + std::to_string(kMaxMatchers) + " alternatives, this one " +
                std::to_string(value.size()));
      return false;
    }
    bool ok = true;
    for (std::size_t i = 0; i < value.size(); ++i) {
      const YAML::Node item = value[i];
      const std::string item_path = indexPath(path, i);
      const Pos item_pos = posOf(item, pos);
      if (!item.IsMap()) {
        error(item_pos, item_path,
              "an alternative of $or must be a map of fields, got " + describe(item));
        ok = false;
        continue;
      }
      PatternNode alternative;
      if (mapNode(item, item_path, item_pos, depth + 1, level, alternative)) {
        out.push_back(std::move(alternative));
      } else {
        ok = false;
      }
    }
    return ok;
  }

  // One field of a pattern map: a nested map, or a list of values and matchers.
  bool field(const std::string& name, const YAML::Node& value, const std::string& path, Pos pos,
             std::size_t depth, PatternNode& out) {
    if (!charge(pos, path)) {
      return false;
    }
    if (value.IsMap()) {
      if (auto matcher_name = misplacedMatcher(value)) {
        error(posOf(value.begin()->first, pos), path + "." + *matcher_name,
              "'" + *matcher_name + "' is a matcher, and a matcher goes in the list of a " +
                  "field, like " + name + ": [{\"" + *matcher_name + "\": ...}]");
        return false;
      }
      PatternNode nested;
      if (!mapNode(value, path, pos, depth + 1, Level::kObject, nested)) {
        return false;
      }
      PatternNode::Field f{name, {}, {}};
      f.nested.push_back(std::move(nested));
      out.fields.push_back(std::move(f));
      return true;
    }
    if (!value.IsSequence()) {
      std::string rule =
          "must be a list of values or matchers, like [\"x\"], got " + describe(value);
      if (value.IsScalar() && value.Scalar().size() <= 40 &&
          value.Scalar().find_first_of("\"\\\n") == std::string::npos) {
        // As written: [5] is the number, ["5"] the text.
        const bool quoted = value.Tag() == "!";
        rule += " (write [" + std::string(quoted ? "\"" : "") + value.Scalar() +
                (quoted ? "\"" : "") + "] to match it)";
      }
      error(pos, path, rule);
      return false;
    }
    std::vector<Matcher> matchers;
    if (!matcherList(value, path, pos, matchers)) {
      return false;
    }
    out.fields.push_back(PatternNode::Field{name, std::move(matchers), {}});
    return true;
  }

  // The name of the matcher when `map` is a matcher written without the list around it,
  // like price: {"prefix": "x"}. A field named like a matcher holds a list or a map, never a
  // string; a field anything-but, a field numeric holding an operator first, and a field
  // prefix or suffix holding equals-ignore-case are taken for the mistake too.
  static std::optional<std::string> misplacedMatcher(const YAML::Node& map) {
    if (map.size() != 1) {
      return std::nullopt;
    }
    const YAML::Node key = map.begin()->first;
    const YAML::Node value = map.begin()->second;
    if (!key.IsScalar() || !isMatcherName(key.Scalar())) {
      return std::nullopt;
    }
    const std::string& name = key.Scalar();
    const bool ignore_case = value.IsMap() && value.size() == 1 &&
                             value.begin()->first.IsScalar() &&
                             value.begin()->first.Scalar() == "equals-ignore-case";
    if (name == "anything-but" || (!value.IsMap() && !value.IsSequence()) ||
        (name == "numeric" && looksLikeNumericMatcher(map)) ||
        ((name == "prefix" || name == "suffix") && ignore_case)) {
      return name;
    }
    return std::nullopt;
  }

  // {"numeric": [">", 0]} written without the list around it.
  static bool looksLikeNumericMatcher(const YAML::Node& map) {
    const YAML::Node list = map["numeric"];
    if (map.size() != 1 || !list.IsSequence() || list.size() == 0 || !list[0].IsScalar()) {
      return false;
    }
    const std::string& op = list[0].Scalar();
    return std::find(kNumericOperators.begin(), kNumericOperators.end(), op) !=
           kNumericOperators.end();
  }

  bool matcherList(const YAML::Node& list, const std::string& path, Pos pos,
                   std::vector<Matcher>& out) {
    if (list.size() == 0) {
      error(pos, path,
            "an empty list matches nothing; list at least one value or matcher, like [\"x\"]");
      return false;
    }
    if (list.size() > kMaxMatchers) {
      error(pos, path,
            "a field's list holds at most " + std::to_string(kMaxMatchers) +
                " values or matchers, this one " + std::to_string(list.size()));
      return false;
    }
    bool ok = true;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const YAML::Node item = list[i];
      const std::string item_path = indexPath(path, i);
      const Pos item_pos = posOf(item, pos);
      if (!charge(item_pos, item_path)) {
        return false;
      }
      if (item.IsMap()) {
        if (auto m = matcher(item, item_path, item_pos)) {
          out.push_back(std::move(*m));
        } else {
          ok = false;
        }
        continue;
      }
      if (item.IsSequence()) {
        error(item_pos, item_path,
              "a list in a field's list is neither a value nor a matcher; write its items in "
              "the outer list");
        ok = false;
        continue;
      }
      if (auto m = exactValue(item, item_path, item_pos)) {
        out.push_back(std::move(*m));
      } else {
        ok = false;
      }
    }
    return ok;
  }

  // "x", 300, true or null.
  std::optional<Matcher> exactValue(const YAML::Node& node, const std::string& path, Pos pos) {
    const Scalar s = readScalar(node);
    Matcher m;
    switch (s.kind) {
    case Scalar::Kind::kNull:
      m.kind = MatcherKind::kNull;
      break;
    case Scalar::Kind::kBool:
      m.kind = MatcherKind::kBoolean;
      m.flag = s.boolean;
      break;
    case Scalar::Kind::kNumber:
      if (!finite(s, path, pos)) {
        return std::nullopt;
      }
      m.kind = MatcherKind::kNumber;
      m.number = s.number;
      break;
    case Scalar::Kind::kString:
      m.kind = MatcherKind::kString;
      m.text = s.text;
      break;
    }
    return m;
  }

  bool finite(const Scalar& s, const std::string& path, Pos pos) {
    if (std::isfinite(s.number)) {
      return true;
    }
    error(pos, path, "numbers must be finite, got " + s.text);
    return false;
  }

  std::optional<Matcher> matcher(const YAML::Node& map, const std::string& path, Pos pos) {
    if (map.size() != 1) {
      error(pos, path,
            map.size() == 0
                ? "an empty map is not a matcher; the matchers are " + joinNames(kMatchers)
                : "a matcher is a map with one key, like {\"prefix\": \"x\"}; this one has " +
                      std::to_string(map.size()) + ": list them as separate matchers");
      return std::nullopt;
    }
    const auto it = map.begin();
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const Pos key_pos = posOf(key, pos);
    if (!key.IsScalar()) {
      error(key_pos, path, "a matcher's key must be its name, got " + describe(key));
      return std::nullopt;
    }
    const std::string& name = key.Scalar();
    const std::string key_path = path + "." + name;
    const Pos value_pos = valuePos(value, key_pos);
    Matcher m;
    if (name == "prefix" || name == "suffix") {
      const bool prefix = name == "prefix";
      if (value.IsMap()) {
        auto text = ignoreCaseText(value, key_path, value_pos);
        if (!text) {
          return std::nullopt;
        }
        m.kind = prefix ? MatcherKind::kPrefixIgnoreCase : MatcherKind::kSuffixIgnoreCase;
        m.text = detail::foldCase(*text);
        return m;
      }
      auto text =
          stringValue(value, key_path, value_pos, "a string, or {\"equals-ignore-case\": \"...\"}");
      if (!text) {
        return std::nullopt;
      }
      m.kind = prefix ? MatcherKind::kPrefix : MatcherKind::kSuffix;
      m.text = std::move(*text);
      return m;
    }
    if (name == "equals-ignore-case") {
      auto text = stringValue(value, key_path, value_pos, "a string");
      if (!text) {
        return std::nullopt;
      }
      m.kind = MatcherKind::kEqualsIgnoreCase;
      m.text = detail::foldCase(*text);
      return m;
    }
    if (name == "exists") {
      const Scalar s = readScalar(value);
      if (s.kind != Scalar::Kind::kBool) {
        error(value_pos, key_path, "must be true or false, got " + describe(value));
        return std::nullopt;
      }
      m.kind = MatcherKind::kExists;
      m.flag = s.boolean;
      return m;
    }
    if (name == "numeric") {
      if (!numeric(value, key_path, value_pos, m)) {
        return std::nullopt;
      }
      return m;
    }
    if (name == "anything-but") {
      if (!anythingBut(value, key_path, value_pos, m)) {
        return std::nullopt;
      }
      return m;
    }
    if (std::find(kUnsupportedMatchers.begin(), kUnsupportedMatchers.end(), name) !=
        kUnsupportedMatchers.end()) {
      error(key_pos, key_path,
            "'" + name +
                "' is an EventBridge matcher that AWS Lambda's event filtering, and kesm, do "
                "not support; the matchers are " +
                joinNames(kMatchers));
      return std::nullopt;
    }
    error(key_pos, key_path, unknownRule("matcher", name, kMatchers));
    return std::nullopt;
  }

  static std::string unknownRule(std::string_view what, std::string_view name,
                                 const std::vector<std::string_view>& known) {
    const std::string_view best = closest(name, known);
    std::string rule = "unknown " + std::string(what) + " " + quote(name);
    if (!best.empty()) {
      rule += ", did you mean '" + std::string(best) + "'?";
    }
    return rule + " (known: " + joinNames(known) + ")";
  }

  std::optional<std::string> stringValue(const YAML::Node& node, const std::string& path, Pos pos,
                                         std::string_view expected) {
    const Scalar s = readScalar(node);
    if (s.kind == Scalar::Kind::kString) {
      return s.text;
    }
    std::string rule = "must be " + std::string(expected) + ", got " + describe(node);
    if (s.kind == Scalar::Kind::kNumber || s.kind == Scalar::Kind::kBool) {
      rule += " (a " + std::string(s.kind == Scalar::Kind::kBool ? "boolean" : "number") +
              "; quote it, \"" + s.text + "\", to mean the text)";
    }
    error(pos, path, rule);
    return std::nullopt;
  }

  // {"equals-ignore-case": "x"} under prefix or suffix.
  std::optional<std::string> ignoreCaseText(const YAML::Node& map, const std::string& path,
                                            Pos pos) {
    if (map.size() != 1) {
      error(pos, path, "must be a string, or a map with the one key equals-ignore-case");
      return std::nullopt;
    }
    const auto it = map.begin();
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const Pos key_pos = posOf(key, pos);
    const std::string name = key.IsScalar() ? key.Scalar() : std::string();
    if (name != "equals-ignore-case") {
      error(key_pos, path + "." + name,
            unknownRule("option", name, {"equals-ignore-case"}) +
                "; prefix and suffix take a string or {\"equals-ignore-case\": \"...\"}");
      return std::nullopt;
    }
    return stringValue(value, path + "." + name, valuePos(value, key_pos), "a string");
  }

  // ["<", 10], [">=", 0, "<", 5], ["=", 3].
  bool numeric(const YAML::Node& list, const std::string& path, Pos pos, Matcher& m) {
    const char* shape = "numeric takes an operator and a number, or two of each, like "
                        "[\">=\", 0, \"<\", 5]; the operators are =, <, <=, >, >=";
    if (!list.IsSequence() || (list.size() != 2 && list.size() != 4)) {
      error(pos, path,
            std::string(shape) + ", got " + describe(list) +
                (list.IsSequence() ? " of " + std::to_string(list.size()) : ""));
      return false;
    }
    m.kind = MatcherKind::kNumeric;
    bool ok = true;
    for (std::size_t i = 0; i + 1 < list.size(); i += 2) {
      const YAML::Node op_node = list[i];
      const YAML::Node number_node = list[i + 1];
      const Pos op_pos = posOf(op_node, pos);
      const Pos number_pos = posOf(number_node, op_pos);
      const std::string op = op_node.IsScalar() ? op_node.Scalar() : std::string();
      if (std::find(kNumericOperators.begin(), kNumericOperators.end(), op) ==
          kNumericOperators.end()) {
        error(op_pos, indexPath(path, i),
              "unknown operator " + describe(op_node) + "; the operators are =, <, <=, >, >=");
        ok = false;
        continue;
      }
      const Scalar number = readScalar(number_node);
      if (number.kind != Scalar::Kind::kNumber) {
        error(number_pos, indexPath(path, i + 1),
              "must be a number, got " + describe(number_node) +
                  (number.kind == Scalar::Kind::kString && detail::parseNumber(number.text)
                       ? " (a quoted string; write the number without quotes)"
                       : ""));
        ok = false;
        continue;
      }
      if (!finite(number, indexPath(path, i + 1), number_pos)) {
        ok = false;
        continue;
      }
      if (op == "=") {
        if (list.size() != 2) {
          error(op_pos, indexPath(path, i), "'=' stands alone, like [\"=\", 3]");
          ok = false;
          continue;
        }
        m.lower = m.upper = number.number;
        m.lower_inclusive = m.upper_inclusive = true;
        continue;
      }
      const bool is_lower = op[0] == '>';
      std::optional<double>& bound = is_lower ? m.lower : m.upper;
      if (bound) {
        error(op_pos, indexPath(path, i),
              std::string("a second ") + (is_lower ? "lower" : "upper") +
                  " bound; a range has at most one lower (> or >=) and one upper (< or <=)");
        ok = false;
        continue;
      }
      bound = number.number;
      (is_lower ? m.lower_inclusive : m.upper_inclusive) = op.size() == 2;
      if (m.lower && m.upper && !(*m.lower < *m.upper)) {
        error(number_pos, indexPath(path, i + 1),
              "the lower bound must be below the upper bound, got lower " +
                  readScalar(list[is_lower ? i + 1 : i - 1]).text + " and upper " +
                  readScalar(list[is_lower ? i - 1 : i + 1]).text);
        ok = false;
      }
    }
    return ok;
  }

  // "x", 5, a list of only strings or only numbers, or {"prefix" | "suffix" |
  // "equals-ignore-case": "x"}.
  bool anythingBut(const YAML::Node& value, const std::string& path, Pos pos, Matcher& m) {
    const char* shape = "anything-but takes a string, a number, a list of only strings or only "
                        "numbers, or {\"prefix\" | \"suffix\" | \"equals-ignore-case\": \"x\"}";
    m.kind = MatcherKind::kAnythingBut;
    if (value.IsMap()) {
      if (value.size() != 1) {
        error(pos, path, std::string(shape) + ", got a map of " + std::to_string(value.size()));
        return false;
      }
      const auto it = value.begin();
      const YAML::Node key = it->first;
      const YAML::Node text_node = it->second;
      const Pos key_pos = posOf(key, pos);
      const std::string name = key.IsScalar() ? key.Scalar() : std::string();
      const std::string key_path = path + "." + name;
      if (std::find(kAnythingButMatchers.begin(), kAnythingButMatchers.end(), name) ==
          kAnythingButMatchers.end()) {
        error(key_pos, key_path,
              unknownRule("anything-but option", name, kAnythingButMatchers) +
                  (name == "wildcard" ? "; wildcard is not supported" : ""));
        return false;
      }
      auto text = stringValue(text_node, key_path, valuePos(text_node, key_pos), "a string");
      if (!text) {
        return false;
      }
      Matcher excluded;
      excluded.kind = name == "prefix"   ? MatcherKind::kPrefix
                      : name == "suffix" ? MatcherKind::kSuffix
                                         : MatcherKind::kEqualsIgnoreCase;
      excluded.text = name == "equals-ignore-case" ? detail::foldCase(*text) : std::move(*text);
      m.excluded.push_back(std::move(excluded));
      return true;
    }
    if (value.IsSequence()) {
      if (value.size() == 0 || value.size() > kMaxMatchers) {
        error(pos, path,
              value.size() == 0
                  ? "anything-but's list is empty; list at least one value"
                  : "anything-but's list holds at most " + std::to_string(kMaxMatchers) +
                        " values, this one " + std::to_string(value.size()));
        return false;
      }
      bool ok = true;
      std::optional<Scalar::Kind> list_kind;
      for (std::size_t i = 0; i < value.size(); ++i) {
        const YAML::Node item = value[i];
        const Pos item_pos = posOf(item, pos);
        if (!charge(item_pos, indexPath(path, i))) {
          return false;
        }
        const Scalar s = readScalar(item);
        if (!item.IsScalar() ||
            (s.kind != Scalar::Kind::kString && s.kind != Scalar::Kind::kNumber)) {
          error(item_pos, indexPath(path, i),
                "anything-but's list holds only strings or only numbers, got " + describe(item));
          ok = false;
          continue;
        }
        if (list_kind && *list_kind != s.kind) {
          error(item_pos, indexPath(path, i),
                std::string("anything-but's list holds only strings or only numbers; this ") +
                    (s.kind == Scalar::Kind::kString ? "string" : "number") + " follows a " +
                    (*list_kind == Scalar::Kind::kString ? "string" : "number"));
          ok = false;
          continue;
        }
        list_kind = s.kind;
        if (auto excluded = exactValue(item, indexPath(path, i), item_pos)) {
          m.excluded.push_back(std::move(*excluded));
        } else {
          ok = false;
        }
      }
      return ok;
    }
    const Scalar s = readScalar(value);
    if (s.kind != Scalar::Kind::kString && s.kind != Scalar::Kind::kNumber) {
      error(pos, path, std::string(shape) + ", got " + describe(value));
      return false;
    }
    auto excluded = exactValue(value, path, pos);
    if (!excluded) {
      return false;
    }
    m.excluded.push_back(std::move(*excluded));
    return true;
  }

  std::vector<FilterError>& errors_;
  std::size_t elements_ = 0;
  bool exhausted_ = false;
};

} // namespace

std::shared_ptr<const Filters> compileFilters(const YAML::Node& list, const std::string& path,
                                              std::vector<FilterError>& errors) {
  const std::size_t errors_before = errors.size();
  // yaml-cpp marks an empty value where the next token starts: no position for it.
  const Pos list_pos = list.IsNull() ? Pos{} : posOf(list, Pos{});
  auto fail = [&](std::string rule) {
    errors.push_back(FilterError{list_pos.line, list_pos.column, path, std::move(rule)});
    return nullptr;
  };
  if (list.IsMap()) {
    return fail(list["Filters"] || list["filters"]
                    ? "must be a list of patterns: write the patterns themselves, one list "
                      "entry each, not AWS's FilterCriteria {\"Filters\": [{\"Pattern\": ...}]}"
                    : "must be a list of patterns: put '- ' before the pattern (a record "
                      "passes when it matches any pattern of the list)");
  }
  if (!list.IsSequence()) {
    return fail("must be a list of patterns, like - {\"value\": {\"type\": [\"order\"]}}, got " +
                describe(list));
  }
  if (list.size() == 0) {
    return fail("an empty list would drop every record; list at least one pattern, or leave "
                "filters out to deliver every record");
  }
  if (list.size() > kMaxPatterns) {
    fail("at most " + std::to_string(kMaxPatterns) + " patterns per mapping, this list has " +
         std::to_string(list.size()) + " (merge patterns with $or)");
  }
  Compiler compiler(errors);
  std::vector<PatternNode> patterns;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const YAML::Node entry = list[i];
    if (auto pattern = compiler.pattern(entry, indexPath(path, i), posOf(entry, list_pos))) {
      patterns.push_back(std::move(*pattern));
    }
  }
  if (errors.size() != errors_before) {
    return nullptr;
  }
  return std::make_shared<const Filters>(std::move(patterns));
}

} // namespace kesm::filter
