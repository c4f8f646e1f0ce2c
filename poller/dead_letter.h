#pragma once

// The on-failure destination: records whose retries are exhausted are written to a Kafka
// topic, with headers saying where they came from and why they failed, before their source
// offsets are committed.

#include "common/types.h"
#include "config/config.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
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

// The longest kesm.error value written: the headers kesm adds stay within
// kDestinationHeadroomBytes, so a destination topic that accepts its source's records plus
// that much accepts every record given up.
inline constexpr std::size_t kMaxErrorHeaderBytes = 1024;
inline constexpr std::int64_t kDestinationHeadroomBytes = 4096;

enum class WriteStatus {
  kWritten,   // every record acknowledged (acks=all)
  kRetriable, // e.g. no leader, timed out: the same write may succeed later
  kRefused,   // the destination refuses for good: too large, topic gone, not authorized
};

struct WriteResult {
  WriteStatus status = WriteStatus::kWritten;
  std::string error; // the first failure, with the record's source topic-partition@offset
  bool ok() const { return status == WriteStatus::kWritten; }
};

// Thread-safe: every poller of a mapping shares one.
class DeadLetterSink {
public:
  virtual ~DeadLetterSink() = default;
  // Blocks until every record of `batch` is acknowledged by the cluster (acks=all), or fails.
  // On failure the caller retries the whole batch (a retry may duplicate the records that
  // were written), or stops when the destination refused.
  virtual WriteResult write(const Batch& batch, const FailureInfo& info) = 0;
};

// A librdkafka error code (an rd_kafka_resp_err_t), from a produce call or a delivery report,
// that writing the same record again cannot fix.
bool isRefusedByDestination(int librdkafka_error);

// The producer's size limits for a destination topic whose max.message.bytes is `topic_max`
// (nullopt: unknown). librdkafka's defaults refuse, on the client, records the broker accepts
// (message.max.bytes 1,000,000 against the broker's 1,048,588), and batch more than a topic
// with a small max.message.bytes accepts. With the limit known the client refuses only what
// the broker would; unknown, the broker decides alone.
struct ProducerLimits {
  std::int64_t message_max_bytes = 0; // librdkafka message.max.bytes: one record, on the wire
  std::int64_t batch_size = 0;        // librdkafka batch.size: several records in one batch
};
ProducerLimits producerLimits(std::optional<std::int64_t> topic_max);
inline constexpr std::int64_t kUnknownDestinationMessageMax = 100 * 1024 * 1024;

// An idempotent producer on the mapping's cluster (same bootstrap servers and security). Its
// size limits follow the destination topic's max.message.bytes, read at creation with the
// Admin API (DescribeConfigs); when that fails (no DescribeConfigs ACL, librdkafka's mock
// cluster) it logs why and leaves the limit to the broker. Warns when a source topic accepts
// larger records than the destination. Throws std::runtime_error when the client cannot be
// created.
std::shared_ptr<DeadLetterSink> makeKafkaDeadLetterSink(const config::Mapping& mapping,
                                                        std::chrono::milliseconds timeout);

} // namespace kesm::poller
