#include "invoker/cloudevents.h"

#include "common/json.h"
#include "invoker/http_outcome.h"
#include "invoker/payload.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <exception>
#include <set>

namespace kesm::invoker {

const std::string* CloudEvent::attribute(std::string_view name) const {
  for (const auto& [n, v] : attributes) {
    if (n == name) {
      return &v;
    }
  }
  return nullptr;
}

bool isAttributeName(std::string_view name) {
  return !name.empty() && name.size() <= 20 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

std::string toAttributeString(std::string_view bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD"; // U+FFFD
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    if (b >= 0x20 && b < 0x7f) {
      out.push_back(bytes[i]);
      ++i;
      continue;
    }
    const std::size_t n = b >= 0x80 ? json::utf8SequenceLength(bytes, i) : 0;
    // C1 controls U+0080..U+009F are C2 80..C2 9F in UTF-8.
    const bool c1 = n == 2 && b == 0xC2 && static_cast<unsigned char>(bytes[i + 1]) < 0xA0;
    if (n == 0 || c1) {
      out += kReplacement;
      i += n == 0 ? 1 : n;
    } else {
      out.append(bytes.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string rfc3339Millis(std::int64_t epoch_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> t{milliseconds{epoch_ms}};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{t - day};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), int(hms.hours().count()),
                int(hms.minutes().count()), int(hms.seconds().count()),
                int(hms.subseconds().count()));
  return buf;
}

std::string percentEncodeHeaderValue(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    const auto b = static_cast<unsigned char>(c);
    if (b > 0x20 && b < 0x7f && b != '"' && b != '%') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xf]);
    }
  }
  return out;
}

namespace {

// Context attributes and the extensions kesm sets itself: never taken from a Kafka header.
const std::set<std::string, std::less<>> kReservedNames = {
    "specversion", "id",   "source",     "type",         "subject",
    "time",        "data", "dataschema", "partitionkey", "datacontenttype"};

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// A media type fit for an HTTP Content-Type header: printable ASCII, not empty.
bool isMediaType(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// The media type without parameters, lower-cased: "Application/JSON; charset=utf-8" ->
// "application/json".
std::string mediaTypeEssence(std::string_view content_type) {
  std::string out(content_type.substr(0, content_type.find(';')));
  out.erase(std::remove(out.begin(), out.end(), ' '), out.end());
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool isJsonMediaType(std::string_view content_type) {
  const std::string essence = mediaTypeEssence(content_type);
  return essence == "application/json" || essence == "text/json" ||
         (essence.size() > 5 && essence.compare(essence.size() - 5, 5, "+json") == 0);
}

bool isJsonText(std::string_view bytes) {
  try {
    json::parse(bytes);
    return true;
  } catch (const json::JsonError&) {
    return false;
  }
}

bool isUtf8Text(std::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size();) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    if (b < 0x80) {
      ++i;
    } else if (std::size_t n = json::utf8SequenceLength(bytes, i)) {
      i += n;
    } else {
      return false;
    }
  }
  return true;
}

void setAttribute(CloudEvent& event, const std::string& name, std::string value) {
  for (auto& [n, v] : event.attributes) {
    if (n == name) {
      v = std::move(value);
      return;
    }
  }
  event.attributes.emplace_back(name, std::move(value));
}

// The Kafka binding's binary mode: ce_specversion, ce_id, ce_source and ce_type all present.
bool isKafkaBinaryCloudEvent(const Record& record) {
  int found = 0;
  for (const char* name : {"ce_specversion", "ce_id", "ce_source", "ce_type"}) {
    found += std::any_of(record.headers.begin(), record.headers.end(),
                         [&](const Header& h) { return h.key == name && h.value.has_value(); });
  }
  return found == 4;
}

CloudEvent passThrough(const Record& record) {
  CloudEvent event;
  event.data = record.value;
  std::optional<std::string> content_type;
  for (const Header& h : record.headers) {
    if (!h.value) {
      continue;
    }
    if (equalsIgnoreCase(h.key, "content-type")) {
      content_type = *h.value;
    } else if (h.key.size() > 3 && h.key.compare(0, 3, "ce_") == 0 && h.key != "ce_data" &&
               isAttributeName(std::string_view(h.key).substr(3))) {
      setAttribute(event, h.key.substr(3), toAttributeString(*h.value));
    }
  }
  // The binding carries datacontenttype as content-type; a ce_datacontenttype yields to it.
  if (content_type && isMediaType(*content_type)) {
    setAttribute(event, "datacontenttype", *content_type);
  }
  if (const std::string* ct = event.attribute("datacontenttype"); ct && !isMediaType(*ct)) {
    event.attributes.erase(
        std::find_if(event.attributes.begin(), event.attributes.end(),
                     [](const auto& a) { return a.first == "datacontenttype"; }));
  }
  if (record.key && !event.attribute("partitionkey")) {
    setAttribute(event, "partitionkey", toAttributeString(*record.key));
  }
  return event;
}

// Without a content-type header: what the value is.
std::string defaultContentType(const CloudEvent& event) {
  return !event.data || event.data->empty() || isJsonText(*event.data) ? "application/json"
                                                                       : "application/octet-stream";
}

} // namespace

CloudEvent recordToCloudEvent(const Record& record, const std::string& source_prefix,
                              const std::string& type) {
  if (isKafkaBinaryCloudEvent(record)) {
    return passThrough(record);
  }
  const std::string partition = std::to_string(record.partition.value());
  const std::string offset = std::to_string(record.offset.value());
  CloudEvent event;
  event.data = record.value;
  event.attributes = {{"specversion", "1.0"},
                      {"id", "partition:" + partition + "/offset:" + offset},
                      {"source", source_prefix + "#" + toAttributeString(record.topic)},
                      {"type", type},
                      {"subject", "partition:" + partition + "#" + offset}};
  if (record.timestamp_type != TimestampType::kNotAvailable && record.timestamp_ms >= 0) {
    event.attributes.emplace_back("time", rfc3339Millis(record.timestamp_ms));
  }
  std::vector<std::pair<std::string, std::string>> extensions;
  for (const Header& h : record.headers) {
    if (!h.value) {
      continue;
    }
    if (equalsIgnoreCase(h.key, "content-type")) {
      if (isMediaType(*h.value)) {
        setAttribute(event, "datacontenttype", *h.value);
      }
    } else if (isAttributeName(h.key) && !kReservedNames.count(h.key)) {
      // Kafka allows repeated header names; the last one wins, as Kafka's lastHeader().
      auto at = std::find_if(extensions.begin(), extensions.end(),
                             [&](const auto& e) { return e.first == h.key; });
      if (at != extensions.end()) {
        extensions.erase(at);
      }
      extensions.emplace_back(h.key, toAttributeString(*h.value));
    }
  }
  if (record.key) {
    event.attributes.emplace_back("partitionkey", toAttributeString(*record.key));
  }
  for (auto& e : extensions) {
    event.attributes.push_back(std::move(e));
  }
  return event;
}

net::Headers binaryModeHeaders(const CloudEvent& event) {
  net::Headers headers;
  const std::string* content_type = nullptr;
  for (const auto& [name, value] : event.attributes) {
    if (name == "datacontenttype") {
      content_type = &value;
    } else {
      headers.emplace_back("ce-" + name, percentEncodeHeaderValue(value));
    }
  }
  headers.emplace_back("Content-Type",
                       content_type != nullptr ? *content_type : defaultContentType(event));
  return headers;
}

std::string encodeBatch(const std::vector<CloudEvent>& events) {
  std::string out = "[";
  for (const CloudEvent& event : events) {
    if (out.size() > 1) {
      out += ',';
    }
    out += '{';
    bool first = true;
    auto member = [&](std::string_view name, std::string_view raw_json) {
      out += first ? "" : ",";
      first = false;
      out += json::quote(name);
      out += ':';
      out += raw_json;
    };
    const std::string* content_type = event.attribute("datacontenttype");
    for (const auto& [name, value] : event.attributes) {
      member(name, json::quote(value));
    }
    if (!event.data) {
      out += '}';
      continue; // a tombstone: an event without data
    }
    const std::string& data = *event.data;
    // As in binary mode, an event with data always names its content type.
    const std::string type = content_type != nullptr ? *content_type : defaultContentType(event);
    if (content_type == nullptr) {
      member("datacontenttype", json::quote(type));
    }
    if (isJsonMediaType(type) && isJsonText(data)) {
      member("data", data); // checked above: strict JSON, embedded as the record holds it
    } else if (mediaTypeEssence(type).compare(0, 5, "text/") == 0 && isUtf8Text(data)) {
      member("data", json::quote(data)); // UTF-8: quote() keeps every character
    } else {
      member("data_base64", json::quote(base64Encode(data)));
    }
    out += '}';
  }
  out += ']';
  return out;
}

namespace {

class CloudEventsInvoker final : public FunctionInvoker {
public:
  explicit CloudEventsInvoker(const CloudEventsInvokerOptions& options)
      : client_(net::parseUrl(options.url), options.tls), options_(options) {}

  InvokeResult invoke(const Batch& batch) override {
    try {
      return options_.mode == CloudEventsMode::kBatch ? invokeBatch(batch) : invokeBinary(batch);
    } catch (const std::exception& e) {
      // Only allocation failure can get here; report it as a failed attempt.
      InvokeResult result;
      result.outcome = InvokeOutcome::kConnectionError;
      result.detail = std::string("invoke failed: ") + e.what();
      return result;
    }
  }

private:
  InvokeResult invokeBatch(const Batch& batch) {
    std::vector<CloudEvent> events;
    for (const Record& record : batch.records) {
      if (!record.filtered) {
        events.push_back(recordToCloudEvent(record, options_.source_prefix, options_.type));
      }
    }
    if (events.empty()) {
      return {};
    }
    const net::HttpResult http =
        client_.post(encodeBatch(events), {{"Content-Type", "application/cloudevents-batch+json"}},
                     options_.timeout);
    if (auto failure = httpFailure(http)) {
      return *failure;
    }
    InvokeResult result;
    result.http_status = http.response.status;
    return result;
  }

  InvokeResult invokeBinary(const Batch& batch) {
    const auto& records = batch.records;
    // The function timeout bounds the whole attempt, as the poller expects of any invoker
    // (shutdown and rebalance waits); each request gets what is left of it.
    const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
    bool sent_any = false;
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (records[i].filtered) {
        continue;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      std::optional<InvokeResult> failure;
      if (left.count() <= 0) {
        failure.emplace();
        failure->outcome = InvokeOutcome::kTimeout;
        failure->detail = "the function timeout (" + std::to_string(options_.timeout.count()) +
                          " ms) ran out before this record was sent";
      } else {
        const CloudEvent event =
            recordToCloudEvent(records[i], options_.source_prefix, options_.type);
        failure = httpFailure(
            client_.post(event.data.value_or(std::string()), binaryModeHeaders(event), left));
      }
      if (!failure) {
        sent_any = true;
        continue;
      }
      failure->detail = "record " + records[i].topic + "-" +
                        std::to_string(records[i].partition.value()) + "@" +
                        std::to_string(records[i].offset.value()) + ": " + failure->detail;
      if (!sent_any) {
        return *failure; // nothing succeeded: the batch failed as the request did
      }
      // Every partition resumes at its first record from here on: the failed one for its
      // partition, the first unsent one for the others.
      failure->outcome = InvokeOutcome::kPartialFailure;
      std::set<TopicPartition> listed;
      for (std::size_t j = i; j < records.size(); ++j) {
        TopicPartition tp{records[j].topic, records[j].partition};
        if (listed.insert(tp).second) {
          failure->item_failures.push_back({std::move(tp), records[j].offset.value()});
        }
      }
      return *failure;
    }
    return {};
  }

  net::HttpClient client_;
  CloudEventsInvokerOptions options_;
};

} // namespace

std::unique_ptr<FunctionInvoker> makeCloudEventsInvoker(const CloudEventsInvokerOptions& options) {
  return std::make_unique<CloudEventsInvoker>(options);
}

} // namespace kesm::invoker
