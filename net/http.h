#pragma once

// HTTP/1.1 over TCP, and over TLS for the client, built on Boost.Beast in two translation
// units (beast_http.cc: the client, http_server.cc: the server) so that the Beast-heavy
// compile happens in few places; url.cc parses URLs with Boost.URL. No Beast, Asio or OpenSSL
// type leaks from this header.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

enum class HttpErrorKind {
  kNone,
  kConnect, // name resolution or TCP connect failed
  kTimeout, // the exchange did not finish within its timeout
  kIo,      // the connection broke while writing or reading, or the answer was not HTTP
  kTls,     // the TLS handshake or a TLS record failed: certificate, host name, protocol
};

struct HttpResult {
  HttpErrorKind error = HttpErrorKind::kNone;
  std::string error_message; // empty on success
  HttpResponse response;     // valid when error == kNone
  bool transportOk() const { return error == HttpErrorKind::kNone; }
};

enum class Scheme { kHttp, kHttps };

struct Url {
  std::string host; // a name, or an IP address (IPv6 without brackets)
  std::uint16_t port = 80;
  std::string target = "/";
  Scheme scheme = Scheme::kHttp;
};
// The same as parseUrl (kept for its many callers, which pass http:// URLs).
Url parseHttpUrl(const std::string& url);
// Parses "http://" and "https://" URLs (Boost.URL): host name, IPv4 or bracketed IPv6
// literal, optional port (default 80 / 443), path and query. No user info, no fragment.
// Throws std::invalid_argument naming what is wrong.
Url parseUrl(const std::string& url);
// A TCP port written as 1 to 5 decimal digits, 1 to 65535; nullopt for anything else.
std::optional<std::uint16_t> parsePort(std::string_view text);

// A client TLS context loaded from TlsOptions' files once (loadTlsContext) and shared by
// many HttpClients on any threads: OpenSSL's SSL_CTX is safe to share once set up. Opaque.
class TlsContext;

// How an https client trusts its server and proves itself. Files are PEM, read when the
// client is constructed, unless `context` was loaded from them already.
struct TlsOptions {
  std::string ca_file{};   // CAs that may sign the server's certificate; empty: the system store
  std::string cert_file{}; // client certificate (chain) for mutual TLS; empty: none
  std::string key_file{};  // its private key; required with cert_file
  // The name the server's certificate must carry, and the SNI sent; empty: the URL's host.
  // An IP address is matched against the certificate's IP SANs and never sent as SNI.
  std::string server_name{};
  // The files above, loaded by loadTlsContext; null: each client loads them itself.
  std::shared_ptr<TlsContext> context{};
};

// Loads the CA store (ca_file or the system's) and the client certificate of `options` once,
// for clients to share. Throws std::runtime_error naming the file that cannot be loaded.
std::shared_ptr<TlsContext> loadTlsContext(const TlsOptions& options);

// A keep-alive HTTP/1.1 client for one origin, plain or TLS (url.scheme). Owned and used by
// one thread at a time. Reconnects transparently when the server closed an idle connection.
// TLS always verifies the server's certificate chain and host name (TLS 1.2 at least).
class HttpClient {
public:
  // Throws std::runtime_error when a TLS file cannot be loaded (a startup error).
  explicit HttpClient(Url url, TlsOptions tls = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs body to the URL's target. The whole exchange (connect, TLS handshake, write, read)
  // must finish within timeout, else the result is kTimeout and the connection is dropped.
  HttpResult post(const std::string& body, const Headers& headers,
                  std::chrono::milliseconds timeout);
  HttpResult request(const std::string& method, const std::string& target, const std::string& body,
                     const Headers& headers, std::chrono::milliseconds timeout);
  // Connections (TCP, and TLS sessions with them) opened since construction: keep-alive
  // reuse shows as a count that does not grow with the requests.
  std::uint64_t connectionsOpened() const;
  // The largest response body accepted (64 MiB unless set); a larger one is a kIo error
  // ("body limit exceeded") and the connection is dropped.
  void setResponseBodyLimit(std::uint64_t bytes);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Limits of one HttpServer. The defaults suit a GET-only endpoint such as /metrics; every
// resource a client can hold is bounded by one of them (docs/operations.md, "The HTTP port").
struct HttpServerOptions {
  // Connections open at once. A new connection beyond it closes the connection that has
  // waited longest for a request (idle keep-alive or slow header); if every connection is
  // busy in a handler or a write, the new one is closed at once.
  std::size_t max_connections = 256;
  std::size_t header_limit_bytes = 8 * 1024; // request line and fields: more gets 431
  std::uint64_t body_limit_bytes = 0;        // 0: any request body gets 413
  // To receive one whole request, from the first byte (from the accept for a new connection).
  std::chrono::milliseconds request_timeout{10'000};
  // Between requests on a keep-alive connection.
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds write_timeout{10'000}; // to send one whole response
  // Threads running the handler, started on demand up to this many. Requests beyond wait
  // in a queue bounded by max_connections (one request per connection at a time).
  std::size_t handler_threads = 2;
};

struct HttpServerStats {
  std::uint64_t accepted = 0;      // connections accepted since construction
  std::uint64_t open = 0;          // connections open now
  std::uint64_t evicted = 0;       // closed while waiting for a request, to admit a new one
  std::uint64_t refused = 0;       // new connections closed at once: all others were busy
  std::uint64_t timed_out = 0;     // closed by the request, idle or write timeout
  std::uint64_t accept_errors = 0; // failed accepts (out of descriptors...), each then a pause
};

// A small asynchronous HTTP/1.1 server with keep-alive: one I/O thread does every socket
// operation; the handler runs on a pool of handler_threads threads, concurrently, so it must
// be thread-safe, and it may block (a slow handler never stalls other connections' I/O).
// HEAD is passed to the handler as HEAD; the server sends its headers and Content-Length
// without the body. Malformed requests get 400 without reaching the handler.
class HttpServer {
public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // listen is "host:port"; port 0 picks a free port (see port()). Throws on bind failure
  // or invalid options.
  HttpServer(const std::string& listen, Handler handler, HttpServerOptions options = {});
  ~HttpServer(); // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;
  // Connections accepted since construction (keep-alive reuse shows as a low count).
  std::uint64_t acceptedConnections() const;
  HttpServerStats stats() const;
  // Closes every connection and joins the threads. A handler running then is waited for:
  // whoever owns the handler makes it return first (as SampleFunction does).
  void stop();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace kesm::net
