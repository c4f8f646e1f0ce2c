#pragma once

// Durations as a kesm config writes them: "500ms", "1.5s", "1m30s", "0". Pure; any thread.

#include <chrono>
#include <optional>
#include <string>

namespace kesm::config {

using Millis = std::chrono::milliseconds;

// A sum of <number><unit> terms (units ms, s, m, h), or a bare "0"; every term a whole number
// of milliseconds. nullopt when malformed, negative or beyond ~31 million years.
std::optional<Millis> parseDuration(const std::string& text);
// The inverse for messages: the largest unit that divides the value, 30000ms -> "30s".
std::string formatDuration(Millis value);

} // namespace kesm::config
