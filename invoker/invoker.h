#pragma once

// Function runtime clients. Kafka is only data here: records arrive as kesm::Batch.

#include "common/types.h"
#include "invoker/payload.h"
#include "net/http.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

struct HttpInvokerOptions {
  std::string url; // http[s]://host[:port]/path
  // https: whom to trust, the client certificate, the server name. Its context is loaded once
  // per mapping (poller::functionTlsOptions) and shared by the mapping's invokers.
  net::TlsOptions tls;
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

// POSTs AWS Lambda's self-managed Kafka event as JSON, keep-alive, one connection, over TLS
// for an https url (a TLS failure is kConnectionError, its detail saying why: retried).
// Success is a 2xx without an X-Amz-Function-Error header whose body is no Lambda error
// document (unless detect_error_body is off).
std::unique_ptr<FunctionInvoker> makeHttpInvoker(const HttpInvokerOptions& options);

} // namespace kesm::invoker
