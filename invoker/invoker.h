#pragma once

// Function runtime clients. Kafka is only data here: records arrive as kesm::Batch.

#include "common/types.h"
#include "invoker/payload.h"
#include "net/http.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kesm::invoker {

enum class InvokeOutcome {
  kSuccess,
  kFunctionError,   // the handler raised: X-Amz-Function-Error, or a Lambda error document
  kHttpError,       // non-2xx status
  kTimeout,         // no complete answer within the function timeout
  kConnectionError, // connect/read/write failed
  kPayloadTooLarge, // HTTP 413: the function's limit is below this batch's size
  kPartialFailure,  // the function named the records that failed: see item_failures
};

const char* toString(InvokeOutcome outcome); // "success", "function_error", ...

// The first record of a partition that failed; the partition's records before it succeeded.
struct ItemFailure {
  TopicPartition tp;
  std::int64_t offset = 0;
};

struct InvokeResult {
  InvokeOutcome outcome = InvokeOutcome::kSuccess;
  int http_status = 0; // 0 when there was no response
  std::string detail;  // human-readable reason for logs; never a secret
  // A 429's Retry-After, when the answer gave one.
  std::optional<std::chrono::milliseconds> retry_after;
  // With kPartialFailure: one entry per partition that failed, at its first failed record.
  // Records of partitions not listed succeeded.
  std::vector<ItemFailure> item_failures;
  bool ok() const { return outcome == InvokeOutcome::kSuccess; }
};

// Invokes a function with one batch. Blocking; owned and used by one thread at a time.
class FunctionInvoker {
public:
  virtual ~FunctionInvoker() = default;
  virtual InvokeResult invoke(const Batch& batch) = 0;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>; // name, value; order kept

// One request as it will be sent, for a protocol that signs it (awsLambda).
struct OutgoingRequest {
  std::string method; // "POST"
  std::string target; // path and query as sent
  HeaderList headers; // HttpInvokerOptions::headers (the client adds Host and User-Agent)
  std::string body;
};

struct HttpInvokerOptions {
  std::string url; // http[s]://host[:port]/path
  // https: whom to trust, the client certificate, the server name. Its context is loaded once
  // per mapping (poller::functionTlsOptions) and shared by the mapping's invokers.
  net::TlsOptions tls;
  // Request side of protocols other than lambdaEvent: the path and query sent instead of the
  // url's (empty: the url's), headers sent with every request, and a hook called per request
  // that returns headers to add (SigV4's). The hook is called from the invoking thread; it
  // throws std::runtime_error when it cannot sign (credentials unavailable): the attempt
  // then fails as kConnectionError with what() (never a secret) as the detail.
  std::string target;
  HeaderList headers;
  std::function<HeaderList(const OutgoingRequest&)> sign;
  std::chrono::milliseconds timeout{30000};
  std::string bootstrap_servers; // comma-separated, copied into the event
  EventFormat format;
  bool detect_error_body = true; // see classifySuccessBody()
  // functionResponseTypes: [ReportBatchItemFailures]: a 2xx body's batchItemFailures makes the
  // outcome kPartialFailure (invoker/batch_item_failures.h); without it the body is ignored.
  bool report_batch_item_failures = false;
  std::string log_name; // who logs, e.g. "orders"
  // Shared by the invokers of one mapping: a body kesm ignores is logged once, not per batch.
  std::shared_ptr<std::atomic<bool>> warned_ignored_body = std::make_shared<std::atomic<bool>>();
};

enum class SuccessBody {
  kSuccess,       // anything else: the batch succeeded
  kLambdaError,   // {"errorMessage": "...", "errorType": "...", ...} or "Task timed out after"
  kBatchFailures, // a partial batch response (batchItemFailures): see report_batch_item_failures
};

// What a 2xx body says. The Lambda Runtime Interface Emulator (and so every Lambda container
// image) answers a raising handler with 200 and the runtime's error document, and a timed-out
// one with 200 "Task timed out after ...", without X-Amz-Function-Error. Pure.
SuccessBody classifySuccessBody(std::string_view body);

// A Retry-After header's delay: delta-seconds (capped at a day); nullopt for an HTTP-date, an
// empty or a malformed value. Pure.
std::optional<std::chrono::milliseconds> parseRetryAfter(std::string_view value);

// POSTs AWS Lambda's self-managed Kafka event as JSON, keep-alive, one connection, over TLS
// for an https url (a TLS failure is kConnectionError, its detail saying why: retried).
// Success is a 2xx without an X-Amz-Function-Error header whose body is no Lambda error
// document (unless detect_error_body is off).
std::unique_ptr<FunctionInvoker> makeHttpInvoker(const HttpInvokerOptions& options);

} // namespace kesm::invoker
