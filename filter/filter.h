#pragma once

// Record filtering with AWS Lambda's FilterCriteria patterns (EventBridge pattern syntax),
// the Kafka flavour: a pattern looks at the record's `value`, JSON-decoded when it is JSON,
// as the raw text otherwise. docs/filtering.md has the syntax and where kesm differs.
//
// Patterns are compiled once at startup (filter/filter_yaml.h, from the config's YAML) into
// an immutable Filters; matches() is then pure, reentrant and safe to call from any number
// of threads at once (each poller thread calls it per record).

#include "common/types.h"

#include <cstddef>
#include <string>
#include <vector>

namespace kesm::filter {

// At most this many patterns per mapping. kesm's choice: AWS allows 5 by default (10 on
// request); patterns are evaluated one after the other, so the bound keeps a record's cost
// small.
inline constexpr std::size_t kMaxPatterns = 20;
// A pattern nests at most this many maps (the pattern itself, each map below a field, each
// alternative of a $or), so matching never recurses deeply.
inline constexpr std::size_t kMaxPatternDepth = 16;
// A field's list holds 1 to this many values or matchers; also the bound on the values of an
// anything-but list and on the alternatives of a $or.
inline constexpr std::size_t kMaxMatchers = 100;
// The compiled size of a mapping's filters: at most this many maps, fields, values and
// matchers in all, each use of a YAML alias counted as a copy. Bounds the work a record costs
// and the compiler's own: a few lines of nested aliases would otherwise expand exponentially.
inline constexpr std::size_t kMaxFilterElements = 10000;

// One rule of the pattern syntax broken, found when compiling.
struct FilterError {
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based
  std::string key; // key path, e.g. mappings[0].filters[1].value.price
  std::string rule;
};

namespace detail {
struct PatternNode; // filter/pattern.h, the compiled form
}

// A mapping's compiled patterns: a record passes when it matches any of them. Immutable;
// share it as std::shared_ptr<const Filters>.
class Filters {
public:
  // Built by compileFilters() (filter/filter_yaml.h); `patterns` is never empty.
  explicit Filters(std::vector<detail::PatternNode> patterns);
  ~Filters();
  Filters(const Filters&) = delete;
  Filters& operator=(const Filters&) = delete;

  // Whether the record passes, i.e. matches at least one pattern. Decodes the value once
  // (a JSON parse); allocates nothing else. Only record.value is looked at.
  bool matches(const Record& record) const;

  // The number of patterns.
  std::size_t size() const;

private:
  std::vector<detail::PatternNode> patterns_;
};

} // namespace kesm::filter
