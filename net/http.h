#pragma once

// Plain HTTP/1.1 over TCP, built on Boost.Beast in one translation unit (beast_http.cc)
// so that the Beast-heavy compile happens once. No Beast type leaks from this header.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kesm::net {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method; // "GET", "POST", ...
  std::string target; // path and query, e.g. "/metrics"
  Headers headers;
  std::string body;
  // Case-insensitive header lookup; empty string when absent.
  std::string header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  Headers headers;
  std::string body;
  std::string header(const std::string& name) const;
};

enum class HttpErrorKind { kNone, kConnect, kTimeout, kIo };

struct HttpResult {
  HttpErrorKind error = HttpErrorKind::kNone;
  std::string error_message; // empty on success
  HttpResponse response;     // valid when error == kNone
  bool transportOk() const { return error == HttpErrorKind::kNone; }
};

struct Url {
  std::string host;
  std::uint16_t port = 80;
  std::string target = "/";
};
// Parses "http://host[:port][/path]". Throws std::invalid_argument on anything else.
Url parseHttpUrl(const std::string& url);

// A keep-alive HTTP/1.1 client for one origin. Owned and used by one thread at a time.
// Reconnects transparently when the server closed an idle connection.
class HttpClient {
public:
  explicit HttpClient(Url url);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs body to the URL's target. The whole exchange (connect, write, read) must
  // finish within timeout, else the result is kTimeout and the connection is dropped.
  HttpResult post(const std::string& body, const Headers& headers,
                  std::chrono::milliseconds timeout);
  HttpResult request(const std::string& method, const std::string& target, const std::string& body,
                     const Headers& headers, std::chrono::milliseconds timeout);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A small HTTP/1.1 server: one acceptor thread, one thread per connection, keep-alive.
// The handler is called concurrently from connection threads; it must be thread-safe.
class HttpServer {
public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // listen is "host:port"; port 0 picks a free port (see port()). Throws on bind failure.
  HttpServer(const std::string& listen, Handler handler);
  ~HttpServer(); // stops and joins every thread
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;
  // Connections accepted since construction (keep-alive reuse shows as a low count).
  std::uint64_t acceptedConnections() const;
  void stop();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace kesm::net
