#pragma once

// How an HTTP exchange with a function maps to an InvokeResult, shared by the invokers that
// POST to a URL (lambdaEvent, cloudEvents). Pure.

#include "invoker/invoker.h"
#include "net/http.h"

#include <optional>
#include <string>

namespace kesm::invoker {

// The failure an exchange stands for, or nullopt for a 2xx (whose body is the caller's to
// judge): a transport error is kTimeout or kConnectionError, 413 kPayloadTooLarge, any other
// status kHttpError, with http_status and a detail holding AWS's x-amzn-ErrorType and a body
// excerpt; a 429's Retry-After is kept in retry_after.
std::optional<InvokeResult> httpFailure(const net::HttpResult& http);

// The first 200 bytes of a body, for a detail ("..." when cut).
std::string bodyExcerpt(const std::string& body);

} // namespace kesm::invoker
