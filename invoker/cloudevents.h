#pragma once

// CloudEvents over HTTP (docs/functions.md, "CloudEvents"): each Kafka record becomes one
// CloudEvent, as Knative's KafkaSource makes them, sent in the HTTP binding's binary content
// mode (one record per request) or as one application/cloudevents-batch+json array per batch.
// The encoders are pure; the invoker is owned and used by one thread at a time.

#include "common/types.h"
#include "invoker/invoker.h"
#include "net/http.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kesm::invoker {

// One event: its attributes (context attributes and extensions, names valid, values Unicode
// strings without control characters) in sending order, and its data.
struct CloudEvent {
  std::vector<std::pair<std::string, std::string>> attributes;
  std::optional<std::string> data; // the record value's bytes; nullopt: a tombstone
  // The value of attribute `name`, or nullptr.
  const std::string* attribute(std::string_view name) const;
};

// A CloudEvents attribute name kesm sends: 1 to 20 characters of a-z and 0-9 (the spec's
// rule, with its recommended length, which the Go SDK enforces).
bool isAttributeName(std::string_view name);

// `bytes` as a CloudEvents String: well-formed UTF-8 is kept, every other byte and every
// control character (U+0000..U+001F, U+007F..U+009F) becomes U+FFFD.
std::string toAttributeString(std::string_view bytes);

// Epoch milliseconds as RFC 3339 in UTC with milliseconds: 2026-12-02T03:08:00.123Z.
std::string rfc3339Millis(std::int64_t epoch_ms);

// The HTTP binding's header-value encoding: space, '"', '%' and every byte outside
// U+0021..U+007E percent-encoded (%XX, upper-case hex).
std::string percentEncodeHeaderValue(std::string_view value);

// The record as a CloudEvent. A record whose headers carry ce_specversion, ce_id, ce_source
// and ce_type (the Kafka binding's binary mode) is that event: its ce_* headers are its
// attributes, content-type its datacontenttype. Any other record gets kesm's attributes:
// id partition:P/offset:O, source `source_prefix#TOPIC`, type, subject partition:P#O, time
// (the record timestamp), datacontenttype (the content-type header), partitionkey (the key)
// and one extension per header whose name is a valid attribute name.
CloudEvent recordToCloudEvent(const Record& record, const std::string& source_prefix,
                              const std::string& type);

// Binary content mode: the ce- headers and Content-Type (application/json when the event
// has no datacontenttype and its data is JSON or absent, else application/octet-stream).
net::Headers binaryModeHeaders(const CloudEvent& event);

// The events as an application/cloudevents-batch+json array of JSON-format events: data as
// JSON when the content type is JSON and the data parses, as a string for text/* content
// that is UTF-8, else data_base64.
std::string encodeBatch(const std::vector<CloudEvent>& events);

enum class CloudEventsMode { kBinary, kBatch };

struct CloudEventsInvokerOptions {
  std::string url; // http[s]://host[:port]/path
  net::TlsOptions tls;
  std::chrono::milliseconds timeout{30000}; // per invoke() call, all its requests
  CloudEventsMode mode = CloudEventsMode::kBinary;
  std::string source_prefix; // each event's source is source_prefix#TOPIC
  std::string type = "dev.knative.kafka.event";
};

// Binary mode sends the batch's records one per request, in batch order, and stops at the
// first that fails: the result is kPartialFailure with item_failures naming that record and
// the first unsent record of every other partition not yet fully sent (or the request's
// own outcome when the batch's first record failed). `timeout` bounds the whole attempt:
// each request gets what is left of it. Batch mode sends one request. A 2xx
// is success; other statuses and transport errors map as for lambdaEvent.
// Throws std::runtime_error when a TLS file cannot be loaded.
std::unique_ptr<FunctionInvoker> makeCloudEventsInvoker(const CloudEventsInvokerOptions& options);

} // namespace kesm::invoker
