#pragma once

// How the config parser and the filter compiler read YAML nodes and word what they found:
// positions, key paths, quoted values, and (for the config) the Reporter that collects
// Diagnostics and the typed readers of one `key: value` Field. Internal to config/ and
// filter/ (library kesm_yaml_diagnostics, which both link; it needs only yaml-cpp and the
// types of config/config.h). Pure; used at startup on one thread.

#include "config/config.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <yaml-cpp/yaml.h>

namespace kesm::config::detail {

// ---- Shared with the filter compiler ----------------------------------------------------------

// A 1-based position in the file; 0 when unknown (a Diagnostic then shows no position).
struct Pos {
  int line = 0;
  int column = 0;
};

// Where the config points when yaml-cpp gives no mark: the start of the file.
inline constexpr Pos kFileStart{1, 1};

// The node's mark, 1-based; `fallback` when the node is undefined or has no mark.
Pos posOf(const YAML::Node& node, Pos fallback);
// Where a message about a map's or list's value points: its mark, or `key_pos` (the key, or
// the list) when the value is empty, which yaml-cpp marks where the next token starts.
Pos valuePos(const YAML::Node& value, Pos key_pos);

std::string joinPath(const std::string& parent, std::string_view key); // a.b
std::string indexPath(const std::string& parent, std::size_t index);   // a[3]

// A decimal number as YAML writes one: -1, 2.5, 1e3.
bool isNumber(std::string_view text);

// Text found in the file, for a message: in single quotes, cut after `max_chars` characters
// (then "..."), control characters escaped as \xNN.
std::string quoteText(std::string_view text, std::size_t max_chars);

// How a message shows a scalar: as written when it is a number, quoted (quoteText) otherwise.
struct Quoting {
  std::size_t max_chars;
  bool (*is_number)(const YAML::Node& scalar);
};

// What a node is, for "got ...": "an empty value", "a map", "a list", "an empty string", or
// the scalar as Quoting shows it.
std::string describeNode(const YAML::Node& node, const Quoting& quoting);

// "a, b, c".
std::string joinNames(const std::vector<std::string_view>& names);

// For "did you mean": the name of `known` nearest to `name` by editDistance (common/text.h),
// both compared as `fold` writes them, when nearer than `limit` edits; empty when none is.
std::string_view nearestName(std::string_view name, const std::vector<std::string_view>& known,
                             std::size_t limit, std::string (*fold)(std::string_view));

// ---- The config's reading machinery -----------------------------------------------------------

// The config's Quoting: numbers (isNumber) as written, other text quoted up to 60 characters.
std::string quote(std::string_view text);
std::string describe(const YAML::Node& node);

// Collects the diagnostics of one file; raise() throws them, sorted by position, as one
// ConfigError of at most kMaxDiagnostics (and a line saying how many more there were).
class Reporter {
public:
  explicit Reporter(std::string file) : file_(std::move(file)) {}

  void add(Pos pos, std::string key, std::string rule);
  bool empty() const { return diagnostics_.empty(); }
  [[noreturn]] void raise();

private:
  std::string file_;
  std::vector<Diagnostic> diagnostics_;
};

// One key: value pair of the file, with the key path and the positions messages point at.
struct Field {
  std::string path;
  YAML::Node value;
  Pos key_pos;
  Pos value_pos; // the key's position when the value is empty (yaml-cpp has no mark for it)
};

// The entries of one YAML map, in file order. Reports keys that are not plain names and keys
// that appear twice; the first occurrence wins.
std::vector<Field> entriesOf(Reporter& reporter, const YAML::Node& map, const std::string& path,
                             Pos map_pos);

// A list or map longer than kesm reads is reported once (true), and not read further.
bool tooLong(Reporter& reporter, const Field& field, std::size_t max, std::string_view what);

Location locationOf(const Field& field);

// "must be <expected>, got <what was found>" at the value.
void mismatch(Reporter& reporter, const Field& field, std::string_view expected);
// False (and a mismatch) when the value is not a map.
bool expectMap(Reporter& reporter, const Field& field, std::string_view expected);
// The scalar's text; nullopt (and a mismatch) when the value is not a scalar.
std::optional<std::string> readScalar(Reporter& reporter, const Field& field,
                                      std::string_view expected);

// The readers below do nothing for a null field (the key is absent) and leave `out` as it
// is when the value breaks the rule. readInt and readDuration return true when the value was
// present and valid.

// A decimal integer in [lo, hi]; quoted digits ("100") are accepted too.
bool readInt(Reporter& reporter, const Field* field, int lo, int hi, int& out);
// A finite decimal number in [lo, hi].
void readNumber(Reporter& reporter, const Field* field, double lo, double hi, double& out);
// true or false, nothing YAML 1.1 would add (yes, on, ...): a config is read by people.
void readBool(Reporter& reporter, const Field* field, bool& out);

struct DurationRange {
  Millis lo;
  Millis hi;
  std::string_view lo_text; // how messages write the bounds
  std::string_view hi_text;
};

// A duration (parseDuration) in the range; a malformed one is explained (missing unit,
// minus sign, unknown unit).
bool readDuration(Reporter& reporter, const Field* field, const DurationRange& range, Millis& out);

} // namespace kesm::config::detail
