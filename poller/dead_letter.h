#pragma once

// The on-failure destination: records whose retries are exhausted are written to a Kafka
// topic, with headers saying where they came from and why they failed, before their source
// offsets are committed.

#include "common/types.h"
#include "config/config.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace kesm::poller {

struct FailureInfo {
  std::string mapping;
  int attempts = 0;
  std::string error;         // the last attempt's outcome and detail
  std::int64_t failed_at_ms; // epoch milliseconds
};

// Header names on every record written to the destination (the original headers come first).
inline constexpr const char* kHeaderMapping = "kesm.mapping";
inline constexpr const char* kHeaderTopic = "kesm.source.topic";
inline constexpr const char* kHeaderPartition = "kesm.source.partition";
inline constexpr const char* kHeaderOffset = "kesm.source.offset";
inline constexpr const char* kHeaderTimestamp = "kesm.source.timestamp";
inline constexpr const char* kHeaderAttempts = "kesm.attempts";
inline constexpr const char* kHeaderError = "kesm.error";
inline constexpr const char* kHeaderFailedAt = "kesm.failed.at";

// Thread-safe: every poller of a mapping shares one.
class DeadLetterSink {
public:
  virtual ~DeadLetterSink() = default;
  // Blocks until every record of `batch` is acknowledged by the cluster (acks=all), or fails.
  // False with `error` set when any record was not written; the caller retries the whole
  // batch (a retry may duplicate the records that were written).
  virtual bool write(const Batch& batch, const FailureInfo& info, std::string& error) = 0;
};

// An idempotent producer on the mapping's cluster (same bootstrap servers and security).
// Throws std::runtime_error when the client cannot be created.
std::shared_ptr<DeadLetterSink> makeKafkaDeadLetterSink(const config::Mapping& mapping,
                                                        std::chrono::milliseconds timeout);

} // namespace kesm::poller
