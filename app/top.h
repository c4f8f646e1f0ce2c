#pragma once

// `kesm top`: the live line of any running kesm, read from its /status every interval.
// Runs on the main thread; the termination signals must be blocked (main() does).

#include <chrono>
#include <csignal>
#include <cstdint>
#include <string>

namespace kesm::app {

struct TopOptions {
  std::string url; // http(s)://HOST:PORT[/prefix]; /status is read below it
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds timeout{5000}; // one whole request
  bool once = false; // two samples `interval` apart (for events/s), print, exit
  std::uint64_t body_limit = 16ull * 1024 * 1024; // a larger /status is refused
};

// The /status URL below `url` ("http://h:9464" -> "http://h:9464/status"; a URL already
// ending in /status is kept). Throws std::invalid_argument when `url` is not http(s).
std::string statusUrl(const std::string& url);

// Prints until SIGINT/SIGTERM (exit 0). A failed read is one line naming the URL and why;
// with `once` it ends the command (exit 1), otherwise kesm top keeps trying and shows
// "unreachable since". On a terminal the lines are redrawn in place, else appended.
int runTop(const TopOptions& options, const sigset_t& signals);

} // namespace kesm::app
