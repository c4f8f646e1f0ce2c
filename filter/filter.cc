#include "filter/filter.h"

#include "common/json.h"
#include "filter/pattern.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>
#include <utility>

namespace kesm::filter {

namespace detail {

namespace {

// The code point at s[i], advancing i past it. A byte that does not start a well-formed
// UTF-8 sequence comes back as 0x110000 + the byte (no code point is that large), alone.
char32_t nextCodePoint(std::string_view s, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned b0 = byte(i);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  std::size_t len = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
    cp = b0 & 0x1f;
    min = 0x80;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    cp = b0 & 0x0f;
    min = 0x800;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  }
  bool ok = len != 0 && i + len <= s.size();
  for (std::size_t k = 1; ok && k < len; ++k) {
    const unsigned b = byte(i + k);
    ok = (b & 0xc0) == 0x80;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (!ok || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    ++i;
    return 0x110000 + b0;
  }
  i += len;
  return cp;
}

// Capital to small letter; each pair has the same UTF-8 length (both below 0x80, or both in
// 0x80-0x7ff).
char32_t foldCodePoint(char32_t c) {
  if (c >= 'A' && c <= 'Z') {
    return c + 0x20;
  }
  if (c < 0xc0) {
    return c;
  }
  if (c <= 0xde) { // Latin-1: À-Þ, but not ×
    return c == 0xd7 ? c : c + 0x20;
  }
  if (c >= 0x100 && c <= 0x17e) { // Latin Extended-A pairs
    const bool capital_even =
        (c <= 0x12f) || (c >= 0x132 && c <= 0x137) || (c >= 0x14a && c <= 0x177);
    const bool capital_odd = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e);
    if (capital_even && c % 2 == 0) {
      return c + 1;
    }
    if (capital_odd && c % 2 == 1) {
      return c + 1;
    }
    return c == 0x178 ? char32_t{0xff} : c; // Ÿ -> ÿ
  }
  if (c >= 0x386 && c <= 0x3ab) { // Greek capitals
    if (c == 0x386) {
      return 0x3ac;
    }
    if (c >= 0x388 && c <= 0x38a) {
      return c + 0x25;
    }
    if (c == 0x38c) {
      return 0x3cc;
    }
    if (c == 0x38e || c == 0x38f) {
      return c + 0x3f;
    }
    if (c >= 0x391 && c != 0x3a2) {
      return c + 0x20;
    }
    return c;
  }
  if (c == 0x3c2) { // final sigma
    return 0x3c3;
  }
  if (c >= 0x400 && c <= 0x40f) { // Cyrillic Ѐ-Џ
    return c + 0x50;
  }
  if (c >= 0x410 && c <= 0x42f) { // Cyrillic А-Я
    return c + 0x20;
  }
  return c;
}

// Whether `text`, folded, equals `folded` (already folded). Callers pass byte ranges of the
// same length.
bool foldedEqual(std::string_view text, std::string_view folded) {
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < text.size() && j < folded.size()) {
    if (foldCodePoint(nextCodePoint(text, i)) != nextCodePoint(folded, j)) {
      return false;
    }
  }
  return i == text.size() && j == folded.size();
}

} // namespace

std::string foldCase(std::string_view text) {
  std::string out(text);
  std::size_t i = 0;
  while (i < out.size()) {
    const std::size_t start = i;
    const char32_t cp = nextCodePoint(out, i);
    const char32_t folded = foldCodePoint(cp);
    if (folded == cp) {
      continue;
    }
    if (folded < 0x80) {
      out[start] = static_cast<char>(folded);
    } else { // two bytes, like the capital
      out[start] = static_cast<char>(0xc0 | (folded >> 6));
      out[start + 1] = static_cast<char>(0x80 | (folded & 0x3f));
    }
  }
  return out;
}

std::optional<double> parseNumber(std::string_view text) {
  std::string_view t = text;
  if (!t.empty() && t[0] == '+') {
    t.remove_prefix(1);
    if (!t.empty() && t[0] == '-') {
      return std::nullopt;
    }
  }
  // from_chars also takes "inf", "nan" and hex; only decimal numbers are wanted.
  std::size_t i = t.empty() || t[0] != '-' ? 0 : 1;
  const auto digit = [&](std::size_t k) { return k < t.size() && t[k] >= '0' && t[k] <= '9'; };
  if (!digit(i) && !(i < t.size() && t[i] == '.' && digit(i + 1))) {
    return std::nullopt;
  }
  double value = 0;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  if (end != t.data() + t.size()) {
    return std::nullopt;
  }
  if (ec == std::errc::result_out_of_range) {
    // Beyond the range or below it: the decimal exponent of the first significant digit
    // says which.
    const bool negative = t[0] == '-';
    long long magnitude = 0;
    bool significant = false;
    std::size_t k = negative ? 1 : 0;
    for (; digit(k); ++k) {
      if (significant || t[k] != '0') {
        significant = true;
        ++magnitude;
      }
    }
    if (k < t.size() && t[k] == '.') {
      for (++k; digit(k); ++k) {
        if (!significant) {
          if (t[k] != '0') {
            significant = true;
          } else {
            --magnitude;
          }
        }
      }
    }
    long long exponent = 0;
    if (k < t.size() && (t[k] == 'e' || t[k] == 'E')) {
      ++k;
      const bool exponent_negative = k < t.size() && t[k] == '-';
      if (k < t.size() && (t[k] == '-' || t[k] == '+')) {
        ++k;
      }
      for (; digit(k); ++k) {
        exponent = std::min(exponent * 10 + (t[k] - '0'), 1'000'000'000LL);
      }
      exponent = exponent_negative ? -exponent : exponent;
    }
    const double huge = std::numeric_limits<double>::infinity();
    value = significant && magnitude + exponent > 0 ? huge : 0.0;
    return negative ? -value : value;
  }
  if (ec != std::errc()) {
    return std::nullopt;
  }
  return value;
}

} // namespace detail

namespace {

using detail::Matcher;
using detail::MatcherKind;
using detail::PatternNode;
using json::Value;

// One leaf value of the event: a JSON scalar, or the raw text of a value that is not JSON.
struct Leaf {
  Value::Kind kind = Value::Kind::kNull; // kNull, kBool, kNumber or kString
  bool boolean = false;
  std::string_view text; // kString: the string; kNumber: the number as written
};

Leaf leafOf(const Value& v) { return Leaf{v.kind, v.boolean, v.text}; }

double numberOf(const Leaf& leaf) {
  // The JSON reader only hands out well-formed numbers.
  return detail::parseNumber(leaf.text).value_or(std::numeric_limits<double>::quiet_NaN());
}

bool inRange(const Matcher& m, double x) {
  if (m.lower && (m.lower_inclusive ? x < *m.lower : x <= *m.lower)) {
    return false;
  }
  if (m.upper && (m.upper_inclusive ? x > *m.upper : x >= *m.upper)) {
    return false;
  }
  return !std::isnan(x);
}

// Whether one present leaf value matches one matcher. exists is decided by the caller.
bool matchLeaf(const Matcher& m, const Leaf& v) {
  const bool is_string = v.kind == Value::Kind::kString;
  const std::string_view s = v.text;
  switch (m.kind) {
  case MatcherKind::kString:
    return is_string && s == m.text;
  case MatcherKind::kNumber:
    return v.kind == Value::Kind::kNumber && numberOf(v) == m.number;
  case MatcherKind::kNull:
    return v.kind == Value::Kind::kNull;
  case MatcherKind::kBoolean:
    return v.kind == Value::Kind::kBool && v.boolean == m.flag;
  case MatcherKind::kPrefix:
    return is_string && s.substr(0, m.text.size()) == m.text;
  case MatcherKind::kSuffix:
    return is_string && s.size() >= m.text.size() && s.substr(s.size() - m.text.size()) == m.text;
  case MatcherKind::kEqualsIgnoreCase:
    return is_string && s.size() == m.text.size() && detail::foldedEqual(s, m.text);
  case MatcherKind::kPrefixIgnoreCase:
    return is_string && s.size() >= m.text.size() &&
           detail::foldedEqual(s.substr(0, m.text.size()), m.text);
  case MatcherKind::kSuffixIgnoreCase:
    return is_string && s.size() >= m.text.size() &&
           detail::foldedEqual(s.substr(s.size() - m.text.size()), m.text);
  case MatcherKind::kNumeric:
    return v.kind == Value::Kind::kNumber && inRange(m, numberOf(v));
  case MatcherKind::kExists:
    return false;
  case MatcherKind::kAnythingBut:
    for (const Matcher& excluded : m.excluded) {
      if (matchLeaf(excluded, v)) {
        return false;
      }
    }
    return true;
  }
  return false;
}

bool anyMatcherMatches(const std::vector<Matcher>& matchers, const Leaf& leaf) {
  for (const Matcher& m : matchers) {
    if (matchLeaf(m, leaf)) {
      return true;
    }
  }
  return false;
}

// Whether any leaf value of `v` matches: `v` itself when it is a scalar, the elements of an
// array (EventBridge: a field holding an array matches when any element does), arrays in
// arrays included. An object holds no leaf value.
bool anyLeafMatches(const std::vector<Matcher>& matchers, const Value& v) {
  switch (v.kind) {
  case Value::Kind::kObject:
    return false;
  case Value::Kind::kArray:
    for (const Value& item : v.items) {
      if (anyLeafMatches(matchers, item)) {
        return true;
      }
    }
    return false;
  default:
    return anyMatcherMatches(matchers, leafOf(v));
  }
}

// `exists` asks whether the field is there, whatever it holds (an object, an array, null):
// {"exists": true} matches a present field, {"exists": false} an absent one. EventBridge
// looks at leaf values only, so there {"exists": false} also matches a field holding an
// object and {"exists": true} does not; kesm keeps the plain reading, which also makes
// {"value": [{"exists": true}]} pass every record except tombstones, JSON objects included
// (docs/filtering.md).
bool existsMatches(const std::vector<Matcher>& matchers, bool present) {
  for (const Matcher& m : matchers) {
    if (m.kind == MatcherKind::kExists && m.flag == present) {
      return true;
    }
  }
  return false;
}

bool matchNode(const PatternNode& node, const Value* v);

// A field of a pattern map against the member's value; `v` is null when the member is absent.
bool matchField(const PatternNode::Field& field, const Value* v) {
  if (!field.nested.empty()) {
    return matchNode(field.nested.front(), v);
  }
  if (existsMatches(field.matchers, v != nullptr)) {
    return true;
  }
  // Every other matcher needs a value: anything-but never matches an absent field.
  return v != nullptr && anyLeafMatches(field.matchers, *v);
}

// A pattern map against a JSON value; `v` is null when absent. Only an object has members:
// against anything else every field of the map is absent, which only {"exists": false}
// matches. An array matches when one of its elements does, so that all fields of the map
// are matched within the same element (EventBridge's array-consistent matching).
bool matchNode(const PatternNode& node, const Value* v) {
  if (v != nullptr && v->kind == Value::Kind::kArray && !v->items.empty()) {
    for (const Value& item : v->items) {
      if (matchNode(node, &item)) {
        return true;
      }
    }
    return false;
  }
  const Value* object = v != nullptr && v->kind == Value::Kind::kObject ? v : nullptr;
  for (const PatternNode::Field& field : node.fields) {
    if (!matchField(field, object == nullptr ? nullptr : object->find(field.name))) {
      return false;
    }
  }
  if (node.any_of.empty()) {
    return true;
  }
  for (const PatternNode& alternative : node.any_of) {
    if (matchNode(alternative, v)) {
      return true;
    }
  }
  return false;
}

// The record's value as the patterns see it.
struct Subject {
  enum class Kind { kTombstone, kJson, kText };
  Kind kind = Kind::kTombstone;
  const Value* json = nullptr; // kJson
  std::string_view text;       // kText: the raw value
};

// The `value` field of a pattern against the record's value.
bool matchValue(const PatternNode::Field& field, const Subject& subject) {
  switch (subject.kind) {
  case Subject::Kind::kJson:
    return matchField(field, subject.json);
  case Subject::Kind::kText:
    // A value that is not JSON has no fields: only a list of matchers applies, to the text.
    if (!field.nested.empty()) {
      return false;
    }
    return existsMatches(field.matchers, true) ||
           anyMatcherMatches(field.matchers, Leaf{Value::Kind::kString, false, subject.text});
  case Subject::Kind::kTombstone:
    // A null value is absent for exists and null for [null]; nothing else matches it.
    if (!field.nested.empty()) {
      return false;
    }
    for (const Matcher& m : field.matchers) {
      if (m.kind == MatcherKind::kNull || (m.kind == MatcherKind::kExists && !m.flag)) {
        return true;
      }
    }
    return false;
  }
  return false;
}

// A whole pattern: its fields can only be `value` (the compiler checks), plus $or.
bool matchPattern(const PatternNode& pattern, const Subject& subject) {
  for (const PatternNode::Field& field : pattern.fields) {
    if (!matchValue(field, subject)) {
      return false;
    }
  }
  if (pattern.any_of.empty()) {
    return true;
  }
  for (const PatternNode& alternative : pattern.any_of) {
    if (matchPattern(alternative, subject)) {
      return true;
    }
  }
  return false;
}

// Whether `text` may be a JSON document, from its first and last characters: the parse (and
// the exception of a failed one, microseconds) is skipped for values that plainly are not
// JSON, like log lines, which often start with a digit or a word.
bool mayBeJson(std::string_view text) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && space(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && space(text.back())) {
    text.remove_suffix(1);
  }
  if (text.empty()) {
    return false;
  }
  switch (text.front()) {
  case '{':
    return text.back() == '}';
  case '[':
    return text.back() == ']';
  case '"':
    return text.size() >= 2 && text.back() == '"';
  case 't':
    return text == "true";
  case 'f':
    return text == "false";
  case 'n':
    return text == "null";
  default:
    break;
  }
  // A number: nothing but the characters of one.
  for (const char c : text) {
    if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E')) {
      return false;
    }
  }
  return true;
}

} // namespace

Filters::Filters(std::vector<detail::PatternNode> patterns) : patterns_(std::move(patterns)) {}

Filters::~Filters() = default;

std::size_t Filters::size() const { return patterns_.size(); }

bool Filters::matches(const Record& record) const {
  Subject subject;
  Value root;
  if (record.value) {
    subject.kind = Subject::Kind::kText;
    subject.text = *record.value;
    if (mayBeJson(*record.value)) {
      try {
        root = json::parse(*record.value);
        subject.kind = Subject::Kind::kJson;
        subject.json = &root;
      } catch (const json::JsonError&) {
        // Not JSON (or nested deeper than the reader goes): matched as text.
      }
    }
  }
  for (const detail::PatternNode& pattern : patterns_) {
    if (matchPattern(pattern, subject)) {
      return true;
    }
  }
  return false;
}

} // namespace kesm::filter
