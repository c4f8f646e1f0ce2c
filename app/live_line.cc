#include "app/live_line.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cinttypes>
#include <cmath>
#include <cstdio>

namespace kesm::app {

namespace {

namespace bj = boost::json;

[[noreturn]] void bad(const std::string& why) { throw StatusFormatError(why); }

const bj::object& objectAt(const bj::value& v, const std::string& path) {
  if (!v.is_object()) {
    bad(path + " is not an object");
  }
  return v.get_object();
}

// A member that may be absent (or null): nullptr then.
const bj::value* member(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() || it->value().is_null() ? nullptr : &it->value();
}

std::optional<double> number(const bj::object& o, std::string_view key, const std::string& path) {
  const bj::value* v = member(o, key);
  if (!v) {
    return std::nullopt;
  }
  if (v->is_int64()) {
    return static_cast<double>(v->get_int64());
  }
  if (v->is_uint64()) {
    return static_cast<double>(v->get_uint64());
  }
  if (v->is_double()) {
    return v->get_double();
  }
  bad(path + "." + std::string(key) + " is not a number");
}

int count(const bj::object& o, std::string_view key, const std::string& path) {
  auto n = number(o, key, path).value_or(0);
  if (!(n >= 0 && n <= 1e6)) {
    bad(path + "." + std::string(key) + " is not a poller count");
  }
  return static_cast<int>(n);
}

std::string text(const bj::object& o, std::string_view key, const std::string& path) {
  const bj::value* v = member(o, key);
  if (!v) {
    return {};
  }
  if (!v->is_string()) {
    bad(path + "." + std::string(key) + " is not a string");
  }
  return std::string(v->get_string());
}

LiveMapping parseMapping(const bj::value& v, const std::string& path) {
  const auto& o = objectAt(v, path);
  LiveMapping m;
  m.name = text(o, "name", path);
  if (m.name.empty()) {
    bad(path + " has no name");
  }
  const std::string state = text(o, "state", path);
  if (state == "Disabled") {
    m.state = LiveMapping::State::kDisabled;
  } else if (state == "Standby") {
    m.state = LiveMapping::State::kStandby;
  } else if (state != "Enabled") {
    bad(path + ".state is '" + state + "', not Enabled, Disabled or Standby");
  }
  m.reason = text(o, "stateReason", path);
  if (const bj::value* p = member(o, "pollers")) {
    const std::string at = path + ".pollers";
    const auto& pollers = objectAt(*p, at);
    m.desired = count(pollers, "desired", at);
    m.active = count(pollers, "active", at);
    m.running = count(pollers, "running", at);
    m.stopping = count(pollers, "stopping", at);
  }
  if (const bj::value* l = member(o, "lag")) {
    const std::string at = path + ".lag";
    const auto& lag = objectAt(*l, at);
    const bj::value* stale = member(lag, "stale");
    if (stale && !stale->is_bool()) {
      bad(at + ".stale is not true or false");
    }
    m.lag_stale = stale ? stale->get_bool() : true;
    if (auto total = number(lag, "total", at)) {
      m.lag_total = static_cast<std::int64_t>(*total);
      m.lag_max = static_cast<std::int64_t>(number(lag, "max", at).value_or(0));
    }
  }
  if (const bj::value* e = member(o, "events")) {
    const std::string at = path + ".events";
    const auto& events = objectAt(*e, at);
    m.committed = number(events, "committed", at).value_or(0);
    m.failed = number(events, "failedInvoke", at).value_or(0);
  }
  return m;
}

template <class... Args> std::string format(const char* fmt, Args... args) {
  char buf[128];
  int n = std::snprintf(buf, sizeof buf, fmt, args...);
  return std::string(
      buf, n < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
}

} // namespace

LiveStatus parseLiveStatus(std::string_view json) {
  boost::system::error_code ec;
  bj::value root = bj::parse(json, ec);
  if (ec) {
    bad("not JSON: " + ec.message());
  }
  const auto& o = objectAt(root, "the document");
  LiveStatus status;
  if (const bj::value* le = member(o, "leaderElection")) {
    status.role = text(objectAt(*le, "leaderElection"), "role", "leaderElection");
  }
  const bj::value* mappings = member(o, "mappings");
  if (!mappings || !mappings->is_array()) {
    bad("no \"mappings\" list");
  }
  const auto& list = mappings->get_array();
  for (std::size_t i = 0; i < list.size(); ++i) {
    status.mappings.push_back(parseMapping(list[i], "mappings[" + std::to_string(i) + "]"));
  }
  return status;
}

std::optional<double> eventsPerSecond(std::optional<double> before, double after, double seconds) {
  if (!before || !(seconds > 0) || after < *before) {
    return std::nullopt;
  }
  return (after - *before) / seconds;
}

std::string printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      c = ' ';
    }
  }
  return out;
}

std::string liveLine(const LiveMapping& m, std::optional<double> rate, std::string_view role) {
  std::string line = printable(m.name) + ": ";
  if (m.state == LiveMapping::State::kStandby) {
    return line + (m.reason.empty() ? std::string("standing by") : printable(m.reason));
  }
  if (m.state == LiveMapping::State::kDisabled) {
    return line + "DISABLED: " + printable(m.reason);
  }
  line += "lag ";
  line += m.lag_stale ? "STALE " : "";
  line += format("%" PRId64 " (max %" PRId64 ")", m.lag_total.value_or(0),
                 m.lag_total ? m.lag_max : std::int64_t{0});
  line += format(" | pollers desired %d, running %d", m.desired, m.running);
  if (m.active > m.running) {
    line += format(", %d starting", m.active - m.running);
  }
  if (m.stopping > 0) {
    line += format(", %d retiring", m.stopping);
  }
  line += rate ? format(" | %.0f events/s", *rate) : std::string(" | - events/s");
  line += format(" | committed %.0f, failed records %.0f", m.committed, m.failed);
  if (!role.empty()) {
    line += " | ";
    line += printable(role);
  }
  return line;
}

std::string urlForListen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    throw std::invalid_argument("listen address '" + listen + "': expected host:port");
  }
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
      std::stoul(port) > 65535) {
    throw std::invalid_argument("listen address '" + listen + "': port is not 0 to 65535");
  }
  if (std::stoul(port) == 0) {
    throw std::invalid_argument("listen address '" + listen +
                                "' has port 0 (kesm picks a free port): give --url");
  }
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "0.0.0.0") {
    host = "127.0.0.1";
  } else if (host == "::") {
    host = "::1";
  }
  if (host.find(':') != std::string::npos) {
    host = "[" + host + "]";
  }
  return "http://" + host + ":" + port;
}

} // namespace kesm::app
