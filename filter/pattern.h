#pragma once

// The compiled form of a pattern, shared by the compiler (filter_yaml.cc) and the matcher
// (filter.cc). Internal to the filter component: other components use filter/filter.h.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kesm::filter::detail {

enum class MatcherKind : std::uint8_t {
  kString,           // "x": exactly this string
  kNumber,           // 300: a JSON number equal to it (300.0 and 3e2 too)
  kNull,             // null: JSON null, or a null record value (a tombstone)
  kBoolean,          // true / false
  kPrefix,           // {"prefix": "x"}
  kSuffix,           // {"suffix": "x"}
  kEqualsIgnoreCase, // {"equals-ignore-case": "x"}
  kPrefixIgnoreCase, // {"prefix": {"equals-ignore-case": "x"}}
  kSuffixIgnoreCase, // {"suffix": {"equals-ignore-case": "x"}}
  kNumeric,          // {"numeric": [">", 0, "<=", 5]}
  kExists,           // {"exists": true|false}
  kAnythingBut,      // {"anything-but": ...}
};

struct Matcher {
  MatcherKind kind = MatcherKind::kNull;
  // kString, kPrefix, kSuffix: the text; the *IgnoreCase kinds: the text case-folded
  // (foldCase).
  std::string text;
  double number = 0; // kNumber
  bool flag = false; // kBoolean: the value; kExists: true for {"exists": true}
  // kNumeric: the bounds present. "=" is a closed range of one value.
  std::optional<double> lower;
  bool lower_inclusive = false;
  std::optional<double> upper;
  bool upper_inclusive = false;
  // kAnythingBut: a present value passes when none of these (kString, kNumber, kPrefix,
  // kSuffix, kEqualsIgnoreCase) matches it.
  std::vector<Matcher> excluded;
};

// One map of a pattern. The pattern itself is a PatternNode whose only field is `value`
// (the record's value); below it, fields name the members of a JSON object.
struct PatternNode {
  struct Field {
    std::string name;
    // A leaf: the field matches when any of these matches.
    std::vector<Matcher> matchers;
    // A nested map instead: exactly one node, matched against the member's value.
    std::vector<PatternNode> nested;
  };
  std::vector<Field> fields;       // all must match (AND)
  std::vector<PatternNode> any_of; // $or: none, or at least two; one must match
};

// Case folding for equals-ignore-case. Folds ASCII, Latin-1, Latin Extended-A, Greek and
// basic Cyrillic capitals to small letters, code point by code point; every folding keeps
// the UTF-8 length, so folded text can be compared byte range by byte range. Other
// characters and bytes that are not UTF-8 are kept as they are.
std::string foldCase(std::string_view text);

// A decimal number (JSON's grammar; a leading '+' allowed) as a double. A number beyond the
// double range becomes +-infinity and one below it +-0, as strtod does. nullopt when `text`
// is not such a number.
std::optional<double> parseNumber(std::string_view text);

} // namespace kesm::filter::detail
