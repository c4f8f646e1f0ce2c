#include "invoker/http_outcome.h"

#include <cstddef>
#include <string>

namespace kesm::invoker {

std::string bodyExcerpt(const std::string& body) {
  constexpr std::size_t kBodyExcerptBytes = 200;
  return body.size() <= kBodyExcerptBytes ? body : body.substr(0, kBodyExcerptBytes) + "...";
}

std::optional<InvokeResult> httpFailure(const net::HttpResult& http) {
  InvokeResult result;
  switch (http.error) {
  case net::HttpErrorKind::kNone:
    break;
  case net::HttpErrorKind::kTimeout:
    result.outcome = InvokeOutcome::kTimeout;
    result.detail = http.error_message;
    return result;
  case net::HttpErrorKind::kConnect:
  case net::HttpErrorKind::kIo:
  case net::HttpErrorKind::kTls:
    result.outcome = InvokeOutcome::kConnectionError;
    result.detail = http.error_message;
    return result;
  }
  const int status = http.response.status;
  if (status >= 200 && status <= 299) {
    return std::nullopt;
  }
  result.http_status = status;
  result.outcome = status == 413 ? InvokeOutcome::kPayloadTooLarge : InvokeOutcome::kHttpError;
  // AWS names the error in x-amzn-ErrorType (the body's message says the rest).
  const std::string error_type = http.response.header("x-amzn-ErrorType");
  result.detail = "HTTP " + std::to_string(status) + (error_type.empty() ? "" : " " + error_type) +
                  ": " + bodyExcerpt(http.response.body);
  if (status == 429) {
    result.retry_after = parseRetryAfter(http.response.header("Retry-After"));
  }
  return result;
}

} // namespace kesm::invoker
