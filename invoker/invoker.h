#pragma once

// Function runtime clients. Kafka is only data here: records arrive as kesm::Batch.

#include "common/types.h"

#include <chrono>
#include <memory>
#include <string>

namespace kesm::invoker {

enum class InvokeOutcome {
  kSuccess,
  kFunctionError,   // 2xx with X-Amz-Function-Error: the handler raised
  kHttpError,       // non-2xx status
  kTimeout,         // no complete answer within the function timeout
  kConnectionError, // connect/read/write failed
};

const char* toString(InvokeOutcome outcome); // "success", "function_error", ...

struct InvokeResult {
  InvokeOutcome outcome = InvokeOutcome::kSuccess;
  int http_status = 0; // 0 when there was no response
  std::string detail;  // human-readable reason for logs; never a secret
  bool ok() const { return outcome == InvokeOutcome::kSuccess; }
};

// Invokes a function with one batch. Blocking; owned and used by one thread at a time.
class FunctionInvoker {
public:
  virtual ~FunctionInvoker() = default;
  virtual InvokeResult invoke(const Batch& batch) = 0;
};

struct HttpInvokerOptions {
  std::string url; // http://host[:port]/path
  std::chrono::milliseconds timeout{30000};
  std::string bootstrap_servers; // comma-separated, copied into the event
};

// POSTs AWS Lambda's self-managed Kafka event as JSON, keep-alive, one connection.
// Success is a 2xx without an X-Amz-Function-Error header.
std::unique_ptr<FunctionInvoker> makeHttpInvoker(const HttpInvokerOptions& options);

} // namespace kesm::invoker
