#pragma once

// The sample function runtime: an HTTP server that accepts AWS Lambda's Kafka event,
// parses it, sleeps, fails on demand and records what it received. Used by the demo,
// the tests and the benchmarks; it is a real HTTP peer, not a mock.

#include "common/types.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kesm::samplefn {

// What the function saw of one record (bytes decoded from base64).
struct ReceivedRecord {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<Header> headers;
};

// Decides the answer for one invocation. Called concurrently.
enum class Verdict {
  kSucceed,
  kFailHttp500,
  kFailHttp404, // function not found: kesm disables the mapping
  kFailHttp429, // throttled
  kFailHttp413, // payload too large for this function
  kFailFunctionError,
  kHang,
};

struct SampleFunctionOptions {
  std::string listen = "127.0.0.1:0";
  std::chrono::milliseconds latency{0};
  double fail_rate = 0.0;  // probability of an HTTP 500, per invocation
  std::string record_file; // if set, one line per record: "topic partition offset"
  // Optional hooks for tests. `decide` overrides fail_rate; `on_batch` sees every
  // successfully answered batch (not called for failed ones).
  std::function<Verdict(const std::vector<ReceivedRecord>&)> decide;
  std::function<void(const std::vector<ReceivedRecord>&)> on_batch;
};

struct SampleFunctionStats {
  std::uint64_t invocations = 0;
  std::uint64_t failures = 0;
  std::uint64_t records = 0; // in successful invocations
};

class SampleFunction {
public:
  explicit SampleFunction(SampleFunctionOptions options);
  ~SampleFunction();
  std::uint16_t port() const;
  std::string url() const; // http://127.0.0.1:<port>/2015-03-31/functions/function/invocations
  SampleFunctionStats stats() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses the event body with a strict JSON reader (common/json.h); throws
// std::runtime_error on malformed input, including anything that is not RFC 8259 JSON.
std::vector<ReceivedRecord> parseLambdaKafkaEvent(const std::string& body);

} // namespace kesm::samplefn
