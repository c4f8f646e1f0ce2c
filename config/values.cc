#include "config/values.h"

#include "config/yaml_diagnostics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace kesm::config::detail {

namespace {

bool isNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

} // namespace

bool validMappingName(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), isNameChar);
}

bool validTopicName(std::string_view topic) {
  return !topic.empty() && topic.size() <= 249 && topic != "." && topic != ".." &&
         std::all_of(topic.begin(), topic.end(), isNameChar);
}

namespace {

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

} // namespace

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

std::optional<std::string> httpUrlError(std::string_view url) {
  const std::string shown = redactUserinfo(url);
  if (shown != url) {
    return "must not hold credentials (user:password@ before the host): kesm sends no "
           "credentials to the function; got " +
           quote(shown);
  }
  const std::string shape =
      "must be an http:// or https:// URL like https://host:8443/path, got " + quote(url);
  std::size_t scheme = url.substr(0, 7) == "http://" ? 7 : url.substr(0, 8) == "https://" ? 8 : 0;
  if (scheme == 0) {
    return shape;
  }
  auto rest = url.substr(scheme);
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

bool validEnvName(std::string_view name) {
  return !name.empty() && !std::isdigit(static_cast<unsigned char>(name.front())) &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
         });
}

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

} // namespace kesm::config::detail
