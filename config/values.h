#pragma once

// The rules for single values of a kesm config: names, Kafka topic names, host:port, the
// function's URL, environment variable names, AT_TIMESTAMP's time. Internal to config/;
// pure, any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kesm::config::detail {

// [A-Za-z0-9._-]{1,64}.
bool validMappingName(std::string_view name);
// Kafka's own rule for topic names: 1 to 249 of [A-Za-z0-9._-], not "." or "..".
bool validTopicName(std::string_view topic);
// "host:port" with lo <= port <= 65535; IPv6 hosts in brackets.
bool validHostPort(std::string_view text, int lo);
// Letters, digits and '_', not starting with a digit.
bool validEnvName(std::string_view name);

// The URL with any user:password@ before the host replaced by ***@, for messages: a password
// written in the URL must not reach a terminal or a log.
std::string redactUserinfo(std::string_view url);
// http[s]://host[:port][/path]; the rule it breaks when the URL is not one (never showing a
// password written in it).
std::optional<std::string> httpUrlError(std::string_view url);

// AT_TIMESTAMP's time in epoch milliseconds: epoch seconds (as AWS's
// StartingPositionTimestamp) or RFC 3339 with a zone (2026-11-20T10:00:00Z,
// 2026-11-20T11:00:00.5+01:00). nullopt when malformed or before 1970.
std::optional<std::int64_t> parseTimestampMs(const std::string& text);

} // namespace kesm::config::detail
