#include "common/json.h"
#include "common/log.h"
#include "invoker/batch_item_failures.h"
#include "invoker/http_outcome.h"
#include "invoker/invoker.h"
#include "invoker/payload.h"
#include "net/http.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
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
  case InvokeOutcome::kPayloadTooLarge:
    return "payload_too_large";
  case InvokeOutcome::kPartialFailure:
    return "partial_failure";
  }
  return "unknown";
}

namespace {

// A Lambda error document is small; a larger 2xx body is a result, never parsed.
constexpr std::size_t kMaxInspectedBody = 64 * 1024;

bool isJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

} // namespace

SuccessBody classifySuccessBody(std::string_view body) {
  std::size_t start = 0;
  while (start < body.size() && isJsonSpace(body[start])) {
    ++start;
  }
  std::string_view rest = body.substr(start);
  // The emulator's timeout answer is plain text; a JSON string holding it counts too.
  constexpr std::string_view kTimedOut = "Task timed out after";
  if (rest.substr(0, kTimedOut.size()) == kTimedOut ||
      (rest.size() > kTimedOut.size() && rest[0] == '"' &&
       rest.substr(1, kTimedOut.size()) == kTimedOut)) {
    return SuccessBody::kLambdaError;
  }
  // Most answers name neither member: no parse for them on the data path.
  if (rest.empty() || rest[0] != '{' || body.size() > kMaxInspectedBody ||
      (body.find("errorMessage") == std::string_view::npos &&
       body.find("batchItemFailures") == std::string_view::npos)) {
    return SuccessBody::kSuccess;
  }
  json::Value doc;
  try {
    doc = json::parse(body);
  } catch (const json::JsonError&) {
    return SuccessBody::kSuccess; // not JSON: the function's business
  }
  const json::Value* message = doc.find("errorMessage");
  const json::Value* type = doc.find("errorType");
  if (message != nullptr && type != nullptr && message->kind == json::Value::Kind::kString &&
      type->kind == json::Value::Kind::kString) {
    return SuccessBody::kLambdaError;
  }
  if (doc.find("batchItemFailures") != nullptr) {
    return SuccessBody::kBatchFailures;
  }
  return SuccessBody::kSuccess;
}

std::optional<std::chrono::milliseconds> parseRetryAfter(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  // delta-seconds only; an HTTP-date (rare from functions) is ignored. A day at most.
  constexpr std::int64_t kMaxSeconds = 24 * 3600;
  if (value.empty() || value.size() > 9) {
    return std::nullopt;
  }
  std::int64_t seconds = 0;
  for (char c : value) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    seconds = seconds * 10 + (c - '0');
  }
  return std::chrono::milliseconds(std::min(seconds, kMaxSeconds) * 1000);
}

namespace {

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

// Owned by one thread (the poller's invoke worker); keeps one keep-alive connection.
class HttpInvoker final : public FunctionInvoker {
public:
  explicit HttpInvoker(const HttpInvokerOptions& options)
      : client_(net::parseUrl(options.url), options.tls), options_(options) {}

  InvokeResult invoke(const Batch& batch) override {
    InvokeResult result;
    net::HttpResult http;
    try {
      const std::string body =
          encodeLambdaKafkaEvent(batch, options_.bootstrap_servers, options_.format);
      if (options_.target.empty() && !options_.sign) {
        http = client_.post(body, {}, options_.timeout);
      } else {
        http = signedPost(body);
      }
    } catch (const std::exception& e) {
      // Allocation failure, or the sign hook could not get credentials: a failed attempt.
      result.outcome = InvokeOutcome::kConnectionError;
      result.detail = std::string("invoke failed: ") + e.what();
      return result;
    }
    if (std::optional<InvokeResult> failure = httpFailure(http)) {
      return *failure;
    }
    const net::HttpResponse& response = http.response;
    result.http_status = response.status;
    // AWS marks a handler that raised with this header on an otherwise normal 200.
    bool has_function_error = false;
    for (const auto& [name, value] : response.headers) {
      has_function_error = has_function_error || equalsIgnoreCase(name, kFunctionErrorHeader);
    }
    if (has_function_error) {
      result.outcome = InvokeOutcome::kFunctionError;
      result.detail = "X-Amz-Function-Error: " + response.header(kFunctionErrorHeader) + ": " +
                      bodyExcerpt(response.body);
      return result;
    }
    SuccessBody kind =
        options_.detect_error_body ? classifySuccessBody(response.body) : SuccessBody::kSuccess;
    if (kind == SuccessBody::kLambdaError) {
      result.outcome = InvokeOutcome::kFunctionError;
      result.detail = "HTTP " + std::to_string(response.status) +
                      " with a Lambda error document: " + bodyExcerpt(response.body);
      return result;
    }
    if (options_.report_batch_item_failures) {
      // Any size: a long list of failures must not pass as a success.
      if (response.body.find("batchItemFailures") != std::string::npos) {
        reportedFailures(batch, response, result);
        return result;
      }
    } else if (kind == SuccessBody::kBatchFailures &&
               !options_.warned_ignored_body->exchange(true)) {
      // Like AWS without ReportBatchItemFailures: the whole batch succeeded. Said once.
      log(LogLevel::kWarn, "invoker", options_.log_name,
          ": the function answered with batchItemFailures, but the mapping does not set "
          "functionResponseTypes: [ReportBatchItemFailures], so the whole batch counts as "
          "succeeded (logged once): ",
          bodyExcerpt(response.body));
    }
    result.outcome = InvokeOutcome::kSuccess;
    return result;
  }

private:
  // A 2xx answer under ReportBatchItemFailures: success, the records that failed, or (a
  // malformed list) the whole batch failed, as AWS does.
  void reportedFailures(const Batch& batch, const net::HttpResponse& response,
                        InvokeResult& result) const {
    BatchItemFailures answer = parseBatchItemFailures(response.body, batch);
    switch (answer.verdict) {
    case BatchItemFailures::Verdict::kAllSucceeded:
      result.outcome = InvokeOutcome::kSuccess;
      return;
    case BatchItemFailures::Verdict::kMalformed:
      result.outcome = InvokeOutcome::kFunctionError;
      result.detail = "malformed batchItemFailures (" + answer.error +
                      "): the whole batch failed: " + bodyExcerpt(response.body);
      return;
    case BatchItemFailures::Verdict::kFailures:
      break;
    }
    result.outcome = InvokeOutcome::kPartialFailure;
    result.detail = "batchItemFailures from";
    for (const auto& failure : answer.failures) {
      result.detail += " " + failure.tp.topic + "-" + std::to_string(failure.tp.partition.value()) +
                       "@" + std::to_string(failure.offset);
    }
    result.item_failures = std::move(answer.failures);
  }

  net::HttpResult signedPost(const std::string& body) {
    OutgoingRequest request{"POST", options_.target.empty() ? url_target_ : options_.target,
                            options_.headers, body};
    if (options_.sign) {
      HeaderList added = options_.sign(request);
      request.headers.insert(request.headers.end(), added.begin(), added.end());
    }
    return client_.request(request.method, request.target, request.body, request.headers,
                           options_.timeout);
  }

  net::HttpClient client_;
  HttpInvokerOptions options_;
  std::string url_target_ = net::parseHttpUrl(options_.url).target; // after options_
};

} // namespace

std::unique_ptr<FunctionInvoker> makeHttpInvoker(const HttpInvokerOptions& options) {
  return std::make_unique<HttpInvoker>(options);
}

} // namespace kesm::invoker
