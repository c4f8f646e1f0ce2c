#include "config/yaml_diagnostics.h"

#include "common/text.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <utility>

namespace kesm::config {

// ---- Diagnostic and ConfigError ---------------------------------------------------------------

std::string Diagnostic::toString() const {
  std::string out = file;
  if (line > 0) {
    // Appended in turn: `":" + std::to_string(…)` trips GCC 12's false -Wrestrict at -O3.
    out += ':';
    out += std::to_string(line);
    out += ':';
    out += std::to_string(column);
  }
  out += ": ";
  if (!key.empty()) {
    out += key + ": ";
  }
  return out + rule;
}

namespace {

std::string joinDiagnostics(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const auto& d : diagnostics) {
    if (!out.empty()) {
      out += "\n";
    }
    out += d.toString();
  }
  return out;
}

} // namespace

ConfigError::ConfigError(std::vector<Diagnostic> diagnostics)
    : std::runtime_error(joinDiagnostics(diagnostics)), diagnostics_(std::move(diagnostics)) {}

namespace detail {

// ---- Shared with the filter compiler ----------------------------------------------------------

Pos posOf(const YAML::Node& node, Pos fallback) {
  if (!node.IsDefined()) {
    return fallback;
  }
  const YAML::Mark mark = node.Mark();
  if (mark.is_null() || mark.line < 0 || mark.column < 0) {
    return fallback;
  }
  return Pos{mark.line + 1, mark.column + 1};
}

Pos valuePos(const YAML::Node& value, Pos key_pos) {
  return value.IsNull() ? key_pos : posOf(value, key_pos);
}

std::string joinPath(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string indexPath(const std::string& parent, std::size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

bool isNumber(std::string_view text) {
  // Decimal numbers as YAML writes them: -1, 2.5, 1e3.
  std::size_t i = 0;
  const std::size_t n = text.size();
  if (i < n && (text[i] == '+' || text[i] == '-')) {
    ++i;
  }
  std::size_t digits = 0;
  while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) {
    ++i;
    ++digits;
  }
  if (i < n && text[i] == '.') {
    ++i;
    while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) {
      ++i;
      ++digits;
    }
  }
  if (digits == 0) {
    return false;
  }
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < n && (text[i] == '+' || text[i] == '-')) {
      ++i;
    }
    std::size_t exponent_digits = 0;
    while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) {
      ++i;
      ++exponent_digits;
    }
    if (exponent_digits == 0) {
      return false;
    }
  }
  return i == n;
}

std::string quoteText(std::string_view text, std::size_t max_chars) {
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < max_chars; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + (text.size() > max_chars ? "...'" : "'");
}

std::string describeNode(const YAML::Node& node, const Quoting& quoting) {
  switch (node.Type()) {
  case YAML::NodeType::Null:
    return "an empty value";
  case YAML::NodeType::Map:
    return "a map";
  case YAML::NodeType::Sequence:
    return "a list";
  case YAML::NodeType::Scalar:
    if (quoting.is_number(node)) {
      return node.Scalar(); // a number as written
    }
    return node.Scalar().empty() ? "an empty string" : quoteText(node.Scalar(), quoting.max_chars);
  case YAML::NodeType::Undefined:
    break;
  }
  return "nothing";
}

std::string joinNames(const std::vector<std::string_view>& names) {
  std::string out;
  for (const std::string_view name : names) {
    out += (out.empty() ? "" : ", ") + std::string(name);
  }
  return out;
}

std::string_view nearestName(std::string_view name, const std::vector<std::string_view>& known,
                             std::size_t limit, std::string (*fold)(std::string_view)) {
  const std::string wanted = fold(name);
  std::string_view best;
  std::size_t best_distance = limit;
  for (const std::string_view k : known) {
    const std::size_t distance = editDistance(wanted, fold(k));
    if (distance < best_distance) {
      best = k;
      best_distance = distance;
    }
  }
  return best;
}

// ---- The config's reading machinery -----------------------------------------------------------

namespace {

constexpr std::size_t kMaxQuoted = 60;

bool scalarIsNumber(const YAML::Node& scalar) { return isNumber(scalar.Scalar()); }

const Quoting kConfigQuoting{kMaxQuoted, scalarIsNumber};

} // namespace

std::string quote(std::string_view text) {
  return isNumber(text) ? std::string(text) : quoteText(text, kMaxQuoted);
}

std::string describe(const YAML::Node& node) { return describeNode(node, kConfigQuoting); }

void Reporter::add(Pos pos, std::string key, std::string rule) {
  diagnostics_.push_back(Diagnostic{file_, pos.line, pos.column, std::move(key), std::move(rule)});
}

void Reporter::raise() {
  std::stable_sort(diagnostics_.begin(), diagnostics_.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::pair(a.line, a.column) < std::pair(b.line, b.column);
                   });
  if (diagnostics_.size() > kMaxDiagnostics) {
    std::size_t more = diagnostics_.size() - kMaxDiagnostics;
    diagnostics_.resize(kMaxDiagnostics);
    diagnostics_.push_back(
        Diagnostic{file_, 0, 0, "", "and " + std::to_string(more) + " more errors not shown"});
  }
  throw ConfigError(std::move(diagnostics_));
}

std::vector<Field> entriesOf(Reporter& reporter, const YAML::Node& map, const std::string& path,
                             Pos map_pos) {
  std::vector<Field> fields;
  std::map<std::string, Pos> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    // Copies, not references: it-> returns a temporary proxy, so a reference to it->first
    // dangles at the end of the statement (ASan: stack-use-after-scope; fuzz/regressions).
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    Pos key_pos = posOf(key, map_pos);
    if (!key.IsScalar() || key.Scalar().empty()) {
      reporter.add(key_pos, path, "a key must be a plain name, got " + describe(key) + " as a key");
      continue;
    }
    std::string field_path = joinPath(path, key.Scalar());
    auto [first, inserted] = seen.emplace(key.Scalar(), key_pos);
    if (!inserted) {
      reporter.add(key_pos, field_path,
                   "appears more than once in the same map (first at line " +
                       std::to_string(first->second.line) + ")");
      continue;
    }
    Pos value_pos = valuePos(value, key_pos);
    fields.push_back(Field{field_path, value, key_pos, value_pos});
  }
  return fields;
}

bool tooLong(Reporter& reporter, const Field& field, std::size_t max, std::string_view what) {
  std::size_t n = field.value.size();
  if (n <= max) {
    return false;
  }
  reporter.add(field.value_pos, field.path,
               "holds at most " + std::to_string(max) + " " + std::string(what) + ", got " +
                   std::to_string(n));
  return true;
}

Location locationOf(const Field& field) {
  return Location{field.path, field.value_pos.line, field.value_pos.column};
}

void mismatch(Reporter& reporter, const Field& field, std::string_view expected) {
  reporter.add(field.value_pos, field.path,
               "must be " + std::string(expected) + ", got " + describe(field.value));
}

bool expectMap(Reporter& reporter, const Field& field, std::string_view expected) {
  if (!field.value.IsMap()) {
    mismatch(reporter, field, expected);
    return false;
  }
  return true;
}

std::optional<std::string> readScalar(Reporter& reporter, const Field& field,
                                      std::string_view expected) {
  if (!field.value.IsScalar()) {
    mismatch(reporter, field, expected);
    return std::nullopt;
  }
  return field.value.Scalar();
}

bool readInt(Reporter& reporter, const Field* field, int lo, int hi, int& out) {
  if (field == nullptr) {
    return false;
  }
  std::string expected = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  auto text = readScalar(reporter, *field, expected);
  if (!text) {
    return false;
  }
  std::string_view digits = *text;
  if (!digits.empty() && digits.front() == '+') {
    digits.remove_prefix(1);
  }
  long long value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  bool whole =
      !digits.empty() && end == digits.data() + digits.size() && ec != std::errc::invalid_argument;
  if (!whole || ec == std::errc::result_out_of_range || value < lo || value > hi) {
    mismatch(reporter, *field, expected);
    return false;
  }
  out = static_cast<int>(value);
  return true;
}

namespace {

std::string formatNumber(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", value);
  return buf;
}

} // namespace

void readNumber(Reporter& reporter, const Field* field, double lo, double hi, double& out) {
  if (field == nullptr) {
    return;
  }
  std::string expected = "a number from " + formatNumber(lo) + " to " + formatNumber(hi);
  auto text = readScalar(reporter, *field, expected);
  if (!text) {
    return;
  }
  if (!isNumber(*text)) {
    mismatch(reporter, *field, expected);
    return;
  }
  double value = std::strtod(text->c_str(), nullptr);
  if (!std::isfinite(value) || value < lo || value > hi) {
    mismatch(reporter, *field, expected);
    return;
  }
  out = value;
}

namespace {

// Why a text is not a duration: a missing unit, a minus sign, an unknown unit, or the shape.
std::string durationError(const std::string& text, const std::string& expected) {
  if (isNumber(text)) {
    return "a duration needs a unit: ms, s, m or h (for example 30s), got " + quote(text);
  }
  if (!text.empty() && text.front() == '-') {
    return "must be " + expected + "; a duration is never negative, got " + quote(text);
  }
  // One number and a unit kesm does not know: "5x", "2d", "10sec".
  std::size_t unit = text.find_first_not_of("0123456789.");
  if (unit > 0 && unit != std::string::npos && isNumber(text.substr(0, unit)) &&
      std::all_of(text.begin() + static_cast<std::ptrdiff_t>(unit), text.end(),
                  [](char c) { return std::isalpha(static_cast<unsigned char>(c)); })) {
    return "must be " + expected + "; '" + text.substr(unit) +
           "' is not a unit, use ms, s, m or h, got " + quote(text);
  }
  return "must be " + expected + ", written like 500ms, 30s, 2m or 1h, got " + quote(text);
}

} // namespace

bool readDuration(Reporter& reporter, const Field* field, const DurationRange& range, Millis& out) {
  if (field == nullptr) {
    return false;
  }
  std::string expected =
      "a duration from " + std::string(range.lo_text) + " to " + std::string(range.hi_text);
  auto text = readScalar(reporter, *field, expected);
  if (!text) {
    return false;
  }
  auto value = parseDuration(*text);
  if (!value) {
    reporter.add(field->value_pos, field->path, durationError(*text, expected));
    return false;
  }
  if (*value < range.lo || *value > range.hi) {
    reporter.add(field->value_pos, field->path, "must be " + expected + ", got " + *text);
    return false;
  }
  out = *value;
  return true;
}

void readBool(Reporter& reporter, const Field* field, bool& out) {
  if (field == nullptr) {
    return;
  }
  auto text = readScalar(reporter, *field, "true or false");
  if (text && *text == "true") {
    out = true;
  } else if (text && *text == "false") {
    out = false;
  } else if (text) {
    mismatch(reporter, *field, "true or false");
  }
}

} // namespace detail

} // namespace kesm::config
