#pragma once

// AWS Lambda's self-managed Kafka event, byte for byte in shape:
// {"eventSource":"SelfManagedKafka","bootstrapServers":"b1:9092,b2:9092",
//  "records":{"topic-0":[{"topic":"topic","partition":0,"offset":15,
//   "timestamp":1545084650987,"timestampType":"CREATE_TIME","key":"<b64>","value":"<b64>",
//   "headers":[{"headerKey":[104,101]}]}]}}
// Pure: no I/O. Strings (topic, header keys) are JSON-escaped; a header-key byte that is not
// part of well-formed UTF-8 is written as \u00XX of its value (read as Latin-1), so the body
// is always valid JSON. Keys and values are base64, header values byte arrays: exact bytes.

#include "common/types.h"

#include <cstddef>
#include <string>
#include <string_view>

namespace kesm::invoker {

std::string base64Encode(std::string_view bytes);

// The full event body for a batch. Records of one partition stay in the order given.
std::string encodeLambdaKafkaEvent(const Batch& batch, const std::string& bootstrap_servers);

// Exact number of bytes this record adds to the event's "records" arrays (including
// its separating comma), so the batcher can cut before the 6 MiB payload cap.
std::size_t encodedRecordSize(const Record& record);

// Bytes of the fixed envelope (eventSource, bootstrapServers, braces).
std::size_t encodedEnvelopeOverhead(const std::string& bootstrap_servers);
// Bytes one more distinct topic-partition adds: its key, brackets and separating comma.
// envelope + sum(partition overheads) + sum(record sizes) == encoded size, exactly.
std::size_t encodedPartitionOverhead(const std::string& topic, Partition partition);

} // namespace kesm::invoker
