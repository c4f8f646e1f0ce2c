// parseUrl of net/http.h on Boost.URL: RFC 3986 parsing, so IPv6 literals, percent-escapes and
// odd authorities are handled by a parser we did not write. Kept out of beast_http.cc, which
// is the slow compile.

#include "net/http.h"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <stdexcept>

namespace kesm::net {

namespace urls = boost::urls;

Url parseUrl(const std::string& text) {
  auto fail = [&](const std::string& why) {
    return std::invalid_argument("'" + text + "': " + why);
  };
  auto parsed = urls::parse_uri(text);
  if (!parsed) {
    throw fail("not a URL (" + parsed.error().message() +
               "); expected http[s]://host[:port][/path]");
  }
  const urls::url_view& u = *parsed;
  Url out;
  if (u.scheme_id() == urls::scheme::http) {
    out.scheme = Scheme::kHttp;
    out.port = 80;
  } else if (u.scheme_id() == urls::scheme::https) {
    out.scheme = Scheme::kHttps;
    out.port = 443;
  } else {
    throw fail("the scheme must be http or https");
  }
  if (u.has_userinfo()) {
    throw fail("user info is not supported");
  }
  if (u.has_fragment()) {
    throw fail("a fragment is not allowed");
  }
  switch (u.host_type()) {
  case urls::host_type::name:
  case urls::host_type::ipv4:
  case urls::host_type::ipv6:
    out.host = u.host_address();
    break;
  default:
    throw fail("missing or unsupported host");
  }
  if (out.host.empty()) {
    throw fail("missing host");
  }
  if (u.has_port()) {
    const auto port = parsePort(u.port());
    if (!port) {
      throw fail("port must be a number from 1 to 65535");
    }
    out.port = *port;
  }
  // Boost 1.81 reads "fn:8x" as port 8 and the path "x"; RFC 3986 wants "/" after an
  // authority, and only a port can end in anything else.
  if (!u.encoded_path().empty() && u.encoded_path().front() != '/') {
    throw fail("port must be a number from 1 to 65535");
  }
  // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict on `"?" + string`.
  std::string target(u.encoded_path());
  if (target.empty()) {
    target.push_back('/');
  }
  if (u.has_query()) {
    const auto query = u.encoded_query();
    target.push_back('?');
    target.append(query.data(), query.size());
  }
  out.target = std::move(target);
  return out;
}

std::optional<std::uint16_t> parsePort(std::string_view text) {
  unsigned long port = 0;
  if (text.empty() || text.size() > 5) {
    return std::nullopt;
  }
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    port = port * 10 + static_cast<unsigned long>(c - '0');
  }
  if (port == 0 || port > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(port);
}

} // namespace kesm::net
