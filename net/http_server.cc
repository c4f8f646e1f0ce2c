// HttpServer: one I/O thread runs every socket operation asynchronously (accept, read, write,
// timeouts) on one io_context; handlers run on a small pool so that a slow one (a /metrics
// serialization, the sample function's simulated latency) never stalls other connections.
// Connection state is touched only on the I/O thread.

#include "net/http.h"

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <future>
#include <list>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace kesm::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

// Pause after a failed accept (out of descriptors keeps the listener readable: no spinning).
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

// Runs jobs on up to max_threads threads, started on demand. The queue needs no bound of its
// own: a connection has at most one request in it.
class HandlerPool {
public:
  explicit HandlerPool(std::size_t max_threads) : max_threads_(max_threads) {
    std::lock_guard lock(mutex_);
    spawnLocked(); // one at construction: failing to start it is a startup error
  }
  ~HandlerPool() { stop(); }

  void submit(std::function<void()> job) {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      return;
    }
    jobs_.push_back(std::move(job));
    if (idle_ < jobs_.size() && threads_.size() < max_threads_) {
      try {
        spawnLocked();
      } catch (const std::system_error&) {
        // Out of threads: the running ones take the job.
      }
    }
    cv_.notify_one();
  }

  // Drops queued jobs and joins the threads; a running job is waited for.
  void stop() {
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      dropped.swap(jobs_);
    }
    cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
  }

private:
  void spawnLocked() {
    threads_.emplace_back([this] { run(); });
  }

  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      ++idle_;
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      --idle_;
      if (stopping_) {
        return;
      }
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      job = nullptr; // release what it holds outside the lock
      lock.lock();
    }
  }

  const std::size_t max_threads_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_; // guarded by mutex_
  std::size_t idle_ = 0;                   // guarded by mutex_
  bool stopping_ = false;                  // guarded by mutex_
  std::vector<std::thread> threads_;       // changed under mutex_; joined by stop()
};

HttpResponse callHandler(const HttpServer::Handler& handler, const HttpRequest& request) {
  try {
    return handler(request);
  } catch (const std::exception& e) {
    HttpResponse response;
    response.status = 500;
    response.headers = {{"Content-Type", "text/plain"}};
    response.body = std::string("internal error: ") + e.what() + "\n";
    return response;
  } catch (...) {
    HttpResponse response;
    response.status = 500;
    response.headers = {{"Content-Type", "text/plain"}};
    response.body = "internal error\n";
    return response;
  }
}

bool isParseError(const error_code& ec) {
  return ec.category() == make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

tcp::endpoint resolveListen(asio::io_context& ioc, const std::string& listen) {
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
  return endpoints.begin()->endpoint();
}

void validate(const HttpServerOptions& o) {
  auto positive = [](std::chrono::milliseconds d) { return d.count() > 0; };
  if (o.max_connections == 0 || o.handler_threads == 0 || o.header_limit_bytes == 0 ||
      !positive(o.request_timeout) || !positive(o.idle_timeout) || !positive(o.write_timeout)) {
    throw std::invalid_argument("HttpServerOptions: connections, handler threads, header "
                                "limit and timeouts must be positive");
  }
}

} // namespace

struct HttpServer::Impl {
  class Session;
  using Registry = std::list<std::shared_ptr<Session>>;

  // One connection. Lives in `sessions` from accept to close(); asynchronous operations and
  // a running handler job hold it too. Every member function runs on the I/O thread.
  class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(Impl& server, tcp::socket socket)
        : server_(server), stream_(std::move(socket)),
          buffer_(server.options.header_limit_bytes +
                  (server.options.body_limit_bytes > 0 ? 64 * 1024 : 8 * 1024)) {}

    void start(Registry::iterator self) {
      self_ = self;
      error_code ignored;
      stream_.socket().set_option(tcp::no_delay(true), ignored);
      readRequest();
    }

    bool waitingForRequest() const { return state_ == State::kReading; }
    Clock::time_point waitingSince() const { return waiting_since_; }

    void close() {
      if (state_ == State::kClosed) {
        return;
      }
      state_ = State::kClosed;
      error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream_.close();
      server_.open.fetch_sub(1);
      server_.sessions.erase(self_); // may drop the last owner but one: the caller's
    }

  private:
    enum class State { kReading, kHandling, kWriting, kClosed };

    void readRequest() {
      if (state_ == State::kClosed) {
        return; // closed (stop, eviction) while its last write completed anyway
      }
      state_ = State::kReading;
      waiting_since_ = Clock::now();
      parser_.emplace();
      parser_->header_limit(static_cast<std::uint32_t>(server_.options.header_limit_bytes));
      parser_->body_limit(server_.options.body_limit_bytes);
      if (first_request_ || buffer_.size() > 0) {
        readWhole(); // a new connection has request_timeout for everything
        return;
      }
      // Keep-alive: idle_timeout until the next request's first byte, then request_timeout.
      stream_.expires_after(server_.options.idle_timeout);
      stream_.async_read_some(buffer_.prepare(std::min<std::size_t>(1024, buffer_.max_size())),
                              [self = shared_from_this()](const error_code& ec, std::size_t n) {
                                self->buffer_.commit(n);
                                if (ec) {
                                  self->onRead(ec);
                                  return;
                                }
                                self->readWhole();
                              });
    }

    void readWhole() {
      if (state_ == State::kClosed) {
        return;
      }
      stream_.expires_after(server_.options.request_timeout);
      http::async_read(
          stream_, buffer_, *parser_,
          [self = shared_from_this()](const error_code& ec, std::size_t) { self->onRead(ec); });
    }

    void onRead(const error_code& ec) {
      if (state_ == State::kClosed) {
        return;
      }
      if (ec == beast::error::timeout) {
        server_.timed_out.fetch_add(1);
        close();
      } else if (ec == http::error::body_limit) {
        sendError(http::status::payload_too_large,
                  server_.options.body_limit_bytes == 0
                      ? "this server takes no request body\n"
                      : "request body larger than " +
                            std::to_string(server_.options.body_limit_bytes) + " bytes\n");
      } else if (ec == http::error::header_limit) {
        sendError(http::status::request_header_fields_too_large,
                  "request header larger than " +
                      std::to_string(server_.options.header_limit_bytes) + " bytes\n");
      } else if (isParseError(ec) || ec == http::error::buffer_overflow) {
        sendError(http::status::bad_request, "malformed request: " + ec.message() + "\n");
      } else if (ec) {
        close(); // closed or reset by the peer
      } else {
        handle();
      }
    }

    void handle() {
      state_ = State::kHandling;
      stream_.expires_never();
      auto& req = parser_->get();
      HttpRequest request;
      request.method = std::string(req.method_string());
      request.target = std::string(req.target());
      for (const auto& field : req.base()) {
        request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      request.body = std::move(req.body());
      const bool head = req.method() == http::verb::head;
      const unsigned version = req.version();
      const bool keep_alive = req.keep_alive();
      parser_.reset();
      Impl& server = server_;
      server.pool.submit([&server, self = shared_from_this(), request = std::move(request), head,
                          version, keep_alive]() {
        HttpResponse response = callHandler(server.handler, request);
        asio::post(server.ioc,
                   [self, response = std::move(response), head, version, keep_alive]() mutable {
                     self->respond(std::move(response), head, version, keep_alive);
                   });
      });
    }

    void respond(HttpResponse response, bool head, unsigned version, bool keep_alive) {
      if (state_ == State::kClosed) {
        return;
      }
      auto res = std::make_shared<http::response<http::string_body>>();
      res->version(version);
      if (response.status < 100 || response.status > 599) {
        response = HttpResponse{500, {{"Content-Type", "text/plain"}}, "invalid status\n"};
      }
      res->result(static_cast<unsigned>(response.status));
      for (const auto& [name, value] : response.headers) {
        res->set(name, value);
      }
      keep_alive = keep_alive && !server_.stopping.load() &&
                   !beast::iequals(response.header("Connection"), "close");
      if (head) {
        // The Content-Length a GET would carry, and no body (RFC 9110 9.3.2).
        res->content_length(response.body.size());
      } else {
        res->body() = std::move(response.body);
        res->prepare_payload();
      }
      res->keep_alive(keep_alive);
      write(std::move(res), !keep_alive);
    }

    void sendError(http::status status, std::string body) {
      auto res = std::make_shared<http::response<http::string_body>>(status, 11);
      res->set(http::field::content_type, "text/plain");
      res->body() = std::move(body);
      res->prepare_payload();
      res->keep_alive(false);
      write(std::move(res), true);
    }

    void write(std::shared_ptr<http::response<http::string_body>> res, bool close_after) {
      state_ = State::kWriting;
      stream_.expires_after(server_.options.write_timeout);
      http::async_write(
          stream_, *res,
          [self = shared_from_this(), res, close_after](const error_code& ec, std::size_t) {
            if (ec == beast::error::timeout) {
              self->server_.timed_out.fetch_add(1);
            }
            if (ec || close_after) {
              self->close();
              return;
            }
            self->first_request_ = false;
            self->readRequest();
          });
    }

    Impl& server_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    Registry::iterator self_;
    State state_ = State::kReading;
    Clock::time_point waiting_since_ = Clock::now();
    bool first_request_ = true;
  };

  Impl(const std::string& listen, Handler h, HttpServerOptions o)
      : handler(std::move(h)), options(o), pool((validate(options), options.handler_threads)) {
    tcp::endpoint endpoint = resolveListen(ioc, listen);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    error_code ec;
    acceptor.bind(endpoint, ec);
    if (ec) {
      throw std::runtime_error("cannot listen on " + listen + ": " + ec.message());
    }
    acceptor.listen(asio::socket_base::max_listen_connections);
    bound_port = acceptor.local_endpoint().port();
    accept();
    io_thread = std::thread([this] { runIo(); });
  }

  void runIo() {
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception&) {
        // An allocation failure in one connection's handler: that connection is lost (its
        // handler was consumed), the server goes on.
      }
    }
  }

  void accept() {
    acceptor.async_accept([this](const error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
        return;
      }
      if (ec == asio::error::connection_aborted) {
        accept(); // that one connection is gone; the next is fine
        return;
      }
      if (ec) {
        accept_errors.fetch_add(1);
        retry_timer.expires_after(kAcceptBackoff);
        retry_timer.async_wait([this](const error_code& wait_ec) {
          if (!wait_ec && acceptor.is_open()) {
            accept();
          }
        });
        return;
      }
      admit(std::move(socket));
      accept();
    });
  }

  void admit(tcp::socket socket) {
    accepted.fetch_add(1);
    if (sessions.size() >= options.max_connections && !evictOldestWaiting()) {
      refused.fetch_add(1);
      error_code ignored;
      socket.close(ignored);
      return;
    }
    open.fetch_add(1);
    auto session = std::make_shared<Session>(*this, std::move(socket));
    sessions.push_front(session);
    session->start(sessions.begin());
  }

  // Closes the connection that has waited longest for a request. False when none waits.
  bool evictOldestWaiting() {
    Session* oldest = nullptr;
    for (const auto& s : sessions) {
      if (s->waitingForRequest() &&
          (oldest == nullptr || s->waitingSince() < oldest->waitingSince())) {
        oldest = s.get();
      }
    }
    if (oldest == nullptr) {
      return false;
    }
    evicted.fetch_add(1);
    auto keep = oldest->shared_from_this(); // close() erases it from sessions
    oldest->close();
    return true;
  }

  void stop() {
    if (stopping.exchange(true)) {
      return;
    }
    std::promise<void> closed;
    asio::post(ioc, [this, &closed] {
      error_code ignored;
      acceptor.close(ignored);
      retry_timer.cancel();
      while (!sessions.empty()) {
        auto keep = sessions.front();
        keep->close();
      }
      closed.set_value();
    });
    closed.get_future().wait();
    pool.stop(); // a running handler returns; its answer goes to a closed session
    work.reset();
    ioc.stop();
    if (io_thread.joinable()) {
      io_thread.join();
    }
  }

  Handler handler;
  const HttpServerOptions options;
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  tcp::acceptor acceptor{ioc};
  asio::steady_timer retry_timer{ioc};
  Registry sessions; // I/O thread only
  HandlerPool pool;
  std::uint16_t bound_port = 0;
  std::thread io_thread;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> open{0};
  std::atomic<std::uint64_t> evicted{0};
  std::atomic<std::uint64_t> refused{0};
  std::atomic<std::uint64_t> timed_out{0};
  std::atomic<std::uint64_t> accept_errors{0};
};

HttpServer::HttpServer(const std::string& listen, Handler handler, HttpServerOptions options)
    : impl_(std::make_unique<Impl>(listen, std::move(handler), options)) {}

HttpServer::~HttpServer() { stop(); }

std::uint16_t HttpServer::port() const { return impl_->bound_port; }

std::uint64_t HttpServer::acceptedConnections() const { return impl_->accepted.load(); }

HttpServerStats HttpServer::stats() const {
  HttpServerStats s;
  s.accepted = impl_->accepted.load();
  s.open = impl_->open.load();
  s.evicted = impl_->evicted.load();
  s.refused = impl_->refused.load();
  s.timed_out = impl_->timed_out.load();
  s.accept_errors = impl_->accept_errors.load();
  return s;
}

void HttpServer::stop() { impl_->stop(); }

} // namespace kesm::net
