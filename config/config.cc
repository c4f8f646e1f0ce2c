#include "config/config.h"

#include "common/text.h"
#include "config/bounds.h"
#include "filter/filter_yaml.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <map>
#include <sstream>
#include <string_view>
#include <unistd.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace kesm::config {

// ---- Diagnostic and ConfigError ---------------------------------------------------------------

std::string Diagnostic::toString() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line) + ":" + std::to_string(column);
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

// ---- Durations --------------------------------------------------------------------------------

std::optional<Millis> parseDuration(const std::string& text) {
  // A sum of <number><unit> terms ("500ms", "1.5s", "1m30s"), or a bare "0". Every term must
  // come out as a whole number of milliseconds.
  if (text == "0") {
    return Millis{0};
  }
  if (text.empty()) {
    return std::nullopt;
  }
  constexpr std::int64_t kMaxWhole = 1'000'000'000'000;         // keeps whole * 3.6e6 in range
  constexpr std::int64_t kMaxTotal = 1'000'000'000'000'000'000; // ~31 million years
  constexpr std::size_t kMaxFractionDigits = 12;
  std::int64_t total = 0;
  std::size_t i = 0;
  const std::size_t n = text.size();
  auto digit = [&](std::size_t at) { return at < n && text[at] >= '0' && text[at] <= '9'; };
  while (i < n) {
    std::int64_t whole = 0;
    std::size_t whole_digits = 0;
    while (digit(i)) {
      whole = whole * 10 + (text[i] - '0');
      if (whole > kMaxWhole) {
        return std::nullopt;
      }
      ++i;
      ++whole_digits;
    }
    std::int64_t fraction = 0;
    std::int64_t scale = 1;
    std::size_t fraction_digits = 0;
    if (i < n && text[i] == '.') {
      ++i;
      std::size_t first = i;
      while (digit(i)) {
        ++i;
      }
      fraction_digits = i - first;
      std::string_view digits = std::string_view(text).substr(first, fraction_digits);
      while (!digits.empty() && digits.back() == '0') {
        digits.remove_suffix(1); // trailing zeros do not change the value
      }
      if (fraction_digits == 0 || digits.size() > kMaxFractionDigits) {
        return std::nullopt;
      }
      for (char c : digits) {
        fraction = fraction * 10 + (c - '0');
        scale *= 10;
      }
    }
    if (whole_digits == 0 && fraction_digits == 0) {
      return std::nullopt;
    }
    std::int64_t unit = 0;
    if (text.compare(i, 2, "ms") == 0) {
      unit = 1;
      i += 2;
    } else if (i < n && text[i] == 's') {
      unit = 1000;
      ++i;
    } else if (i < n && text[i] == 'm') {
      unit = 60 * 1000;
      ++i;
    } else if (i < n && text[i] == 'h') {
      unit = 60 * 60 * 1000;
      ++i;
    } else {
      return std::nullopt;
    }
    // fraction < 10^12 and unit <= 3.6e6: the product stays below 2^63.
    if ((fraction * unit) % scale != 0) {
      return std::nullopt; // finer than a millisecond
    }
    total += whole * unit + fraction * unit / scale;
    if (total > kMaxTotal) {
      return std::nullopt;
    }
  }
  return Millis{total};
}

std::string formatDuration(Millis value) {
  auto ms = value.count();
  if (ms != 0 && ms % 3'600'000 == 0) {
    return std::to_string(ms / 3'600'000) + "h";
  }
  if (ms != 0 && ms % 60'000 == 0) {
    return std::to_string(ms / 60'000) + "m";
  }
  if (ms != 0 && ms % 1000 == 0) {
    return std::to_string(ms / 1000) + "s";
  }
  return ms == 0 ? "0" : std::to_string(ms) + "ms";
}

namespace {

// ---- Reporting --------------------------------------------------------------------------------

struct Pos {
  int line = 1;
  int column = 1;
};

Pos posOf(const YAML::Node& node, Pos fallback) {
  if (!node.IsDefined()) {
    return fallback;
  }
  YAML::Mark mark = node.Mark();
  if (mark.is_null() || mark.line < 0 || mark.column < 0) {
    return fallback;
  }
  return Pos{mark.line + 1, mark.column + 1};
}

class Reporter {
public:
  explicit Reporter(std::string file) : file_(std::move(file)) {}

  void add(Pos pos, std::string key, std::string rule) {
    diagnostics_.push_back(
        Diagnostic{file_, pos.line, pos.column, std::move(key), std::move(rule)});
  }
  bool empty() const { return diagnostics_.empty(); }

  [[noreturn]] void raise() {
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

private:
  std::string file_;
  std::vector<Diagnostic> diagnostics_;
};

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

// Text of a found value for a message: numbers as they are, other text quoted, shortened and
// with control characters escaped.
std::string quote(std::string_view text) {
  if (isNumber(text)) {
    return std::string(text);
  }
  constexpr std::size_t kMax = 60;
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMax) {
    out += "...";
  }
  return out + "'";
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
  case YAML::NodeType::Null:
    return "an empty value";
  case YAML::NodeType::Map:
    return "a map";
  case YAML::NodeType::Sequence:
    return "a list";
  case YAML::NodeType::Scalar:
    return node.Scalar().empty() ? "an empty string" : quote(node.Scalar());
  case YAML::NodeType::Undefined:
    break;
  }
  return "nothing";
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// ---- Known keys -------------------------------------------------------------------------------

using Keys = std::vector<std::string_view>;

struct Section {
  std::string_view where; // how a message names the section, "under batching"
  Keys keys;
};

const Section kTopSection{"at the top level", {"server", "mappings"}};
const Section kServerSection{"under server", {"listen"}};
const Section kMappingSection{
    "in a mapping (an entry of the mappings list)",
    {"name", "source", "function", "batching", "scaling", "retry", "onFailure", "filters"}};
const Section kSourceSection{"under a mapping's source",
                             {"bootstrapServers", "topics", "consumerGroupId", "startingPosition",
                              "startingPositionTimestamp", "partitionAssignor", "security",
                              "librdkafka"}};
const Section kSecuritySection{"under a mapping's source.security", {"protocol", "sasl", "tls"}};
const Section kSaslSection{
    "under a mapping's source.security.sasl",
    {"mechanism", "username", "usernameFile", "usernameEnv", "passwordFile", "passwordEnv"}};
const Section kTlsSection{"under a mapping's source.security.tls",
                          {"caFile", "certificateFile", "keyFile", "keyPasswordFile",
                           "keyPasswordEnv", "verifyHostname"}};
const Section kOnFailureSection{"under a mapping's onFailure", {"destination"}};
const Section kFunctionSection{"under a mapping's function",
                               {"url", "timeout", "nullValues", "detectErrorBody"}};
const Section kBatchingSection{"under a mapping's batching",
                               {"batchSize", "maximumBatchingWindow"}};
const Section kScalingSection{"under a mapping's scaling",
                              {"minimumPollers", "maximumPollers", "gracePeriod",
                               "evaluationInterval", "scaleDownStabilization",
                               "maxConcurrentBatches"}};
const Section kRetrySection{"under a mapping's retry",
                            {"initialBackoff", "maximumBackoff", "backoffMultiplier", "jitter",
                             "maximumRetryAttempts", "maximumRecordAge",
                             "bisectBatchOnFunctionError"}};

const std::vector<const Section*>& allSections() {
  static const std::vector<const Section*> sections{
      &kTopSection,      &kServerSection,  &kMappingSection, &kSourceSection,
      &kSecuritySection, &kSaslSection,    &kTlsSection,     &kFunctionSection,
      &kBatchingSection, &kScalingSection, &kRetrySection,   &kOnFailureSection};
  return sections;
}

// Keys of AWS's event source mapping API that users may bring along, and kesm's name for them.
const std::vector<std::pair<std::string_view, std::string_view>> kAwsNames{
    {"maximumRecordAgeInSeconds", "retry.maximumRecordAge (a duration, like 6h)"},
    {"destinationConfig", "onFailure.destination (kafka://TOPIC)"},
    {"filterCriteria", "filters (a list of patterns)"},
    {"selfManagedEventSource", "source.bootstrapServers"},
    {"sourceAccessConfigurations", "source.security"},
};

std::string unknownKeyRule(std::string_view key, const Section& section) {
  if (key == "<<") {
    return "YAML merge keys ('<<') are not supported; write the keys out";
  }
  if (key == "password" || key == "keyPassword") {
    return "a secret is never written in the config file; use " + std::string(key) +
           "File (a file holding it) or " + std::string(key) + "Env (an environment variable)";
  }
  std::string key_lower = lower(key);
  std::string_view best;
  std::size_t best_distance = 3;
  for (auto known : section.keys) {
    std::size_t distance = editDistance(key_lower, lower(known));
    if (distance < best_distance) {
      best = known;
      best_distance = distance;
    }
  }
  if (!best.empty()) {
    return "unknown key, did you mean '" + std::string(best) + "'?";
  }
  for (const Section* other : allSections()) {
    if (other == &section) {
      continue;
    }
    for (auto known : other->keys) {
      if (lower(known) == key_lower) {
        return "unknown key here: '" + std::string(known) + "' belongs " +
               std::string(other->where);
      }
    }
  }
  for (auto [aws, kesm_name] : kAwsNames) {
    if (lower(aws) == key_lower) {
      return "unknown key: AWS's '" + std::string(aws) + "' is " + std::string(kesm_name) +
             " in kesm";
    }
  }
  std::string allowed;
  for (auto known : section.keys) {
    allowed += (allowed.empty() ? "" : ", ") + std::string(known);
  }
  return "unknown key; the keys allowed " + std::string(section.where) + " are " + allowed;
}

// ---- Reading maps -----------------------------------------------------------------------------

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
    Pos value_pos = value.IsNull() ? key_pos : posOf(value, key_pos);
    fields.push_back(Field{field_path, value, key_pos, value_pos});
  }
  return fields;
}

// A list or map longer than kesm reads is reported once, and not read further.
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

// A map whose keys are all known. Unknown keys are reported when it is built.
class SectionReader {
public:
  SectionReader(Reporter& reporter, const YAML::Node& map, std::string path, Pos pos,
                const Section& section)
      : reporter_(reporter), path_(std::move(path)), pos_(pos) {
    for (auto& field : entriesOf(reporter, map, path_, pos)) {
      std::string_view key =
          std::string_view(field.path).substr(path_.empty() ? 0 : path_.size() + 1);
      if (std::find(section.keys.begin(), section.keys.end(), key) == section.keys.end()) {
        reporter.add(field.key_pos, field.path, unknownKeyRule(key, section));
        continue;
      }
      fields_.emplace(std::string(key), std::move(field));
    }
  }

  const Field* optional(std::string_view key) const {
    auto it = fields_.find(std::string(key));
    return it == fields_.end() ? nullptr : &it->second;
  }

  const Field* required(std::string_view key, std::string_view what) {
    const Field* field = optional(key);
    if (field == nullptr) {
      reporter_.add(pos_, joinPath(path_, key), "required key is missing; " + std::string(what));
    }
    return field;
  }

private:
  Reporter& reporter_;
  std::string path_;
  Pos pos_;
  std::map<std::string, Field> fields_;
};

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

// Integers are written in decimal; quoted digits ("100") are accepted too.
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

std::string formatNumber(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", value);
  return buf;
}

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

struct DurationRange {
  Millis lo;
  Millis hi;
  std::string_view lo_text;
  std::string_view hi_text;
};

// True when the value was present and valid.
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

// ---- Value rules ------------------------------------------------------------------------------

bool isNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

bool validMappingName(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), isNameChar);
}

// Kafka's own rule for topic names.
bool validTopicName(std::string_view topic) {
  return !topic.empty() && topic.size() <= 249 && topic != "." && topic != ".." &&
         std::all_of(topic.begin(), topic.end(), isNameChar);
}

bool validHost(std::string_view host) {
  if (host.empty()) {
    return false;
  }
  if (host.front() == '[') { // IPv6 literal
    if (host.size() < 3 || host.back() != ']') {
      return false;
    }
    auto inner = host.substr(1, host.size() - 2);
    return std::all_of(inner.begin(), inner.end(), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
    });
  }
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
}

// "host:port" with lo <= port <= 65535; IPv6 hosts in brackets.
bool validHostPort(std::string_view text, int lo) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return false;
  }
  auto host = text.substr(0, colon);
  auto port_text = text.substr(colon + 1);
  if (!validHost(host) || port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  int port = std::stoi(std::string(port_text));
  return port >= lo && port <= 65535;
}

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && lower(text.substr(0, prefix.size())) == prefix;
}

// The URL with any user:password@ before the host replaced by ***@, for messages: a password
// written in the URL must not reach a terminal or a log.
std::string redactUserinfo(std::string_view url) {
  auto scheme = url.find("://");
  std::size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  auto end = url.find_first_of("/?#", start);
  auto authority = url.substr(start, end == std::string_view::npos ? url.npos : end - start);
  auto at = authority.rfind('@');
  if (at == std::string_view::npos) {
    return std::string(url);
  }
  return std::string(url.substr(0, start)) + "***" + std::string(url.substr(start + at));
}

// http://host[:port][/path]; the error text when the URL is not one.
std::optional<std::string> httpUrlError(std::string_view url) {
  const std::string shown = redactUserinfo(url);
  if (shown != url) {
    return "must not hold credentials (user:password@ before the host): kesm sends no "
           "credentials to the function; got " +
           quote(shown);
  }
  const std::string shape = "must be an http:// URL like http://host:8080/path, got " + quote(url);
  if (startsWithNoCase(url, "https://")) {
    return "https is not supported yet; " + shape;
  }
  if (url.substr(0, 7) != "http://") {
    return shape;
  }
  auto rest = url.substr(7);
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  auto path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  bool authority_ok = false;
  if (authority.find('@') == std::string_view::npos) {
    bool has_port = !authority.empty() && authority.back() != ']' &&
                    authority.find(':') != std::string_view::npos &&
                    (authority.front() != '[' || authority.find("]:") != std::string_view::npos);
    authority_ok = has_port ? validHostPort(authority, 1) : validHost(authority);
  }
  bool path_ok = std::all_of(path.begin(), path.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7f;
  });
  if (!authority_ok || !path_ok) {
    return shape;
  }
  return std::nullopt;
}

const DurationRange kTimeoutRange{Millis{1}, Millis{15 * 60 * 1000}, "1ms", "15m"};
const DurationRange kBatchingWindowRange{Millis{0}, Millis{300 * 1000}, "0", "300s"};
const DurationRange kGracePeriodRange{Millis{0}, Millis{10 * 60 * 1000}, "0", "10m"};
const DurationRange kEvaluationIntervalRange{Millis{1000}, Millis{5 * 60 * 1000}, "1s", "5m"};
const DurationRange kScaleDownStabilizationRange{Millis{0}, Millis{60 * 60 * 1000}, "0", "1h"};
const DurationRange kBackoffRange{Millis{1}, Millis{15 * 60 * 1000}, "1ms", "15m"};
const DurationRange kRecordAgeRange{Millis{60 * 1000}, Millis{7 * 24 * 3600 * 1000LL}, "60s",
                                    "168h (7 days), or -1 for unbounded"};

constexpr int kMaxBatchSize = 10000;
constexpr int kMaxMinimumPollers = 200;
constexpr int kMaxMaximumPollers = 2000;

// ---- Sections ---------------------------------------------------------------------------------

void readServer(Reporter& reporter, const Field& field, ServerConfig& server) {
  if (!expectMap(reporter, field, "a map with the key listen")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kServerSection);
  if (const Field* listen = section.optional("listen")) {
    const char* expected = "host:port with a port from 0 to 65535, like 0.0.0.0:9464";
    auto text = readScalar(reporter, *listen, expected);
    if (text && !validHostPort(*text, 0)) {
      mismatch(reporter, *listen, expected);
    } else if (text) {
      server.listen = *text;
    }
  }
}

void readBootstrapServers(Reporter& reporter, const Field& field, SourceConfig& source) {
  source.bootstrap_servers_at = locationOf(field);
  const char* expected = "a list of host:port (or one string of them separated by commas)";
  const std::string entry_rule = "must be host:port with a port from 1 to 65535, got ";
  if (field.value.IsScalar()) {
    std::string_view text = field.value.Scalar();
    std::size_t start = 0;
    while (start <= text.size()) {
      auto comma = text.find(',', start);
      auto end = comma == std::string_view::npos ? text.size() : comma;
      auto entry = text.substr(start, end - start);
      while (!entry.empty() && entry.front() == ' ') {
        entry.remove_prefix(1);
      }
      while (!entry.empty() && entry.back() == ' ') {
        entry.remove_suffix(1);
      }
      if (!validHostPort(entry, 1)) {
        reporter.add(field.value_pos, field.path,
                     "each server " + entry_rule +
                         (entry.empty() ? std::string("an empty entry") : quote(entry)));
      } else {
        source.bootstrap_servers.emplace_back(entry);
      }
      if (comma == std::string_view::npos) {
        break;
      }
      start = comma + 1;
    }
    return;
  }
  if (!field.value.IsSequence()) {
    mismatch(reporter, field, expected);
    return;
  }
  if (field.value.size() == 0) {
    reporter.add(field.value_pos, field.path,
                 "must list at least one host:port, got an empty list");
    return;
  }
  if (tooLong(reporter, field, kMaxBootstrapServers, "servers")) {
    return;
  }
  std::size_t index = 0;
  for (const auto& item : field.value) {
    Field entry{indexPath(field.path, index++), item, field.value_pos,
                item.IsNull() ? field.value_pos : posOf(item, field.value_pos)};
    auto text = readScalar(reporter, entry, "host:port with a port from 1 to 65535");
    if (!text) {
      continue;
    }
    if (!validHostPort(*text, 1)) {
      reporter.add(entry.value_pos, entry.path, entry_rule + describe(item));
    } else {
      source.bootstrap_servers.push_back(*text);
    }
  }
}

void readTopics(Reporter& reporter, const Field& field, SourceConfig& source) {
  const std::string topic_rule =
      "must be a Kafka topic name: 1 to 249 letters, digits, '.', '_' or '-', got ";
  std::map<std::string, std::string> seen; // topic -> path of its first entry
  auto add_topic = [&](const Field& entry) {
    auto text = readScalar(reporter, entry, "a Kafka topic name");
    if (!text) {
      return;
    }
    if (!validTopicName(*text)) {
      std::string rule = topic_rule + describe(entry.value);
      if (text->find(',') != std::string::npos) {
        rule += "; list several topics as a YAML list, like [a, b]";
      }
      reporter.add(entry.value_pos, entry.path, rule);
      return;
    }
    auto [first, inserted] = seen.emplace(*text, entry.path);
    if (!inserted) {
      reporter.add(entry.value_pos, entry.path,
                   "topic '" + *text + "' is listed twice (also at " + first->second + ")");
      return;
    }
    source.topics.push_back(*text);
    source.topics_at.push_back(locationOf(entry));
  };
  if (field.value.IsScalar()) {
    add_topic(field);
    return;
  }
  if (!field.value.IsSequence()) {
    mismatch(reporter, field, "a list of topic names");
    return;
  }
  if (field.value.size() == 0) {
    reporter.add(field.value_pos, field.path, "must list at least one topic, got an empty list");
    return;
  }
  if (tooLong(reporter, field, kMaxTopics, "topics")) {
    return;
  }
  std::size_t index = 0;
  for (const auto& item : field.value) {
    add_topic(Field{indexPath(field.path, index++), item, field.value_pos,
                    item.IsNull() ? field.value_pos : posOf(item, field.value_pos)});
  }
}

// librdkafka settings that kesm derives from its own keys or that would break at-least-once.
std::optional<std::string> reservedLibrdkafkaRule(const std::string& key) {
  if (key == "bootstrap.servers" || key == "metadata.broker.list") {
    return "is set by kesm from source.bootstrapServers; set it there";
  }
  if (key == "group.id") {
    return "is set by kesm from source.consumerGroupId; set it there";
  }
  if (key == "auto.offset.reset") {
    return "is set by kesm from source.startingPosition (TRIM_HORIZON or LATEST); set it there";
  }
  if (key == "partition.assignment.strategy") {
    return "is set by kesm from source.partitionAssignor; set it there";
  }
  if (key == "enable.auto.commit" || key == "enable.auto.offset.store") {
    return "cannot be changed: kesm commits offsets itself, only after the function succeeded";
  }
  if (key == "sasl.password" || key == "ssl.key.password" || key == "sasl.username") {
    return "is set by kesm from source.security (a secret read from a file or an environment "
           "variable, never written in this file); set it there";
  }
  if (key == "security.protocol" || key == "sasl.mechanism" || key == "sasl.mechanisms" ||
      key == "ssl.ca.location" || key == "ssl.certificate.location" || key == "ssl.key.location" ||
      key == "ssl.endpoint.identification.algorithm") {
    return "is set by kesm from source.security; set it there";
  }
  return std::nullopt;
}

// true or false, nothing YAML 1.1 would add (yes, on, ...): a config is read by people.
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

// A path to a file, read at startup; only its shape is checked here.
std::optional<std::string> readPath(Reporter& reporter, const Field& field) {
  auto text = readScalar(reporter, field, "a file path");
  if (text && text->empty()) {
    reporter.add(field.value_pos, field.path, "must be a file path, got an empty string");
    return std::nullopt;
  }
  return text;
}

bool validEnvName(std::string_view name) {
  return !name.empty() && !std::isdigit(static_cast<unsigned char>(name.front())) &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
         });
}

// One secret given by exactly one of <base> (a literal, where allowed), <base>File or
// <base>Env. `what` names the secret in messages.
SecretSource readSecret(Reporter& reporter, const SectionReader& section, const Field& parent,
                        const std::string& base, bool literal_allowed, bool required) {
  SecretSource secret;
  std::vector<const Field*> given;
  const Field* literal = literal_allowed ? section.optional(base) : nullptr;
  const Field* file = section.optional(base + "File");
  const Field* env = section.optional(base + "Env");
  for (const Field* f : {literal, file, env}) {
    if (f != nullptr) {
      given.push_back(f);
    }
  }
  std::string choices = literal_allowed ? base + ", " + base + "File or " + base + "Env"
                                        : base + "File or " + base + "Env";
  if (given.size() > 1) {
    reporter.add(given[1]->key_pos, given[1]->path,
                 "give the " + base + " once: " + choices + ", not several");
    return secret;
  }
  if (given.empty()) {
    if (required) {
      reporter.add(parent.value_pos, joinPath(parent.path, base + "File"),
                   "required key is missing; give the " + base + " with " + choices);
    }
    return secret;
  }
  const Field& f = *given.front();
  secret.at = locationOf(f);
  if (&f == file) {
    if (auto path = readPath(reporter, f)) {
      secret.kind = SecretSource::Kind::kFile;
      secret.ref = *path;
    }
  } else if (&f == env) {
    auto name = readScalar(reporter, f, "an environment variable name");
    if (name && !validEnvName(*name)) {
      reporter.add(f.value_pos, f.path,
                   "must be an environment variable name (letters, digits and '_', not "
                   "starting with a digit), got " +
                       describe(f.value));
    } else if (name) {
      secret.kind = SecretSource::Kind::kEnv;
      secret.ref = *name;
    }
  } else {
    auto text = readScalar(reporter, f, "a string");
    if (text && text->empty()) {
      reporter.add(f.value_pos, f.path, "must not be empty");
    } else if (text) {
      secret.kind = SecretSource::Kind::kLiteral;
      secret.ref = *text;
      secret.value = *text;
    }
  }
  return secret;
}

void readSasl(Reporter& reporter, const Field& field, SaslConfig& sasl) {
  if (!expectMap(reporter, field,
                 "a map with mechanism, username and passwordFile or passwordEnv")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kSaslSection);
  if (auto f = section.required("mechanism", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")) {
    auto text = readScalar(reporter, *f, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
    if (text && *text == "PLAIN") {
      sasl.mechanism = SaslMechanism::kPlain;
    } else if (text && *text == "SCRAM-SHA-256") {
      sasl.mechanism = SaslMechanism::kScramSha256;
    } else if (text && *text == "SCRAM-SHA-512") {
      sasl.mechanism = SaslMechanism::kScramSha512;
    } else if (text) {
      std::string rule = "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got " + describe(f->value);
      if (*text == "GSSAPI" || *text == "OAUTHBEARER") {
        rule += " (" + *text + " is not supported yet)";
      }
      reporter.add(f->value_pos, f->path, rule);
    }
  }
  sasl.username = readSecret(reporter, section, field, "username", true, true);
  sasl.password = readSecret(reporter, section, field, "password", false, true);
}

void readTls(Reporter& reporter, const Field& field, TlsConfig& tls) {
  if (!expectMap(reporter, field, "a map with caFile, certificateFile and keyFile")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kTlsSection);
  auto path = [&](const char* key, std::string& out, Location& at) {
    if (const Field* f = section.optional(key)) {
      if (auto text = readPath(reporter, *f)) {
        out = *text;
        at = locationOf(*f);
      }
      return f;
    }
    return static_cast<const Field*>(nullptr);
  };
  path("caFile", tls.ca_file, tls.ca_file_at);
  const Field* cert = path("certificateFile", tls.certificate_file, tls.certificate_file_at);
  const Field* key = path("keyFile", tls.key_file, tls.key_file_at);
  if ((cert == nullptr) != (key == nullptr)) {
    const Field* given = cert != nullptr ? cert : key;
    reporter.add(given->key_pos, given->path,
                 "a client certificate needs both certificateFile and keyFile (mutual TLS), "
                 "or neither");
  }
  tls.key_password = readSecret(reporter, section, field, "keyPassword", false, false);
  if (tls.key_password.kind != SecretSource::Kind::kNone && key == nullptr) {
    reporter.add(field.value_pos, field.path, "keyPasswordFile/keyPasswordEnv need keyFile");
  }
  readBool(reporter, section.optional("verifyHostname"), tls.verify_hostname);
}

void readSecurity(Reporter& reporter, const Field& field, SecurityConfig& security) {
  if (!expectMap(reporter, field, "a map with protocol, sasl and tls")) {
    return;
  }
  security.at = locationOf(field);
  SectionReader section(reporter, field.value, field.path, field.value_pos, kSecuritySection);
  const Field* sasl = section.optional("sasl");
  const Field* tls = section.optional("tls");
  if (sasl != nullptr) {
    security.sasl.emplace();
    readSasl(reporter, *sasl, *security.sasl);
  }
  if (tls != nullptr) {
    security.tls.emplace();
    readTls(reporter, *tls, *security.tls);
  }
  // Without protocol, the sections present say it; with it, they must agree.
  security.protocol =
      sasl != nullptr
          ? (tls != nullptr ? SecurityProtocol::kSaslSsl : SecurityProtocol::kSaslPlaintext)
          : (tls != nullptr ? SecurityProtocol::kSsl : SecurityProtocol::kPlaintext);
  if (const Field* f = section.optional("protocol")) {
    const char* expected = "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL";
    auto text = readScalar(reporter, *f, expected);
    std::optional<SecurityProtocol> protocol;
    if (text && *text == "PLAINTEXT") {
      protocol = SecurityProtocol::kPlaintext;
    } else if (text && *text == "SSL") {
      protocol = SecurityProtocol::kSsl;
    } else if (text && *text == "SASL_PLAINTEXT") {
      protocol = SecurityProtocol::kSaslPlaintext;
    } else if (text && *text == "SASL_SSL") {
      protocol = SecurityProtocol::kSaslSsl;
    } else if (text) {
      mismatch(reporter, *f, expected);
    }
    if (protocol) {
      bool wants_sasl =
          *protocol == SecurityProtocol::kSaslPlaintext || *protocol == SecurityProtocol::kSaslSsl;
      bool wants_tls =
          *protocol == SecurityProtocol::kSsl || *protocol == SecurityProtocol::kSaslSsl;
      if (wants_sasl && sasl == nullptr) {
        reporter.add(f->value_pos, f->path, *text + " needs a sasl section with the credentials");
      } else if (!wants_sasl && sasl != nullptr) {
        reporter.add(sasl->key_pos, sasl->path,
                     "protocol " + *text + " does not use SASL; use SASL_PLAINTEXT or SASL_SSL");
      } else if (!wants_tls && tls != nullptr) {
        reporter.add(tls->key_pos, tls->path,
                     "protocol " + *text + " does not use TLS; use SSL or SASL_SSL");
      } else {
        security.protocol = *protocol;
      }
    }
  }
}

// AT_TIMESTAMP's time: epoch seconds (as AWS's StartingPositionTimestamp) or RFC 3339
// (2026-11-20T10:00:00Z, 2026-11-20T11:00:00.5+01:00). nullopt when malformed.
std::optional<std::int64_t> parseTimestampMs(const std::string& text) {
  if (isNumber(text)) {
    char* end = nullptr;
    double seconds = std::strtod(text.c_str(), &end);
    if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e11) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(std::llround(seconds * 1000));
  }
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
                  &consumed) != 6 ||
      consumed != 19 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
    return std::nullopt;
  }
  std::size_t i = 19;
  std::int64_t millis = 0;
  if (i < text.size() && text[i] == '.') {
    std::size_t first = ++i;
    std::int64_t scale = 100;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      millis += (text[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == first) {
      return std::nullopt;
    }
  }
  std::int64_t offset_minutes = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i + 6 == text.size() && (text[i] == '+' || text[i] == '-') && text[i + 3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(text.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2 || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_minutes = (text[i] == '-' ? -1 : 1) * (oh * 60 + om);
    i += 6;
  } else {
    return std::nullopt; // a time zone is required: a bare local time is ambiguous
  }
  if (i != text.size()) {
    return std::nullopt;
  }
  // Days from the civil date (Howard Hinnant's algorithm), then seconds.
  std::int64_t yy = y - (mo <= 2 ? 1 : 0);
  std::int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
  std::int64_t yoe = yy - era * 400;
  std::int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  std::int64_t days = era * 146097 + doe - 719468;
  std::int64_t seconds = days * 86400 + h * 3600 + mi * 60 + sec - offset_minutes * 60;
  if (seconds < 0) {
    return std::nullopt;
  }
  return seconds * 1000 + millis;
}

void readLibrdkafka(Reporter& reporter, const Field& field, SourceConfig& source) {
  if (!expectMap(reporter, field,
                 "a map of librdkafka settings, like {fetch.max.bytes: 1048576}")) {
    return;
  }
  source.librdkafka_at = locationOf(field);
  if (tooLong(reporter, field, kMaxLibrdkafkaSettings, "settings")) {
    return;
  }
  for (const auto& entry : entriesOf(reporter, field.value, field.path, field.value_pos)) {
    std::string key = entry.path.substr(field.path.size() + 1);
    if (auto rule = reservedLibrdkafkaRule(key)) {
      reporter.add(entry.key_pos, entry.path, *rule);
      continue;
    }
    auto text = readScalar(reporter, entry, "a string, number or boolean");
    if (!text) {
      continue;
    }
    // librdkafka itself judges the name and the value, so the error names the line.
    char err[512] = "";
    rd_kafka_conf_t* probe = rd_kafka_conf_new();
    rd_kafka_conf_res_t res = rd_kafka_conf_set(probe, key.c_str(), text->c_str(), err, sizeof err);
    rd_kafka_conf_destroy(probe);
    if (res != RD_KAFKA_CONF_OK) {
      std::string rule = std::string("librdkafka refuses it: ") + err;
      if (res != RD_KAFKA_CONF_UNKNOWN && rule.find(*text) == std::string::npos) {
        rule += ", got " + quote(*text); // "Invalid value for configuration property" alone
      }
      reporter.add(res == RD_KAFKA_CONF_UNKNOWN ? entry.key_pos : entry.value_pos, entry.path,
                   rule);
      continue;
    }
    source.librdkafka.emplace_back(key, *text);
  }
}

void readSource(Reporter& reporter, const Field& field, SourceConfig& source,
                std::optional<Pos>& group_pos) {
  if (!expectMap(reporter, field, "a map with bootstrapServers and topics")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kSourceSection);
  if (auto f = section.required("bootstrapServers", "list the Kafka brokers, like kafka-0:9092")) {
    readBootstrapServers(reporter, *f, source);
  }
  if (auto f = section.required("topics", "list the topics to read, like [orders]")) {
    readTopics(reporter, *f, source);
  }
  if (auto f = section.optional("consumerGroupId")) {
    group_pos = f->value_pos;
    auto text = readScalar(reporter, *f, "a consumer group id");
    if (text && text->empty()) {
      reporter.add(f->value_pos, f->path,
                   "must be a non-empty consumer group id; leave the key out for kesm-<name>");
    } else if (text) {
      source.consumer_group_id = *text;
    }
  }
  const Field* position = section.optional("startingPosition");
  if (position != nullptr) {
    const char* expected = "TRIM_HORIZON, LATEST or AT_TIMESTAMP";
    auto text = readScalar(reporter, *position, expected);
    if (text && *text == "TRIM_HORIZON") {
      source.starting_position = StartingPosition::kTrimHorizon;
    } else if (text && *text == "LATEST") {
      source.starting_position = StartingPosition::kLatest;
    } else if (text && *text == "AT_TIMESTAMP") {
      source.starting_position = StartingPosition::kAtTimestamp;
    } else if (text) {
      std::string rule =
          "must be TRIM_HORIZON, LATEST or AT_TIMESTAMP, got " + describe(position->value);
      std::string upper = *text;
      for (auto& c : upper) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
      if (upper == "TRIM_HORIZON" || upper == "LATEST" || upper == "AT_TIMESTAMP") {
        rule += " (the values are upper case)";
      }
      reporter.add(position->value_pos, position->path, rule);
    }
  }
  const Field* timestamp = section.optional("startingPositionTimestamp");
  bool at_timestamp = source.starting_position == StartingPosition::kAtTimestamp;
  if (timestamp != nullptr && !at_timestamp) {
    reporter.add(timestamp->key_pos, timestamp->path,
                 "applies only with startingPosition: AT_TIMESTAMP");
  } else if (timestamp != nullptr) {
    const char* expected =
        "a time like 2026-11-20T10:00:00Z (RFC 3339, with a zone) or epoch seconds";
    auto text = readScalar(reporter, *timestamp, expected);
    auto ms = text ? parseTimestampMs(*text) : std::nullopt;
    if (text && !ms) {
      mismatch(reporter, *timestamp, expected);
    } else if (ms) {
      source.starting_position_timestamp_ms = *ms;
    }
  } else if (at_timestamp) {
    reporter.add(position->value_pos, joinPath(field.path, "startingPositionTimestamp"),
                 "AT_TIMESTAMP needs startingPositionTimestamp, like 2026-11-20T10:00:00Z");
  }
  if (auto f = section.optional("security")) {
    readSecurity(reporter, *f, source.security);
  }
  if (auto f = section.optional("partitionAssignor")) {
    const char* expected = "range, roundrobin or cooperative-sticky";
    auto text = readScalar(reporter, *f, expected);
    if (text && (*text == "range" || *text == "roundrobin" || *text == "cooperative-sticky")) {
      source.partition_assignor = *text;
    } else if (text) {
      mismatch(reporter, *f, expected);
    }
  }
  if (auto f = section.optional("librdkafka")) {
    readLibrdkafka(reporter, *f, source);
  }
}

void readFunction(Reporter& reporter, const Field& field, FunctionConfig& function) {
  if (!expectMap(reporter, field, "a map with url and optionally timeout")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kFunctionSection);
  if (auto f = section.required("url", "give the function's URL, like http://my-fn:8080/invoke")) {
    auto text = readScalar(reporter, *f, "an http:// URL like http://host:8080/path");
    if (text) {
      if (auto error = httpUrlError(*text)) {
        reporter.add(f->value_pos, f->path, *error);
      } else {
        function.url = *text;
      }
    }
  }
  readDuration(reporter, section.optional("timeout"), kTimeoutRange, function.timeout);
  if (const Field* f = section.optional("nullValues")) {
    auto text = readScalar(reporter, *f, "empty or omit");
    if (text && *text == "empty") {
      function.null_values = NullValues::kEmpty;
    } else if (text && *text == "omit") {
      function.null_values = NullValues::kOmit;
    } else if (text) {
      reporter.add(f->value_pos, f->path, "must be empty or omit, got " + describe(f->value));
    }
  }
  readBool(reporter, section.optional("detectErrorBody"), function.detect_error_body);
}

void readBatching(Reporter& reporter, const Field& field, BatchingConfig& batching) {
  if (!expectMap(reporter, field, "a map with batchSize and maximumBatchingWindow")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kBatchingSection);
  readInt(reporter, section.optional("batchSize"), 1, kMaxBatchSize, batching.batch_size);
  readDuration(reporter, section.optional("maximumBatchingWindow"), kBatchingWindowRange,
               batching.maximum_batching_window);
}

void readScaling(Reporter& reporter, const Field& field, ScalingConfig& scaling) {
  if (!expectMap(reporter, field, "a map with minimumPollers, maximumPollers and gracePeriod")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kScalingSection);
  const Field* min_field = section.optional("minimumPollers");
  const Field* max_field = section.optional("maximumPollers");
  bool min_ok = readInt(reporter, min_field, 1, kMaxMinimumPollers, scaling.minimum_pollers) ||
                min_field == nullptr;
  bool max_ok = readInt(reporter, max_field, 1, kMaxMaximumPollers, scaling.maximum_pollers) ||
                max_field == nullptr;
  if (min_ok && max_ok && scaling.maximum_pollers < scaling.minimum_pollers) {
    // The default maximum (200) is never below a valid minimum, so max_field is set here.
    const Field& at = max_field != nullptr ? *max_field : *min_field;
    reporter.add(at.value_pos, at.path,
                 "must be at least minimumPollers (" + std::to_string(scaling.minimum_pollers) +
                     "), got " + std::to_string(scaling.maximum_pollers));
  }
  readDuration(reporter, section.optional("gracePeriod"), kGracePeriodRange, scaling.grace_period);
  readDuration(reporter, section.optional("evaluationInterval"), kEvaluationIntervalRange,
               scaling.evaluation_interval);
  readDuration(reporter, section.optional("scaleDownStabilization"), kScaleDownStabilizationRange,
               scaling.scale_down_stabilization);
  readInt(reporter, section.optional("maxConcurrentBatches"), 1, kMaxConcurrentBatches,
          scaling.max_concurrent_batches);
}

void readRetry(Reporter& reporter, const Field& field, RetryConfig& retry) {
  if (!expectMap(reporter, field,
                 "a map with initialBackoff, maximumBackoff, "
                 "backoffMultiplier and jitter")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kRetrySection);
  const Field* initial_field = section.optional("initialBackoff");
  const Field* maximum_field = section.optional("maximumBackoff");
  bool initial_ok = readDuration(reporter, initial_field, kBackoffRange, retry.initial_backoff) ||
                    initial_field == nullptr;
  bool maximum_ok = readDuration(reporter, maximum_field, kBackoffRange, retry.maximum_backoff) ||
                    maximum_field == nullptr;
  if (initial_ok && maximum_ok && retry.initial_backoff > retry.maximum_backoff) {
    auto text = [](const Field* f, Millis value) {
      return f != nullptr ? f->value.Scalar() : formatDuration(value) + ", the default";
    };
    if (initial_field != nullptr) {
      reporter.add(initial_field->value_pos, initial_field->path,
                   "must not be longer than maximumBackoff (" +
                       text(maximum_field, retry.maximum_backoff) + "), got " +
                       initial_field->value.Scalar());
    } else {
      reporter.add(maximum_field->value_pos, maximum_field->path,
                   "must not be shorter than initialBackoff (" +
                       text(initial_field, retry.initial_backoff) + "), got " +
                       maximum_field->value.Scalar());
    }
  }
  readNumber(reporter, section.optional("backoffMultiplier"), 1, 10, retry.backoff_multiplier);
  readNumber(reporter, section.optional("jitter"), 0, 1, retry.jitter);
  if (const Field* f = section.optional("maximumRetryAttempts")) {
    readInt(reporter, f, kUnbounded, 10000, retry.maximum_retry_attempts); // -1: unbounded
  }
  if (const Field* f = section.optional("maximumRecordAge")) {
    if (f->value.IsScalar() && f->value.Scalar() == "-1") {
      retry.maximum_record_age.reset();
    } else {
      Millis age{};
      if (readDuration(reporter, f, kRecordAgeRange, age)) {
        retry.maximum_record_age = age;
      }
    }
  }
  readBool(reporter, section.optional("bisectBatchOnFunctionError"),
           retry.bisect_batch_on_function_error);
}

void readFilters(Reporter& reporter, const Field& field, Mapping& mapping) {
  if (field.value.IsNull()) {
    reporter.add(field.key_pos, field.path,
                 "must list at least one pattern; leave filters out to deliver every record");
    return;
  }
  std::vector<filter::FilterError> errors;
  auto filters = filter::compileFilters(field.value, field.path, errors);
  for (const auto& e : errors) {
    Pos pos = e.line > 0 ? Pos{e.line, e.column} : field.value_pos;
    reporter.add(pos, e.key, e.rule);
  }
  mapping.filters = std::move(filters);
}

void readOnFailure(Reporter& reporter, const Field& field, const SourceConfig& source,
                   OnFailureConfig& on_failure) {
  if (!expectMap(reporter, field, "a map with destination: kafka://TOPIC")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kOnFailureSection);
  const Field* f = section.required("destination", "name a topic, like kafka://orders-failed");
  if (f == nullptr) {
    return;
  }
  const char* expected = "kafka://TOPIC, a topic on the mapping's own cluster";
  auto text = readScalar(reporter, *f, expected);
  if (!text) {
    return;
  }
  constexpr std::string_view kScheme = "kafka://";
  if (text->compare(0, kScheme.size(), kScheme) != 0) {
    std::string rule = "must be " + std::string(expected) + ", got " + describe(f->value);
    if (text->rfind("arn:", 0) == 0) {
      rule += " (AWS destinations are not reachable from kesm)";
    }
    reporter.add(f->value_pos, f->path, rule);
    return;
  }
  std::string topic = text->substr(kScheme.size());
  if (!validTopicName(topic)) {
    reporter.add(f->value_pos, f->path,
                 "the topic must be a Kafka topic name: 1 to 249 letters, digits, '.', '_' or "
                 "'-', got " +
                     quote(topic));
    return;
  }
  if (std::find(source.topics.begin(), source.topics.end(), topic) != source.topics.end()) {
    reporter.add(f->value_pos, f->path,
                 "must not be a source topic of this mapping ('" + topic +
                     "'): failed records would be read again and fail again");
    return;
  }
  on_failure.destination_topic = topic;
  on_failure.at = locationOf(*f);
}

// Where a mapping's name and consumer group were written, for the uniqueness rules.
struct MappingPlaces {
  Pos name;
  std::optional<Pos> group; // set when consumerGroupId was written
};

void readMapping(Reporter& reporter, const Field& field, Mapping& mapping, MappingPlaces& places) {
  places.name = field.value_pos;
  if (!expectMap(reporter, field, "a map with name, source and function")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kMappingSection);
  if (auto f = section.required("name", "give the mapping a unique name, like orders")) {
    const char* expected = "a name of 1 to 64 letters, digits, '.', '_' or '-'";
    places.name = f->value_pos;
    auto text = readScalar(reporter, *f, expected);
    if (text && !validMappingName(*text)) {
      mismatch(reporter, *f, expected);
    } else if (text) {
      mapping.name = *text;
    }
  }
  if (auto f = section.required("source", "say what to read, with bootstrapServers and topics")) {
    readSource(reporter, *f, mapping.source, places.group);
  }
  if (auto f = section.required("function", "say which function to invoke, with url")) {
    readFunction(reporter, *f, mapping.function);
  }
  if (auto f = section.optional("batching")) {
    readBatching(reporter, *f, mapping.batching);
  }
  if (auto f = section.optional("scaling")) {
    readScaling(reporter, *f, mapping.scaling);
  }
  if (auto f = section.optional("retry")) {
    readRetry(reporter, *f, mapping.retry);
  }
  if (auto f = section.optional("onFailure")) {
    readOnFailure(reporter, *f, mapping.source, mapping.on_failure);
  }
  if (auto f = section.optional("filters")) {
    readFilters(reporter, *f, mapping);
  }
}

void readMappings(Reporter& reporter, const Field& field, std::vector<Mapping>& mappings) {
  if (!field.value.IsSequence()) {
    mismatch(reporter, field, "a list of mappings");
    return;
  }
  if (field.value.size() == 0) {
    reporter.add(field.value_pos, field.path, "must list at least one mapping, got an empty list");
    return;
  }
  if (tooLong(reporter, field, kMaxMappings, "mappings (run another kesm for more)")) {
    return;
  }
  std::map<std::string, std::string> names;  // name -> path of its mapping
  std::map<std::string, std::string> groups; // consumer group -> path of its mapping
  std::size_t index = 0;
  for (const auto& item : field.value) {
    Field entry{indexPath(field.path, index++), item, field.value_pos,
                item.IsNull() ? field.value_pos : posOf(item, field.value_pos)};
    Mapping mapping;
    MappingPlaces places;
    readMapping(reporter, entry, mapping, places);
    // A name, and the consumer group it implies, belong to one mapping only: two mappings in
    // one group would split the partitions between them.
    bool duplicate_name = false;
    if (!mapping.name.empty()) {
      auto [first, inserted] = names.emplace(mapping.name, entry.path);
      duplicate_name = !inserted;
      if (duplicate_name) {
        reporter.add(places.name, entry.path + ".name",
                     "mapping name '" + mapping.name + "' is already used by " + first->second);
      }
    }
    bool explicit_group = !mapping.source.consumer_group_id.empty();
    if (!explicit_group && !mapping.name.empty()) {
      mapping.source.consumer_group_id = "kesm-" + mapping.name;
    }
    if (!mapping.source.consumer_group_id.empty()) {
      auto [first, inserted] = groups.emplace(mapping.source.consumer_group_id, entry.path);
      if (!inserted && (explicit_group || !duplicate_name)) {
        reporter.add(places.group.value_or(places.name), entry.path + ".source.consumerGroupId",
                     "consumer group '" + mapping.source.consumer_group_id +
                         "' is already used by " + first->second +
                         "; each mapping needs its own consumer group");
      }
    }
    mappings.push_back(std::move(mapping));
  }
}

// ---- Text checks before YAML ------------------------------------------------------------------

// YAML is Unicode text. A NUL byte or bytes that are not UTF-8 mean a binary or mis-encoded
// file; say so instead of letting the parser report a confusing escape error.
std::optional<Diagnostic> checkText(const std::string& text, const std::string& file) {
  auto starts_with = [&](std::string_view bom) { return text.compare(0, bom.size(), bom) == 0; };
  using namespace std::string_view_literals;
  if (starts_with("\xFF\xFE"sv) || starts_with("\xFE\xFF"sv) || starts_with("\x00\x00\xFE\xFF"sv)) {
    return std::nullopt; // UTF-16 or UTF-32 with a byte order mark: yaml-cpp decodes it
  }
  int line = 1;
  int column = 1;
  std::size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t length = 1;
    if (c == 0) {
      return Diagnostic{file, line, column, "",
                        "the file is not text: it contains a NUL byte; is it a binary file?"};
    }
    if (c >= 0x80) {
      std::uint32_t min = 0;
      if ((c & 0xE0) == 0xC0) {
        length = 2;
        min = 0x80;
      } else if ((c & 0xF0) == 0xE0) {
        length = 3;
        min = 0x800;
      } else if ((c & 0xF8) == 0xF0) {
        length = 4;
        min = 0x10000;
      } else {
        length = 0;
      }
      std::uint32_t code = length == 0 ? 0 : c & (0xFF >> (length + 1));
      bool ok = length != 0 && i + length <= text.size();
      for (std::size_t k = 1; ok && k < length; ++k) {
        auto next = static_cast<unsigned char>(text[i + k]);
        ok = (next & 0xC0) == 0x80;
        code = (code << 6) | (next & 0x3F);
      }
      ok = ok && code >= min && code <= 0x10FFFF && (code < 0xD800 || code > 0xDFFF);
      if (!ok) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", c);
        return Diagnostic{file, line, column, "",
                          std::string("the file is not UTF-8 text: invalid byte ") + buf +
                              "; save it as UTF-8"};
      }
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += length;
  }
  return std::nullopt;
}

// Where each YAML document of a text starts, found without building any node.
//
// yaml-cpp 0.7 never gets past a ',' outside of brackets (",", "- a\n,"): it reports an empty
// document there again and again, and YAML::LoadAll grows until memory runs out. A document that
// starts where the one before it started is therefore where the parser is stuck.
struct DocumentScan {
  std::vector<YAML::Mark> documents; // the first mark of each document
  std::optional<YAML::Mark> stuck_at;
};

class FirstMarks : public YAML::EventHandler {
public:
  std::optional<YAML::Mark> first;

  void OnDocumentStart(const YAML::Mark& mark) override {
    first.reset();
    see(mark);
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { see(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { see(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    see(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    see(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    see(mark);
  }
  void OnMapEnd() override {}

private:
  void see(const YAML::Mark& mark) {
    if (!first) {
      first = mark;
    }
  }
};

DocumentScan scanDocuments(const std::string& text) {
  constexpr std::size_t kMaxDocuments = 10000;
  std::istringstream in(text);
  YAML::Parser parser(in);
  FirstMarks marks;
  DocumentScan scan;
  while (scan.documents.size() < kMaxDocuments && parser.HandleNextDocument(marks)) {
    YAML::Mark mark = marks.first.value_or(YAML::Mark::null_mark());
    if (!scan.documents.empty() && mark.pos == scan.documents.back().pos) {
      scan.stuck_at = mark;
      break;
    }
    scan.documents.push_back(mark);
  }
  return scan;
}

// ---- YAML syntax errors ------------------------------------------------------------------------

// yaml-cpp names what its parser expected ("end of sequence flow not found") and where it gave
// up, often the end of the file. To say which bracket or quote is never closed, follow the
// brackets and quotes of the text up to that point. A heuristic, used for messages only: a
// '[', '{' or quote opens something where a value starts (after "key: ", "- ", ',', another
// bracket or at the start of a line); block scalars (| and >) are not followed.
struct Opened {
  char c = 0;
  Pos pos;
};

struct FlowState {
  std::vector<Opened> brackets; // still open, innermost last
  std::optional<Opened> quote;  // a quoted string still open
};

FlowState followFlow(const std::string& text, std::size_t end) {
  FlowState state;
  Pos pos{1, 1};
  end = std::min(end, text.size());
  auto value_starts = [&](std::size_t i) {
    std::size_t j = i;
    while (j > 0 && (text[j - 1] == ' ' || text[j - 1] == '\t')) {
      --j;
    }
    if (j == 0 || text[j - 1] == '\n') {
      return true;
    }
    char before = text[j - 1];
    if (before == ',' || before == '[' || before == '{') {
      return true;
    }
    // An indicator counts only when a space follows it: "a:b" and "a-b" are plain text.
    return (before == ':' || before == '-' || before == '?') && j < i;
  };
  // Columns count bytes, as yaml-cpp's marks do.
  auto step = [&](std::size_t at) {
    if (text[at] == '\n') {
      ++pos.line;
      pos.column = 1;
    } else {
      ++pos.column;
    }
  };
  for (std::size_t i = 0; i < end; step(i), ++i) {
    char c = text[i];
    if (state.quote) {
      bool escape = c == '\\' && state.quote->c == '"' && i + 1 < end;
      bool doubled = c == '\'' && state.quote->c == '\'' && i + 1 < end && text[i + 1] == '\'';
      if (escape || doubled) {
        step(i++); // the next character is part of the string: "\"" or 'it''s'
      } else if (c == state.quote->c) {
        state.quote.reset();
      }
    } else if (c == '#' &&
               (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t' || text[i - 1] == '\n')) {
      while (i + 1 < end && text[i + 1] != '\n') {
        step(i++);
      }
    } else if ((c == '\'' || c == '"') && value_starts(i)) {
      state.quote = Opened{c, pos};
    } else if ((c == '[' || c == '{') && value_starts(i)) {
      state.brackets.push_back(Opened{c, pos});
    } else if ((c == ']' || c == '}') && !state.brackets.empty() &&
               state.brackets.back().c == (c == ']' ? '[' : '{')) {
      state.brackets.pop_back();
    }
  }
  return state;
}

std::string closerOf(char open) { return open == '[' ? "']'" : "'}'"; }

std::string where(const Opened& o) {
  return "line " + std::to_string(o.pos.line) + ", column " + std::to_string(o.pos.column);
}

// A clearer rule, and where to point, for the yaml-cpp errors a hand-edited file runs into.
std::pair<Pos, std::string> explainYamlError(const YAML::Exception& e, const std::string& text) {
  Pos pos = e.mark.is_null() ? Pos{} : Pos{e.mark.line + 1, e.mark.column + 1};
  std::size_t at =
      e.mark.is_null() || e.mark.pos < 0 ? text.size() : static_cast<std::size_t>(e.mark.pos);
  char here = at < text.size() ? text[at] : '\0';
  const std::string& msg = e.msg;
  if (msg == YAML::ErrorMsg::END_OF_SEQ_FLOW || msg == YAML::ErrorMsg::END_OF_MAP_FLOW) {
    FlowState state = followFlow(text, text.size());
    if (!state.brackets.empty()) {
      const Opened& open = state.brackets.back();
      return {open.pos, "invalid YAML: this '" + std::string(1, open.c) + "' is never closed; a " +
                            closerOf(open.c) + " is missing"};
    }
    char open = msg == YAML::ErrorMsg::END_OF_SEQ_FLOW ? '[' : '{';
    return {pos, "invalid YAML: a '" + std::string(1, open) + "' is never closed; a " +
                     closerOf(open) + " is missing"};
  }
  if (msg == YAML::ErrorMsg::FLOW_END && (here == ']' || here == '}')) {
    FlowState state = followFlow(text, at);
    std::string rule = "invalid YAML: unexpected '" + std::string(1, here) + "'";
    if (state.brackets.empty()) {
      return {pos, rule + ": no '" + (here == ']' ? "[" : "{") + "' is open here"};
    }
    const Opened& open = state.brackets.back();
    return {pos, rule + ": the '" + std::string(1, open.c) + "' opened at " + where(open) +
                     " must be closed with " + closerOf(open.c) + " first"};
  }
  if (msg == YAML::ErrorMsg::BLOCK_ENTRY) {
    FlowState state = followFlow(text, at);
    if (!state.brackets.empty()) {
      const Opened& open = state.brackets.back();
      return {pos, "invalid YAML: a '- ' list entry cannot stand inside the '" +
                       std::string(1, open.c) + "' opened at " + where(open) + "; is its " +
                       closerOf(open.c) + " missing?"};
    }
    return {pos, "invalid YAML: a '- ' list entry cannot start here; check its indentation"};
  }
  if (msg == YAML::ErrorMsg::EOF_IN_SCALAR) {
    FlowState state = followFlow(text, text.size());
    if (state.quote) {
      return {state.quote->pos,
              std::string("invalid YAML: this quoted string is never closed; a closing ") +
                  state.quote->c + " is missing"};
    }
  }
  if (msg == YAML::ErrorMsg::END_OF_MAP) {
    return {pos, "invalid YAML: this line does not fit the map above it; check its indentation"};
  }
  if (msg == YAML::ErrorMsg::END_OF_SEQ) {
    return {pos, "invalid YAML: this line does not fit the list above it; check its indentation"};
  }
  if (msg == YAML::ErrorMsg::MAP_VALUE) {
    std::size_t line_start = text.rfind('\n', at == 0 ? 0 : at - 1);
    line_start = line_start == std::string::npos ? 0 : line_start + 1;
    std::size_t indent_end = text.find_first_not_of(" \t", line_start);
    if (text.find('\t', line_start) < std::min(indent_end, text.size())) {
      return {Pos{pos.line, 1}, "invalid YAML: a tab in the indentation; indent with spaces"};
    }
    return {pos, "invalid YAML: unexpected ':'; quote a value that holds ': ', like 'a: b'"};
  }
  return {pos, "invalid YAML: " + msg};
}

Config parse(const std::string& yaml_text, const std::string& file_name) {
  Reporter reporter(file_name);
  // The size first: a device or a huge file is refused before any pass over all of it.
  if (auto diagnostic = detail::checkSize(yaml_text, file_name)) {
    throw ConfigError({*diagnostic});
  }
  if (auto diagnostic = checkText(yaml_text, file_name)) {
    throw ConfigError({*diagnostic});
  }
  YAML::Node root;
  try {
    DocumentScan scan = scanDocuments(yaml_text);
    if (scan.stuck_at) {
      const YAML::Mark& mark = *scan.stuck_at;
      std::string rule = "invalid YAML: the parser cannot read past this point";
      if (mark.pos >= 0 && static_cast<std::size_t>(mark.pos) < yaml_text.size() &&
          std::isgraph(static_cast<unsigned char>(yaml_text[mark.pos]))) {
        rule = std::string("invalid YAML: unexpected '") + yaml_text[mark.pos] + "'";
        if (yaml_text[mark.pos] == ',') {
          rule += " outside of [ ] or { }";
        }
      }
      reporter.add(Pos{mark.line + 1, mark.column + 1}, "", rule);
      reporter.raise();
    }
    if (scan.documents.size() > 1) {
      const YAML::Mark& mark = scan.documents[1];
      reporter.add(Pos{mark.line + 1, mark.column + 1}, "",
                   "the file holds " + std::to_string(scan.documents.size()) +
                       " YAML documents; kesm reads exactly one");
    }
    // Before any node is walked: aliases nested in aliases expand exponentially.
    if (auto diagnostic = detail::checkExpansion(yaml_text, file_name)) {
      throw ConfigError({*diagnostic});
    }
    root = YAML::Load(yaml_text);
  } catch (const YAML::DeepRecursion& e) {
    Pos pos = e.mark.is_null() ? Pos{} : Pos{e.mark.line + 1, e.mark.column + 1};
    reporter.add(pos, "", "invalid YAML: nested too deeply");
    reporter.raise();
  } catch (const YAML::Exception& e) {
    auto [pos, rule] = explainYamlError(e, yaml_text);
    reporter.add(pos, "", rule);
    reporter.raise();
  }
  if (!root.IsDefined() || root.IsNull()) {
    reporter.add(Pos{}, "", "the file is empty; a kesm config needs at least a mappings list");
    reporter.raise();
  }
  Pos root_pos = posOf(root, Pos{});
  Config config;
  config.file = file_name;
  if (!root.IsMap()) {
    reporter.add(root_pos, "",
                 "the top level must be a map with the keys server and mappings, got " +
                     describe(root));
    reporter.raise();
  }
  SectionReader top(reporter, root, "", root_pos, kTopSection);
  if (auto f = top.optional("server")) {
    readServer(reporter, *f, config.server);
  }
  if (auto f = top.required("mappings", "add a list of at least one mapping")) {
    readMappings(reporter, *f, config.mappings);
  }
  if (!reporter.empty()) {
    reporter.raise();
  }
  return config;
}

} // namespace

Config parseConfig(const std::string& yaml_text, const std::string& file_name) {
  try {
    return parse(yaml_text, file_name);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    // yaml-cpp on input nobody foresaw, or a conversion: still one clear diagnostic.
    throw ConfigError({Diagnostic{file_name, 1, 1, "", std::string("cannot parse: ") + e.what()}});
  }
}

Config loadConfigFile(const std::string& path) {
  std::string text = detail::readCapped(path);
  Config config = parseConfig(text, path);
  loadSecrets(config);
  return config;
}

namespace {

// The whole file, or the reason it cannot be read.
std::optional<std::string> readWholeFile(const std::string& path, std::string& error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      error = std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) {
      break;
    }
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > 1024 * 1024) {
      error = "larger than 1 MiB";
      ::close(fd);
      return std::nullopt;
    }
  }
  ::close(fd);
  return text;
}

Diagnostic at(const Config& config, const Location& where, std::string rule) {
  return Diagnostic{config.file, where.line, where.column, where.key, std::move(rule)};
}

void loadSecret(const Config& config, SecretSource& secret, std::vector<Diagnostic>& errors) {
  std::string error;
  switch (secret.kind) {
  case SecretSource::Kind::kNone:
  case SecretSource::Kind::kLiteral:
    return;
  case SecretSource::Kind::kFile: {
    auto text = readWholeFile(secret.ref, error);
    if (!text) {
      errors.push_back(at(config, secret.at, "cannot read " + secret.ref + ": " + error));
      return;
    }
    // Files written by `echo` end in a newline that is not part of the secret.
    while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) {
      text->pop_back();
    }
    secret.value = std::move(*text);
    break;
  }
  case SecretSource::Kind::kEnv: {
    const char* value = std::getenv(secret.ref.c_str());
    if (value == nullptr) {
      errors.push_back(at(config, secret.at, "environment variable " + secret.ref + " is not set"));
      return;
    }
    secret.value = value;
    break;
  }
  }
  if (secret.value.empty()) {
    errors.push_back(at(config, secret.at,
                        (secret.kind == SecretSource::Kind::kFile ? "file " : "variable ") +
                            secret.ref + " is empty"));
  }
}

void checkReadable(const Config& config, const std::string& path, const Location& where,
                   std::vector<Diagnostic>& errors) {
  std::string error;
  if (!path.empty() && !readWholeFile(path, error)) {
    errors.push_back(at(config, where, "cannot read " + path + ": " + error));
  }
}

} // namespace

void loadSecrets(Config& config) {
  std::vector<Diagnostic> errors;
  for (auto& mapping : config.mappings) {
    auto& security = mapping.source.security;
    if (security.sasl) {
      loadSecret(config, security.sasl->username, errors);
      loadSecret(config, security.sasl->password, errors);
    }
    if (security.tls) {
      auto& tls = *security.tls;
      loadSecret(config, tls.key_password, errors);
      checkReadable(config, tls.ca_file, tls.ca_file_at, errors);
      checkReadable(config, tls.certificate_file, tls.certificate_file_at, errors);
      checkReadable(config, tls.key_file, tls.key_file_at, errors);
    }
  }
  if (!errors.empty()) {
    throw ConfigError(std::move(errors));
  }
}

std::vector<std::pair<std::string, std::string>> kafkaClientSettings(const SourceConfig& source) {
  std::string servers;
  for (const auto& s : source.bootstrap_servers) {
    servers += (servers.empty() ? "" : ",") + s;
  }
  std::vector<std::pair<std::string, std::string>> out{{"bootstrap.servers", servers}};
  const auto& security = source.security;
  switch (security.protocol) {
  case SecurityProtocol::kPlaintext:
    out.emplace_back("security.protocol", "plaintext");
    break;
  case SecurityProtocol::kSsl:
    out.emplace_back("security.protocol", "ssl");
    break;
  case SecurityProtocol::kSaslPlaintext:
    out.emplace_back("security.protocol", "sasl_plaintext");
    break;
  case SecurityProtocol::kSaslSsl:
    out.emplace_back("security.protocol", "sasl_ssl");
    break;
  }
  if (security.sasl) {
    const char* mechanism = security.sasl->mechanism == SaslMechanism::kPlain ? "PLAIN"
                            : security.sasl->mechanism == SaslMechanism::kScramSha256
                                ? "SCRAM-SHA-256"
                                : "SCRAM-SHA-512";
    out.emplace_back("sasl.mechanisms", mechanism);
    out.emplace_back("sasl.username", security.sasl->username.value);
    out.emplace_back("sasl.password", security.sasl->password.value);
  }
  if (security.tls) {
    const auto& tls = *security.tls;
    if (!tls.ca_file.empty()) {
      out.emplace_back("ssl.ca.location", tls.ca_file);
    }
    if (!tls.certificate_file.empty()) {
      out.emplace_back("ssl.certificate.location", tls.certificate_file);
      out.emplace_back("ssl.key.location", tls.key_file);
    }
    if (tls.key_password.kind != SecretSource::Kind::kNone) {
      out.emplace_back("ssl.key.password", tls.key_password.value);
    }
    out.emplace_back("ssl.endpoint.identification.algorithm",
                     tls.verify_hostname ? "https" : "none");
  }
  for (const auto& kv : source.librdkafka) {
    out.push_back(kv);
  }
  return out;
}

} // namespace kesm::config
