#include "invoker/invoker.h"
#include "invoker/payload.h"
#include "net/http.h"

#include <cctype>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace kesm::invoker {

const char* toString(InvokeOutcome outcome) {
  switch (outcome) {
  case InvokeOutcome::kSuccess:
    return "success";
  case InvokeOutcome::kFunctionError:
    return "function_error";
  case InvokeOutcome::kHttpError:
    return "http_error";
  case InvokeOutcome::kTimeout:
    return "timeout";
  case InvokeOutcome::kConnectionError:
    return "connection_error";
  }
  return "unknown";
}

namespace {

constexpr std::size_t kBodyExcerptBytes = 200;
constexpr const char* kFunctionErrorHeader = "X-Amz-Function-Error";

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string excerpt(const std::string& body) {
  if (body.size() <= kBodyExcerptBytes) {
    return body;
  }
  return body.substr(0, kBodyExcerptBytes) + "...";
}

// Owned by one thread (the poller's invoke worker); keeps one keep-alive connection.
class HttpInvoker final : public FunctionInvoker {
public:
  explicit HttpInvoker(const HttpInvokerOptions& options)
      : client_(net::parseHttpUrl(options.url)), timeout_(options.timeout),
        bootstrap_servers_(options.bootstrap_servers) {}

  InvokeResult invoke(const Batch& batch) override {
    InvokeResult result;
    net::HttpResult http;
    try {
      const std::string body = encodeLambdaKafkaEvent(batch, bootstrap_servers_);
      http = client_.post(body, {}, timeout_);
    } catch (const std::exception& e) {
      // Only allocation failure can get here; report it as a failed attempt.
      result.outcome = InvokeOutcome::kConnectionError;
      result.detail = std::string("invoke failed: ") + e.what();
      return result;
    }
    switch (http.error) {
    case net::HttpErrorKind::kNone:
      break;
    case net::HttpErrorKind::kTimeout:
      result.outcome = InvokeOutcome::kTimeout;
      result.detail = http.error_message;
      return result;
    case net::HttpErrorKind::kConnect:
    case net::HttpErrorKind::kIo:
      result.outcome = InvokeOutcome::kConnectionError;
      result.detail = http.error_message;
      return result;
    }
    const net::HttpResponse& response = http.response;
    result.http_status = response.status;
    if (response.status < 200 || response.status > 299) {
      result.outcome = InvokeOutcome::kHttpError;
      result.detail = "HTTP " + std::to_string(response.status) + ": " + excerpt(response.body);
      return result;
    }
    // AWS marks a handler that raised with this header on an otherwise normal 200.
    bool has_function_error = false;
    for (const auto& [name, value] : response.headers) {
      has_function_error = has_function_error || equalsIgnoreCase(name, kFunctionErrorHeader);
    }
    if (has_function_error) {
      result.outcome = InvokeOutcome::kFunctionError;
      result.detail = "X-Amz-Function-Error: " + response.header(kFunctionErrorHeader) + ": " +
                      excerpt(response.body);
      return result;
    }
    result.outcome = InvokeOutcome::kSuccess;
    return result;
  }

private:
  net::HttpClient client_;
  std::chrono::milliseconds timeout_;
  std::string bootstrap_servers_;
};

} // namespace

std::unique_ptr<FunctionInvoker> makeHttpInvoker(const HttpInvokerOptions& options) {
  return std::make_unique<HttpInvoker>(options);
}

} // namespace kesm::invoker
