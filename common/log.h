#pragma once

// One line per event on stderr: "2026-11-22T18:00:00.123Z WARN  poller orders-1: message".
// Thread-safe; lines never interleave. Never log secrets, offsets are fine.

#include <chrono>
#include <sstream>
#include <string>
#include <string_view>

namespace kesm {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// "2026-11-22T18:00:00.123Z": the time as every log line and /status write it.
std::string utcTimestamp(std::chrono::system_clock::time_point t);

void setLogLevel(LogLevel level);
bool logEnabled(LogLevel level);
void logLine(LogLevel level, std::string_view component, std::string_view message);

// Streams its arguments into one line: log(LogLevel::kInfo, "poller", "assigned ", n).
template <class... Args> void log(LogLevel level, std::string_view component, Args&&... args) {
  if (!logEnabled(level)) {
    return;
  }
  std::ostringstream out;
  (out << ... << args);
  logLine(level, component, out.str());
}

} // namespace kesm
