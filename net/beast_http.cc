// The HTTP client and the helpers of net/http.h; the server is in http_server.cc. Beast errors
// are translated into HttpErrorKind at this boundary.

#include "net/http.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <optional>
#include <stdexcept>
#include <strings.h>

namespace kesm::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

constexpr std::uint64_t kMaxBodyBytes = 64ull * 1024 * 1024;

std::string findHeader(const Headers& headers, const std::string& name) {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && ::strncasecmp(key.c_str(), name.c_str(), key.size()) == 0) {
      return value;
    }
  }
  return {};
}

bool hasHeader(const Headers& headers, const std::string& name) {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && ::strncasecmp(key.c_str(), name.c_str(), key.size()) == 0) {
      return true;
    }
  }
  return false;
}

// The peer closed (or reset) a connection we thought was open.
bool isConnectionGone(const error_code& ec) {
  return ec == asio::error::eof || ec == http::error::end_of_stream ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted || ec == asio::error::not_connected;
}

template <class Fields> void copyHeaders(const Fields& fields, Headers& out) {
  for (const auto& field : fields) {
    out.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
}

} // namespace

std::string HttpRequest::header(const std::string& name) const { return findHeader(headers, name); }

std::string HttpResponse::header(const std::string& name) const {
  return findHeader(headers, name);
}

Url parseHttpUrl(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind("https://", 0) == 0) {
    throw std::invalid_argument("'" + url + "': https is not supported, use http://");
  }
  if (url.rfind(scheme, 0) != 0) {
    throw std::invalid_argument("'" + url + "': expected http://host[:port][/path]");
  }
  std::string rest = url.substr(scheme.size());
  Url out;
  std::size_t slash = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) {
    if (rest[slash] == '#') {
      throw std::invalid_argument("'" + url + "': a fragment is not allowed");
    }
    out.target = rest.substr(slash);
    if (out.target.front() == '?') {
      out.target.insert(out.target.begin(), '/');
    }
  }
  if (authority.find('@') != std::string::npos) {
    throw std::invalid_argument("'" + url + "': user info is not supported");
  }
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string::npos) {
      throw std::invalid_argument("'" + url + "': unterminated IPv6 address");
    }
    out.host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        throw std::invalid_argument("'" + url + "': unexpected text after the IPv6 address");
      }
      port_text = after.substr(1);
      if (port_text.empty()) {
        throw std::invalid_argument("'" + url + "': empty port");
      }
    }
  } else {
    std::size_t colon = authority.find(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) {
        throw std::invalid_argument("'" + url + "': empty port");
      }
    }
  }
  if (out.host.empty()) {
    throw std::invalid_argument("'" + url + "': missing host");
  }
  if (!port_text.empty()) {
    unsigned long port = 0;
    for (char c : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || port > 65535) {
        throw std::invalid_argument("'" + url + "': port must be a number from 1 to 65535");
      }
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535) {
      throw std::invalid_argument("'" + url + "': port must be a number from 1 to 65535");
    }
    out.port = static_cast<std::uint16_t>(port);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// HttpClient: asynchronous operations on a private io_context, run to completion inside
// each call, so that one deadline (tcp_stream::expires_at) covers the whole exchange.

struct HttpClient::Impl {
  explicit Impl(Url u) : url(std::move(u)), host_header(hostHeader(url)) {}

  static std::string hostHeader(const Url& url) {
    std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    return url.port == 80 ? host : host + ":" + std::to_string(url.port);
  }

  using Clock = std::chrono::steady_clock;

  // Runs the io_context until the operation started just before has completed.
  void runToCompletion() {
    ioc.restart();
    ioc.run();
  }

  void close() {
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    connected = false;
    buffer.clear();
  }

  HttpResult fail(HttpErrorKind kind, std::string message) {
    close();
    HttpResult result;
    result.error = kind;
    result.error_message = std::move(message);
    return result;
  }

  std::optional<HttpResult> connect(Clock::time_point deadline) {
    // Name resolution has no stream to carry the deadline: a timer cancels it.
    error_code ec;
    tcp::resolver::results_type endpoints;
    bool timed_out = false;
    {
      asio::steady_timer timer(ioc, deadline);
      tcp::resolver resolver(ioc);
      timer.async_wait([&](const error_code& wait_ec) {
        if (!wait_ec) {
          timed_out = true;
          resolver.cancel();
        }
      });
      resolver.async_resolve(url.host, std::to_string(url.port),
                             [&](const error_code& e, tcp::resolver::results_type results) {
                               ec = e;
                               endpoints = std::move(results);
                               timer.cancel();
                             });
      runToCompletion();
    }
    if (timed_out) {
      return fail(HttpErrorKind::kTimeout, "timed out resolving " + url.host);
    }
    if (ec) {
      return fail(HttpErrorKind::kConnect, "resolving " + url.host + ": " + ec.message());
    }
    stream.expires_at(deadline);
    stream.async_connect(endpoints, [&](const error_code& e, const tcp::endpoint&) { ec = e; });
    runToCompletion();
    if (ec == beast::error::timeout) {
      return fail(HttpErrorKind::kTimeout, "timed out connecting to " + host_header);
    }
    if (ec) {
      return fail(HttpErrorKind::kConnect, "connecting to " + host_header + ": " + ec.message());
    }
    error_code ignored;
    stream.socket().set_option(tcp::no_delay(true), ignored);
    connected = true;
    return std::nullopt;
  }

  HttpResult exchange(const std::string& method, const std::string& target, const std::string& body,
                      const Headers& headers, bool is_post, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + std::max(timeout, std::chrono::milliseconds(0));

    http::request<http::string_body> req;
    http::verb verb = http::string_to_verb(method);
    if (verb == http::verb::unknown) {
      req.method_string(method);
    } else {
      req.method(verb);
    }
    req.target(target.empty() ? "/" : target);
    req.version(11);
    req.set(http::field::host, host_header);
    req.set(http::field::user_agent, "kesm");
    if ((is_post || !body.empty()) && !hasHeader(headers, "Content-Type")) {
      req.set(http::field::content_type, "application/json");
    }
    for (const auto& [name, value] : headers) {
      req.set(name, value);
    }
    req.body() = body;
    req.prepare_payload();
    req.keep_alive(true);

    // A reused idle connection may have been closed by the server meanwhile: then the
    // request is sent once more on a fresh connection. Never after a timeout.
    for (int attempt = 0;; ++attempt) {
      const bool reused = connected;
      if (!connected) {
        if (auto failed = connect(deadline)) {
          return std::move(*failed);
        }
      }
      error_code ec;
      stream.expires_at(deadline);
      http::async_write(stream, req, [&](const error_code& e, std::size_t) { ec = e; });
      runToCompletion();
      if (ec == beast::error::timeout) {
        return fail(HttpErrorKind::kTimeout, "timed out sending the request to " + host_header);
      }
      if (ec) {
        if (reused && attempt == 0 && isConnectionGone(ec)) {
          close();
          continue;
        }
        return fail(HttpErrorKind::kIo, "sending to " + host_header + ": " + ec.message());
      }

      http::response_parser<http::string_body> parser;
      parser.body_limit(kMaxBodyBytes);
      stream.expires_at(deadline);
      http::async_read(stream, buffer, parser, [&](const error_code& e, std::size_t) { ec = e; });
      runToCompletion();
      if (ec == beast::error::timeout) {
        return fail(HttpErrorKind::kTimeout,
                    "timed out waiting for the response of " + host_header);
      }
      if (ec) {
        if (reused && attempt == 0 && !parser.got_some() && isConnectionGone(ec)) {
          close();
          continue;
        }
        return fail(HttpErrorKind::kIo, "reading from " + host_header + ": " + ec.message());
      }
      stream.expires_never();

      HttpResult result;
      auto& res = parser.get();
      result.response.status = static_cast<int>(res.result_int());
      copyHeaders(res.base(), result.response.headers);
      result.response.body = std::move(res.body());
      if (!res.keep_alive()) {
        close();
      }
      return result;
    }
  }

  Url url;
  std::string host_header;
  asio::io_context ioc{1};
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool connected = false;
};

HttpClient::HttpClient(Url url) : impl_(std::make_unique<Impl>(std::move(url))) {}

HttpClient::~HttpClient() {
  if (impl_ && impl_->connected) {
    impl_->close();
  }
}

HttpResult HttpClient::post(const std::string& body, const Headers& headers,
                            std::chrono::milliseconds timeout) {
  return request("POST", impl_->url.target, body, headers, timeout);
}

HttpResult HttpClient::request(const std::string& method, const std::string& target,
                               const std::string& body, const Headers& headers,
                               std::chrono::milliseconds timeout) {
  try {
    return impl_->exchange(method, target, body, headers, method == "POST", timeout);
  } catch (const std::exception& e) {
    // Beast throws only on misuse or allocation failure; the data path gets a value.
    return impl_->fail(HttpErrorKind::kIo, std::string("request failed: ") + e.what());
  }
}

} // namespace kesm::net
