#pragma once

// AWS Lambda's self-managed Kafka event, byte for byte in shape:
// {"eventSource":"SelfManagedKafka","bootstrapServers":"b1:9092,b2:9092",
//  "records":{"topic-0":[{"topic":"topic","partition":0,"offset":15,
//   "timestamp":1545084650987,"timestampType":"CREATE_TIME","key":"<b64>","value":"<b64>",
//   "headers":[{"headerKey":[104,101]}]}]}}
// Pure: no I/O. Keys and values are base64, header values arrays of signed bytes (Java's
// byte, as AWS sends them: 0xC3 is -61). A null key is left out, as AWS does. Kafka's other
// nulls follow EventFormat (docs/architecture.md, "Nulls in the event").
//
// Strings (topic, bootstrapServers, header keys) are JSON-escaped. Kafka header keys are
// bytes on the wire and need not be UTF-8, but a JSON string must be: kesm writes them by a
// lossless rule (docs/architecture.md, "Header keys that are not UTF-8"):
//   - well-formed UTF-8 (RFC 3629) is copied verbatim, except the code points
//     U+EF80..U+EFFF (UTF-8 EE BE 80..EE BF BF), reserved by this rule;
//   - every other byte b >= 0x80 (a stray byte, or a byte of a reserved code point) is
//     written as the escape \uefXX, i.e. the private-use code point U+EF00 + b;
//   - '"', '\\' and bytes below 0x20 are escaped as JSON requires.
// A reader gets the bytes back by mapping each code point U+EF80..U+EFFF to the byte
// (code point - 0xEF00) and every other code point to its UTF-8: jsonStringBytes() below.
// A key that is well-formed UTF-8 (as every Java producer writes) and holds no reserved
// code point reaches the function unchanged.

#include "common/types.h"

#include <cstddef>
#include <string>
#include <string_view>

namespace kesm::invoker {

std::string base64Encode(std::string_view bytes);

enum class NullStyle {
  kEmpty, // tombstone: "value":"", null header value: []; what every Lambda library reads
  kOmit,  // tombstone: no "value" (as AWS), null header value: null; lossless
};

struct EventFormat {
  NullStyle nulls = NullStyle::kEmpty;
};

// The inverse of the string rule above: the original bytes of a string kesm wrote, given
// the string as a JSON parser decoded it (UTF-8). Maps each U+EF80..U+EFFF to one byte.
std::string jsonStringBytes(std::string_view decoded_utf8);

// The full event body for a batch. Records of one partition stay in the order given.
std::string encodeLambdaKafkaEvent(const Batch& batch, const std::string& bootstrap_servers,
                                   const EventFormat& format = {});

// Exact number of bytes this record adds to the event's "records" arrays (including
// its separating comma), so the batcher can cut before the 6 MiB payload cap.
std::size_t encodedRecordSize(const Record& record, const EventFormat& format = {});

// Bytes of the fixed envelope (eventSource, bootstrapServers, braces).
std::size_t encodedEnvelopeOverhead(const std::string& bootstrap_servers);
// Bytes one more distinct topic-partition adds: its key, brackets and separating comma.
// envelope + sum(partition overheads) + sum(record sizes) == encoded size, exactly.
std::size_t encodedPartitionOverhead(const std::string& topic, Partition partition);

} // namespace kesm::invoker
