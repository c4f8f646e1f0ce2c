#pragma once

// JSON for kesm: a strict reader, and the one quoter for strings in JSON kesm writes by hand.
// The reader (RFC 8259) accepts exactly the JSON grammar and nothing YAML or JavaScript would
// add (no comments, single quotes, trailing commas, NaN, bare words, byte order mark),
// requires well-formed UTF-8 (RFC 3629) in strings, and rejects escapes of lone UTF-16
// surrogates, which no UTF-8 string can hold. Pure and reentrant. The sample function uses it
// to check that what kesm sends is JSON any runtime accepts; the record filter
// (filter/filter.h) to decode record values.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kesm::json {

// Thrown on malformed input; what() names the byte offset and the rule broken.
class JsonError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct Value {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  // kString: the decoded string (UTF-8); kNumber: the number exactly as written.
  std::string text;
  // kArray: the elements; kObject: the member values, in document order.
  std::vector<Value> items;
  // kObject: the member names (decoded), parallel to `items`; duplicates are kept.
  std::vector<std::string> names;

  bool isNull() const { return kind == Kind::kNull; }
  // The first member with this name, or nullptr (also when this is not an object).
  const Value* find(std::string_view name) const;
};

// Nesting deeper than this is rejected rather than recursed into.
inline constexpr std::size_t kMaxDepth = 64;

Value parse(std::string_view text);

// Length of the well-formed multi-byte UTF-8 sequence starting at s[i] (RFC 3629: no
// overlongs, no surrogates, nothing above U+10FFFF), or 0 when the byte there (ASCII
// included) does not start one, or i is past the end.
std::size_t utf8SequenceLength(std::string_view s, std::size_t i);

// `s` as a JSON string, quotes included, always valid UTF-8 whatever the bytes: well-formed
// UTF-8 is copied, '"' and '\\' are escaped, bytes below 0x20 become \u00xx, and each byte
// that is not part of a well-formed sequence becomes U+FFFD. For text people read (/status);
// record bytes that must round-trip use invoker/payload.h instead.
std::string quote(std::string_view s);

} // namespace kesm::json
