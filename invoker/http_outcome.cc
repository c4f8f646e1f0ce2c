#include "invoker/http_outcome.h"

#include <cstddef>
#include <string>

namespace kesm::invoker {

namespace {
constexpr std::size_t kBodyExcerptBytes = 200;
} // namespace

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
  const std::string& body = http.response.body;
  result.detail =
      "HTTP " + std::to_string(status) + ": " +
      (body.size() <= kBodyExcerptBytes ? body : body.substr(0, kBodyExcerptBytes) + "...");
  return result;
}

} // namespace kesm::invoker
