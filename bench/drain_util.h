#pragma once

// bench/drain's small shared pieces: its clock, the interrupt flag, progress notes, waiting,
// shell commands and ports. Called from the main thread unless a comment says otherwise.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace kesm::bench::drain {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Low and high watermark of each partition of a topic, by partition number.
using Watermarks = std::vector<std::pair<std::int64_t, std::int64_t>>;

// Set by SIGINT and SIGTERM: loads and waits stop early.
extern std::atomic<bool> g_interrupted;

double secondsSince(Clock::time_point t0, Clock::time_point t);

// Whether `program` is an executable in a directory of $PATH.
bool onPath(const std::string& program);

// Runs `command` with the shell; returns its stdout and sets `status` to its exit code.
std::string runCommand(const std::string& command, int& status);

// The last non-empty line of `text`.
std::string lastLine(const std::string& text);

// A loopback TCP port that was free a moment ago.
std::uint16_t freePort();

// Waits for the condition, in steps of 50 ms; false on timeout or interrupt.
bool waitFor(milliseconds timeout, const std::function<bool()>& condition);

// Progress lines go to stderr, so --json leaves stdout to the result.
template <class... T> void note(const T&... parts) {
  std::ostringstream line;
  (line << ... << parts);
  std::cerr << "drain: " << line.str() << std::endl;
}

} // namespace kesm::bench::drain
