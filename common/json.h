#pragma once

// A strict JSON reader (RFC 8259): it accepts exactly the JSON grammar and nothing YAML or
// JavaScript would add (no comments, single quotes, trailing commas, NaN, bare words, byte
// order mark), requires well-formed UTF-8 (RFC 3629) in strings, and rejects escapes of lone
// UTF-16 surrogates, which no UTF-8 string can hold. Pure and reentrant. The sample function
// uses it to check that what kesm sends is JSON any runtime accepts; the record filter
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

} // namespace kesm::json
