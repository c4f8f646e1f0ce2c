#pragma once

// The live line: one line per mapping that `kesm run --live` and `kesm demo` print from the
// runtime's snapshot, and `kesm top` from a running kesm's /status. One formatter, so both
// print the same line. Pure and reentrant: no I/O, no clock.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kesm::app {

// What the line shows of one mapping.
struct LiveMapping {
  enum class State { kEnabled, kDisabled, kStandby };
  std::string name;
  State state = State::kEnabled;
  std::string reason; // kDisabled, kStandby: why
  int desired = 0;
  int active = 0; // running + starting
  int running = 0;
  int stopping = 0;
  std::optional<std::int64_t> lag_total; // none before the first good probe
  std::int64_t lag_max = 0;
  bool lag_stale = true;
  double committed = 0; // records, since that kesm started
  double failed = 0;    // records in failed attempts, since that kesm started
};

// A /status document as `kesm top` reads it.
struct LiveStatus {
  std::string role; // "leader" or "standby" with leader election on; empty when off
  std::vector<LiveMapping> mappings;
};

// The body does not hold a kesm /status document; what() says why.
class StatusFormatError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Parses a /status body (app/status.h writes it). Fields the line does not use are ignored,
// so a newer kesm's additions do not break an older `kesm top`. Throws StatusFormatError.
LiveStatus parseLiveStatus(std::string_view json);

// Committed records per second between two samples `seconds` apart; none when there is no
// earlier sample, no time passed, or the counter went back (that kesm restarted).
std::optional<double> eventsPerSecond(std::optional<double> before, double after, double seconds);

// The line of one mapping, without a time prefix or a newline:
//   orders: lag 15700 (max 2000) | pollers desired 8, running 5, 3 starting | 2500 events/s |
//   committed 6800, failed records 0
// `role` ("leader") is appended as " | leader" when not empty; an unknown rate shows as "-".
// The name and reason are printable() here.
std::string liveLine(const LiveMapping& mapping, std::optional<double> events_per_second,
                     std::string_view role = {});

// `text` on one line, safe to print on a terminal: each control character (newline, ESC,
// DEL...) becomes a space, so a reason or a hostile peer's text cannot break the line or
// move the cursor.
std::string printable(std::string_view text);

// The URL `kesm top` reads for a config's server.listen ("0.0.0.0:9464" ->
// "http://127.0.0.1:9464"): a wildcard host becomes loopback. Throws std::invalid_argument on
// port 0 (kesm picked a port: only --url can say which) or a malformed address.
std::string urlForListen(const std::string& listen);

} // namespace kesm::app
