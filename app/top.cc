#include "app/top.h"

#include "app/live_line.h"
#include "common/log.h"
#include "net/http.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <string_view>
#include <sys/ioctl.h>
#include <unistd.h>
#include <vector>

namespace kesm::app {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Waits up to `timeout` for SIGINT/SIGTERM. True when one arrived.
bool signalled(const sigset_t& signals, milliseconds timeout) {
  const auto ms = std::max<long long>(timeout.count(), 0);
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
  return sigtimedwait(&signals, nullptr, &ts) > 0;
}

// The start of a body an odd peer sent, printable on one line.
std::string excerpt(const std::string& body) {
  constexpr std::size_t kMax = 80;
  std::string out;
  for (std::size_t i = 0; i < body.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(body[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  return body.size() > kMax ? out + "..." : out;
}

struct Reading {
  std::optional<LiveStatus> status;
  std::string error; // when no status: why, one line
  bool unreachable = false;
};

Reading readStatusRaw(net::HttpClient& client, const std::string& target, milliseconds timeout) {
  Reading r;
  auto result = client.request("GET", target, "", {{"Accept", "application/json"}}, timeout);
  if (!result.transportOk()) {
    r.error = result.error_message;
    r.unreachable = true;
    return r;
  }
  if (result.response.status != 200) {
    r.error = "answered HTTP " + std::to_string(result.response.status) + ": " +
              excerpt(result.response.body);
    return r;
  }
  try {
    r.status = parseLiveStatus(result.response.body);
  } catch (const StatusFormatError& e) {
    r.error = std::string("not a kesm /status document: ") + e.what();
  }
  return r;
}

Reading readStatus(net::HttpClient& client, const std::string& target, milliseconds timeout) {
  Reading r = readStatusRaw(client, target, timeout);
  r.error = printable(r.error); // it may quote what the peer sent
  return r;
}

// Mapping name -> committed records, and when: the base of the next events/s.
struct Previous {
  steady_clock::time_point at;
  std::map<std::string, double> committed;
};

std::vector<std::string> mappingLines(const LiveStatus& status, const std::optional<Previous>& prev,
                                      steady_clock::time_point now) {
  std::vector<std::string> lines;
  const std::string role = status.role == "leader" ? status.role : std::string();
  for (const auto& m : status.mappings) {
    std::optional<double> before;
    double seconds = 0;
    if (prev) {
      if (auto it = prev->committed.find(m.name); it != prev->committed.end()) {
        before = it->second;
      }
      seconds = std::chrono::duration<double>(now - prev->at).count();
    }
    lines.push_back(liveLine(m, eventsPerSecond(before, m.committed, seconds), role));
  }
  if (lines.empty()) {
    lines.push_back("(no mappings)");
  }
  return lines;
}

Previous remember(const LiveStatus& status, steady_clock::time_point now) {
  Previous p{now, {}};
  for (const auto& m : status.mappings) {
    p.committed[m.name] = m.committed;
  }
  return p;
}

// Redraws the lines in place on a terminal: back up over what the last draw printed, then
// rewrite each line, cut to the width so that no line wraps and the count stays true.
class Screen {
public:
  void draw(const std::vector<std::string>& lines) {
    std::string out;
    if (drawn_ > 0) {
      out += "\r\x1b[" + std::to_string(drawn_) + "A";
    }
    const std::size_t width = columns();
    for (const auto& line : lines) {
      out += "\x1b[2K";
      out += width > 1 && line.size() >= width ? line.substr(0, width - 1) : line;
      out += "\n";
    }
    out += "\x1b[J"; // the rest of an earlier, longer draw
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    drawn_ = static_cast<int>(lines.size());
  }

private:
  static std::size_t columns() {
    winsize ws{};
    return ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
  }
  int drawn_ = 0;
};

void printPlain(const std::vector<std::string>& lines, const std::string& prefix) {
  for (const auto& line : lines) {
    std::printf("%s %s\n", prefix.c_str(), line.c_str());
  }
  std::fflush(stdout);
}

int once(net::HttpClient& client, const std::string& url, const std::string& target,
         const TopOptions& options, const sigset_t& signals) {
  // Two samples: events/s needs a pair.
  std::optional<Previous> prev;
  for (int i = 0; i < 2; ++i) {
    if (i == 1 && signalled(signals, options.interval)) {
      return 0;
    }
    auto r = readStatus(client, target, options.timeout);
    const auto now = steady_clock::now();
    if (!r.status) {
      std::fprintf(stderr, "kesm top: %s: %s\n", url.c_str(), r.error.c_str());
      return 1;
    }
    if (i == 1) {
      printPlain(mappingLines(*r.status, prev, now),
                 utcTimestamp(std::chrono::system_clock::now()));
    }
    prev = remember(*r.status, now);
  }
  return 0;
}

} // namespace

std::string statusUrl(const std::string& url) {
  const net::Url parsed = net::parseUrl(url); // throws on anything but http(s)
  if (parsed.target.find('?') != std::string::npos) {
    throw std::invalid_argument("'" + url + "': a query is not allowed");
  }
  // The path is the end of the URL (no query, no fragment): trailing slashes go from both.
  std::string out = url;
  std::string path = parsed.target;
  while (!path.empty() && path.back() == '/') {
    path.pop_back();
  }
  while (out.ends_with('/')) {
    out.pop_back();
  }
  return path.ends_with("/status") ? out : out + "/status";
}

int runTop(const TopOptions& options, const sigset_t& signals) {
  const std::string url = statusUrl(options.url);
  const net::Url parsed = net::parseUrl(url);
  net::HttpClient client(parsed);
  client.setResponseBodyLimit(options.body_limit);
  if (options.once) {
    return once(client, url, parsed.target, options, signals);
  }

  const bool tty = isatty(STDOUT_FILENO) == 1;
  Screen screen;
  std::optional<Previous> prev;
  std::string failing_since; // UTC, while reads fail
  for (;;) {
    const auto started = steady_clock::now();
    auto r = readStatus(client, parsed.target, options.timeout);
    const auto now = steady_clock::now();
    const std::string stamp = utcTimestamp(std::chrono::system_clock::now());
    std::vector<std::string> lines;
    if (r.status) {
      failing_since.clear();
      lines = mappingLines(*r.status, prev, now);
      prev = remember(*r.status, now);
    } else {
      if (failing_since.empty()) {
        failing_since = stamp;
      }
      lines.push_back("kesm top: " + url + ": " +
                      (r.unreachable ? "unreachable since " : "no valid status since ") +
                      failing_since + ": " + r.error);
    }
    if (tty) {
      lines.insert(lines.begin(), "kesm top: " + url + " at " + stamp + ", every " +
                                      std::to_string(options.interval.count()) +
                                      " ms (Ctrl-C quits)");
      screen.draw(lines);
    } else {
      printPlain(lines, stamp);
    }
    const auto next = started + options.interval;
    if (signalled(signals, std::chrono::duration_cast<milliseconds>(next - steady_clock::now()))) {
      return 0;
    }
  }
}

} // namespace kesm::app
