// The HTTP(S) client and the helpers of net/http.h; the server is in http_server.cc. Beast,
// Asio and OpenSSL errors are translated into HttpErrorKind at this boundary.

#include "net/http.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <optional>
#include <stdexcept>
#include <strings.h>

namespace kesm::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
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
         ec == asio::error::connection_aborted || ec == asio::error::not_connected ||
         ec == ssl::error::stream_truncated; // TCP closed under TLS without close_notify
}

bool isTlsError(const error_code& ec) {
  return ec.category() == asio::error::get_ssl_category() ||
         ec.category() == ssl::error::get_stream_category();
}

bool isIpAddress(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// The client side of TLS: verify the server against ca_file (or the system store), TLS 1.2
// at least, and a client certificate when mutual TLS is asked for.
void configureTlsContext(ssl::context* ctx, const TlsOptions& options) {
  ::SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  error_code ec;
  if (options.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) {
      throw std::runtime_error("TLS: cannot load the system's CA store: " + ec.message());
    }
  } else {
    ctx->load_verify_file(options.ca_file, ec);
    if (ec) {
      throw std::runtime_error("TLS: cannot load CA file " + options.ca_file + ": " + ec.message());
    }
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    throw std::runtime_error("TLS: a client certificate needs both cert_file and key_file");
  }
  if (!options.cert_file.empty()) {
    ctx->use_certificate_chain_file(options.cert_file, ec);
    if (ec) {
      throw std::runtime_error("TLS: cannot load client certificate " + options.cert_file + ": " +
                               ec.message());
    }
    ctx->use_private_key_file(options.key_file, ssl::context::pem, ec);
    if (ec) {
      throw std::runtime_error("TLS: cannot load client key " + options.key_file + ": " +
                               ec.message());
    }
  }
  ctx->set_verify_mode(ssl::verify_peer);
}

template <class Fields> void copyHeaders(const Fields& fields, Headers& out) {
  for (const auto& field : fields) {
    out.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
}

} // namespace

class TlsContext {
public:
  ssl::context ctx{ssl::context::tls_client};
};

std::shared_ptr<TlsContext> loadTlsContext(const TlsOptions& options) {
  auto context = std::make_shared<TlsContext>();
  configureTlsContext(&context->ctx, options);
  return context;
}

std::string HttpRequest::header(const std::string& name) const { return findHeader(headers, name); }

std::string HttpResponse::header(const std::string& name) const {
  return findHeader(headers, name);
}

Url parseHttpUrl(const std::string& url) { return parseUrl(url); }

// ---------------------------------------------------------------------------------------
// HttpClient: asynchronous operations on a private io_context, run to completion inside
// each call, so that one deadline (tcp_stream::expires_at) covers the whole exchange; the TLS
// stream does its I/O through the same tcp_stream, so the deadline covers the handshake too.

struct HttpClient::Impl {
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  Impl(Url u, TlsOptions options)
      : url(std::move(u)), tls_options(std::move(options)), host_header(hostHeader(url)),
        verify_name(tls_options.server_name.empty() ? url.host : tls_options.server_name) {
    if (url.scheme == Scheme::kHttps) {
      tls_context = tls_options.context ? tls_options.context : loadTlsContext(tls_options);
    }
  }

  static std::string hostHeader(const Url& url) {
    std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    const std::uint16_t default_port = url.scheme == Scheme::kHttps ? 443 : 80;
    return url.port == default_port ? host : host + ":" + std::to_string(url.port);
  }

  using Clock = std::chrono::steady_clock;

  // Runs the io_context until the operation started just before has completed.
  void runToCompletion() {
    ioc.restart();
    ioc.run();
  }

  beast::tcp_stream& tcpLayer() { return tls ? beast::get_lowest_layer(*tls) : plain; }

  // Calls f with the stream requests go through: the TLS stream or the plain one.
  template <class F> void withStream(F&& f) {
    if (tls) {
      f(*tls);
    } else {
      f(plain);
    }
  }

  void close() {
    // No TLS close_notify: it costs a round trip and the server copes with a closed socket.
    error_code ignored;
    beast::tcp_stream& stream = tcpLayer();
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    tls.reset();
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

  // A fresh TLS stream for each connection (an SSL object is not reusable), set to verify
  // the chain and then the host name, remembering why verification failed.
  void newTlsStream() {
    tls = std::make_unique<TlsStream>(ioc, tls_context->ctx);
    verify_error.clear();
    if (!isIpAddress(verify_name)) {
      // SNI carries names only (RFC 6066); a server picks its certificate by it.
      ::SSL_set_tlsext_host_name(tls->native_handle(), verify_name.c_str());
    }
    tls->set_verify_mode(ssl::verify_peer);
    tls->set_verify_callback([this, check_host = ssl::host_name_verification(verify_name)](
                                 bool preverified, ssl::verify_context& ctx) mutable {
      if (!preverified) {
        const int err = ::X509_STORE_CTX_get_error(ctx.native_handle());
        verify_error = ::X509_verify_cert_error_string(err);
        return false;
      }
      if (!check_host(preverified, ctx)) {
        verify_error = "hostname mismatch: the certificate is not valid for " + verify_name;
        return false;
      }
      return true;
    });
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
    if (tls_context) {
      newTlsStream();
    }
    beast::tcp_stream& stream = tcpLayer();
    stream.expires_at(deadline);
    stream.async_connect(endpoints, [&](const error_code& e, const tcp::endpoint&) { ec = e; });
    runToCompletion();
    if (ec == beast::error::timeout) {
      return fail(HttpErrorKind::kTimeout, "timed out connecting to " + host_header);
    }
    if (ec) {
      return fail(HttpErrorKind::kConnect, "connecting to " + host_header + ": " + ec.message());
    }
    ++connections_opened;
    error_code ignored;
    stream.socket().set_option(tcp::no_delay(true), ignored);
    if (tls) {
      stream.expires_at(deadline);
      tls->async_handshake(ssl::stream_base::client, [&](const error_code& e) { ec = e; });
      runToCompletion();
      if (ec == beast::error::timeout) {
        return fail(HttpErrorKind::kTimeout, "timed out in the TLS handshake with " + host_header);
      }
      if (ec) {
        // Any handshake failure is TLS's: a peer that closes here refused our TLS.
        std::string why =
            verify_error.empty() ? ec.message() : "certificate verify failed: " + verify_error;
        return fail(HttpErrorKind::kTls, "TLS handshake with " + host_header + ": " + why);
      }
    }
    connected = true;
    return std::nullopt;
  }

  // The error of a write or read: TLS alerts (a client certificate refused after a TLS 1.3
  // handshake arrives here) are kTls, the rest kIo.
  HttpResult failIo(const error_code& ec, const std::string& doing) {
    if (isTlsError(ec) && ec != ssl::error::stream_truncated) {
      return fail(HttpErrorKind::kTls,
                  "TLS error " + doing + " " + host_header + ": " + ec.message());
    }
    return fail(HttpErrorKind::kIo, doing + " " + host_header + ": " + ec.message());
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
      tcpLayer().expires_at(deadline);
      withStream([&](auto& stream) {
        http::async_write(stream, req, [&](const error_code& e, std::size_t) { ec = e; });
      });
      runToCompletion();
      if (ec == beast::error::timeout) {
        return fail(HttpErrorKind::kTimeout, "timed out sending the request to " + host_header);
      }
      if (ec) {
        if (reused && attempt == 0 && isConnectionGone(ec)) {
          close();
          continue;
        }
        return failIo(ec, "sending to");
      }

      http::response_parser<http::string_body> parser;
      parser.body_limit(body_limit);
      tcpLayer().expires_at(deadline);
      withStream([&](auto& stream) {
        http::async_read(stream, buffer, parser, [&](const error_code& e, std::size_t) { ec = e; });
      });
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
        return failIo(ec, "reading from");
      }
      tcpLayer().expires_never();

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
  TlsOptions tls_options;
  std::string host_header;
  std::string verify_name; // the name (or IP) the server's certificate must carry
  asio::io_context ioc{1};
  std::shared_ptr<TlsContext> tls_context; // set for https
  beast::tcp_stream plain{ioc};            // http
  std::unique_ptr<TlsStream> tls;          // https: one per connection
  std::string verify_error;                // why the last handshake's verification failed
  beast::flat_buffer buffer;
  bool connected = false;
  std::uint64_t connections_opened = 0;
  std::uint64_t body_limit = kMaxBodyBytes;
};

HttpClient::HttpClient(Url url, TlsOptions tls)
    : impl_(std::make_unique<Impl>(std::move(url), std::move(tls))) {}

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

std::uint64_t HttpClient::connectionsOpened() const { return impl_->connections_opened; }

void HttpClient::setResponseBodyLimit(std::uint64_t bytes) { impl_->body_limit = bytes; }

} // namespace kesm::net
