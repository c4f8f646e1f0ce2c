// The only translation unit that includes Boost.Beast and Boost.Asio (they are slow to
// compile). Beast errors are translated into HttpErrorKind at this boundary.

#include "net/http.h"

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <strings.h>
#include <sys/socket.h>
#include <thread>

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

// ---------------------------------------------------------------------------------------
// HttpServer: an acceptor thread running async_accept on its own io_context, and one thread
// per connection doing synchronous reads and writes. stop() shuts the sockets down, which
// wakes every blocked read or write, then joins.

struct HttpServer::Impl {
  struct Connection {
    std::shared_ptr<tcp::socket> socket;
    std::thread thread;
  };

  Impl(const std::string& listen, Handler h) : handler(std::move(h)), acceptor(ioc) {
    std::size_t colon = listen.rfind(':');
    if (colon == std::string::npos) {
      throw std::invalid_argument("listen address '" + listen + "': expected host:port");
    }
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    if (host.empty()) {
      host = "0.0.0.0";
    }
    unsigned long port = 0;
    std::string port_text = listen.substr(colon + 1);
    for (char c : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || port > 65535) {
        throw std::invalid_argument("listen address '" + listen +
                                    "': port must be a number from 0 to 65535");
      }
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port_text.empty() || port > 65535) {
      throw std::invalid_argument("listen address '" + listen +
                                  "': port must be a number from 0 to 65535");
    }
    error_code ec;
    tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(host, port_text, tcp::resolver::passive, ec);
    if (ec || endpoints.empty()) {
      throw std::runtime_error("listen address '" + listen + "': cannot resolve '" + host +
                               "': " + ec.message());
    }
    tcp::endpoint endpoint = endpoints.begin()->endpoint();
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(endpoint, ec);
    if (ec) {
      throw std::runtime_error("cannot listen on " + listen + ": " + ec.message());
    }
    acceptor.listen(asio::socket_base::max_listen_connections);
    bound_port = acceptor.local_endpoint().port();
    accept();
    acceptor_thread = std::thread([this] { ioc.run(); });
  }

  void accept() {
    acceptor.async_accept([this](const error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
        return;
      }
      if (!ec) {
        startConnection(std::move(socket));
        accept();
        return;
      }
      // Other errors (e.g. out of file descriptors) are transient: retry after a pause
      // rather than spinning.
      retry_timer.expires_after(std::chrono::milliseconds(100));
      retry_timer.async_wait([this](const error_code& wait_ec) {
        if (!wait_ec && acceptor.is_open()) {
          accept();
        }
      });
    });
  }

  void startConnection(tcp::socket socket) {
    std::lock_guard lock(mutex);
    reapFinished();
    if (stopping) {
      error_code ignored;
      socket.close(ignored);
      return;
    }
    std::uint64_t id = next_id++;
    accepted.fetch_add(1);
    auto shared = std::make_shared<tcp::socket>(std::move(socket));
    Connection& conn = connections[id];
    conn.socket = shared;
    conn.thread = std::thread([this, id, shared] {
      serve(*shared);
      // Closed under the mutex, so that stop() never shuts down a descriptor number that
      // was already closed here and reused by another socket.
      std::lock_guard done_lock(mutex);
      error_code ignored;
      shared->close(ignored);
      finished.push_back(id);
    });
  }

  // Joins the threads of connections that ended by themselves. Called with mutex held.
  void reapFinished() {
    for (std::uint64_t id : finished) {
      auto it = connections.find(id);
      if (it != connections.end()) {
        if (it->second.thread.joinable()) {
          it->second.thread.join(); // it has returned already, or is about to
        }
        connections.erase(it);
      }
    }
    finished.clear();
  }

  void serve(tcp::socket& socket) {
    error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    beast::flat_buffer buffer;
    while (!stopping_flag.load()) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kMaxBodyBytes);
      http::read(socket, buffer, parser, ec);
      if (ec == http::error::body_limit) {
        http::response<http::string_body> res{http::status::payload_too_large, 11};
        res.body() = "request body larger than 64 MiB\n";
        res.keep_alive(false);
        res.prepare_payload();
        http::write(socket, res, ec);
        break;
      }
      if (ec) {
        break; // closed by the peer, or shut down by stop()
      }
      auto& req = parser.get();
      HttpRequest request;
      request.method = std::string(req.method_string());
      request.target = std::string(req.target());
      copyHeaders(req.base(), request.headers);
      request.body = std::move(req.body());

      HttpResponse response;
      try {
        response = handler(request);
      } catch (const std::exception& e) {
        response = HttpResponse{};
        response.status = 500;
        response.headers = {{"Content-Type", "text/plain"}};
        response.body = std::string("internal error: ") + e.what() + "\n";
      } catch (...) {
        response = HttpResponse{};
        response.status = 500;
        response.headers = {{"Content-Type", "text/plain"}};
        response.body = "internal error\n";
      }

      http::response<http::string_body> res;
      res.version(req.version());
      res.result(static_cast<unsigned>(response.status));
      for (const auto& [name, value] : response.headers) {
        res.set(name, value);
      }
      bool keep_alive = req.keep_alive() && !stopping_flag.load() &&
                        !beast::iequals(response.header("Connection"), "close");
      res.body() = std::move(response.body);
      res.prepare_payload();
      res.keep_alive(keep_alive);
      http::write(socket, res, ec);
      if (ec || !keep_alive) {
        break;
      }
    }
    socket.shutdown(tcp::socket::shutdown_send, ec);
  }

  void stop() {
    std::map<std::uint64_t, Connection> to_join;
    {
      std::lock_guard lock(mutex);
      if (stopping) {
        return;
      }
      stopping = true;
      stopping_flag = true;
    }
    // The acceptor belongs to the acceptor thread's io_context: close it there.
    asio::post(ioc, [this] {
      error_code ignored;
      acceptor.close(ignored);
      retry_timer.cancel();
    });
    if (acceptor_thread.joinable()) {
      acceptor_thread.join();
    }
    {
      std::lock_guard lock(mutex);
      for (auto& [id, conn] : connections) {
        // shutdown() wakes a thread blocked in a synchronous read or write on the socket.
        if (conn.socket->is_open()) {
          ::shutdown(conn.socket->native_handle(), SHUT_RDWR);
        }
      }
      to_join.swap(connections);
      finished.clear();
    }
    for (auto& [id, conn] : to_join) {
      if (conn.thread.joinable()) {
        conn.thread.join();
      }
    }
  }

  Handler handler;
  asio::io_context ioc{1};
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer{ioc};
  std::uint16_t bound_port = 0;
  std::thread acceptor_thread;

  std::mutex mutex;
  bool stopping = false;                  // guarded by mutex
  std::atomic<bool> stopping_flag{false}; // read by connection threads without the lock
  std::uint64_t next_id = 0;
  std::atomic<std::uint64_t> accepted{0};
  std::map<std::uint64_t, Connection> connections;
  std::vector<std::uint64_t> finished;
};

HttpServer::HttpServer(const std::string& listen, Handler handler)
    : impl_(std::make_unique<Impl>(listen, std::move(handler))) {}

HttpServer::~HttpServer() { stop(); }

std::uint16_t HttpServer::port() const { return impl_->bound_port; }

std::uint64_t HttpServer::acceptedConnections() const { return impl_->accepted.load(); }

void HttpServer::stop() { impl_->stop(); }

} // namespace kesm::net
