#include "samplefn/sample_function.h"

#include "common/json.h"
#include "invoker/payload.h"
#include "net/http.h"

#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <stdexcept>
#include <utility>

namespace kesm::samplefn {

namespace {

constexpr const char* kInvocationsPath = "/2015-03-31/functions/function/invocations";

constexpr std::array<std::int8_t, 256> makeBase64Table() {
  std::array<std::int8_t, 256> table{};
  for (auto& v : table) {
    v = -1;
  }
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; ++i) {
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  }
  return table;
}

constexpr std::array<std::int8_t, 256> kBase64Values = makeBase64Table();

// Canonical base64 with padding (RFC 4648 section 4); throws on anything else.
std::string base64Decode(const std::string& text, const char* what) {
  if (text.size() % 4 != 0) {
    throw std::runtime_error(std::string(what) + ": base64 length is not a multiple of 4");
  }
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') {
    padding = text[text.size() - 2] == '=' ? 2 : 1;
  }
  std::string out;
  out.resize(text.size() / 4 * 3 - padding);
  auto value = [&](std::size_t i) {
    return static_cast<std::int32_t>(kBase64Values[static_cast<unsigned char>(text[i])]);
  };
  // Every quartet but a padded last one: four table lookups, one check (a bad character is
  // -1, which makes the OR negative).
  const std::size_t full = text.size() - (padding > 0 ? 4 : 0);
  std::size_t o = 0;
  for (std::size_t i = 0; i < full; i += 4) {
    const std::int32_t a = value(i), b = value(i + 1), c = value(i + 2), d = value(i + 3);
    if ((a | b | c | d) < 0) {
      throw std::runtime_error(std::string(what) + ": invalid base64 character");
    }
    const auto v = static_cast<std::uint32_t>(a << 18 | b << 12 | c << 6 | d);
    out[o++] = static_cast<char>(v >> 16);
    out[o++] = static_cast<char>(v >> 8);
    out[o++] = static_cast<char>(v);
  }
  if (padding > 0) {
    const std::size_t i = full;
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      std::int32_t d = value(i + k);
      if (d < 0) {
        if (text[i + k] == '=' && k >= 4 - padding) {
          d = 0;
        } else {
          throw std::runtime_error(std::string(what) + ": invalid base64 character");
        }
      }
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    if ((v & ((1u << (8 * padding)) - 1)) != 0) {
      // RFC 4648 3.5: the bits under the padding are zero in canonical base64.
      throw std::runtime_error(std::string(what) + ": non-canonical base64 padding bits");
    }
    out[o++] = static_cast<char>(v >> 16);
    if (padding == 1) {
      out[o++] = static_cast<char>(v >> 8);
    }
  }
  return out;
}

using json::Value;

const Value& requireObject(const Value& v, const char* what) {
  if (v.kind != Value::Kind::kObject) {
    throw std::runtime_error(std::string(what) + " must be an object");
  }
  return v;
}

const Value& requireField(const Value& record, const char* field) {
  const Value* v = record.find(field);
  if (v == nullptr) {
    throw std::runtime_error(std::string("record field '") + field + "' is missing");
  }
  return *v;
}

std::string requireString(const Value& record, const char* field) {
  const Value& v = requireField(record, field);
  if (v.kind != Value::Kind::kString) {
    throw std::runtime_error(std::string("record field '") + field + "' must be a string");
  }
  return v.text;
}

// A JSON integer (no fraction, no exponent) that fits T.
template <class T> T requireInteger(const Value& record, const char* field) {
  const Value& v = requireField(record, field);
  T out{};
  const char* end = v.text.data() + v.text.size();
  if (v.kind != Value::Kind::kNumber || std::from_chars(v.text.data(), end, out).ptr != end) {
    throw std::runtime_error(std::string("record field '") + field +
                             "' must be an integer in range");
  }
  return out;
}

// Absent or null: a null key or value; a string: base64 of the bytes.
std::optional<std::string> optionalBase64(const Value& record, const char* field) {
  const Value* v = record.find(field);
  if (v == nullptr || v->isNull()) {
    return std::nullopt;
  }
  if (v->kind != Value::Kind::kString) {
    throw std::runtime_error(std::string("record field '") + field +
                             "' must be a base64 string or null");
  }
  return base64Decode(v->text, field);
}

ReceivedRecord parseRecord(const Value& node) {
  requireObject(node, "a record");
  ReceivedRecord record;
  record.topic = invoker::jsonStringBytes(requireString(node, "topic"));
  record.partition = requireInteger<std::int32_t>(node, "partition");
  record.offset = requireInteger<std::int64_t>(node, "offset");
  record.timestamp_ms = requireInteger<std::int64_t>(node, "timestamp");
  record.key = optionalBase64(node, "key");
  record.value = optionalBase64(node, "value");
  if (const Value* headers = node.find("headers"); headers != nullptr) {
    if (headers->kind != Value::Kind::kArray) {
      throw std::runtime_error("record field 'headers' must be a list");
    }
    for (const Value& header : headers->items) {
      requireObject(header, "a header");
      for (std::size_t m = 0; m < header.names.size(); ++m) {
        Header h;
        // Header keys that are not UTF-8 travel by the rule of invoker/payload.h.
        h.key = invoker::jsonStringBytes(header.names[m]);
        const Value& bytes = header.items[m];
        if (bytes.isNull()) {
          record.headers.push_back(std::move(h)); // Kafka's null header value
          continue;
        }
        if (bytes.kind != Value::Kind::kArray) {
          throw std::runtime_error("header '" + h.key + "' must be a list of byte values or null");
        }
        std::string value;
        value.reserve(bytes.items.size());
        for (const Value& b : bytes.items) {
          int v = -1;
          const char* end = b.text.data() + b.text.size();
          // Signed, as AWS sends them (Java bytes) and aws-lambda-go's int8 insists on.
          if (b.kind != Value::Kind::kNumber || std::from_chars(b.text.data(), end, v).ptr != end ||
              v < -128 || v > 127) {
            throw std::runtime_error("header '" + h.key + "' has a value outside -128..127");
          }
          value.push_back(static_cast<char>(static_cast<signed char>(v)));
        }
        h.value = std::move(value);
        record.headers.push_back(std::move(h));
      }
    }
  }
  return record;
}

} // namespace

// A strict JSON parser (common/json.h): a body that is not RFC 8259 JSON of well-formed
// UTF-8 is rejected, so every test that goes through the sample function also checks that
// kesm's event is JSON any runtime accepts. Keys, values, header keys and header values
// come back as the exact bytes kesm read from Kafka.
std::vector<ReceivedRecord> parseLambdaKafkaEvent(const std::string& body) {
  Value root;
  try {
    root = json::parse(body);
  } catch (const json::JsonError& e) {
    throw std::runtime_error(std::string("malformed event JSON: ") + e.what());
  }
  requireObject(root, "the event");
  const Value* records = root.find("records");
  if (records == nullptr) {
    throw std::runtime_error("the event has no 'records'");
  }
  requireObject(*records, "'records'");
  std::vector<ReceivedRecord> out;
  for (std::size_t p = 0; p < records->names.size(); ++p) {
    const Value& partition = records->items[p];
    if (partition.kind != Value::Kind::kArray) {
      throw std::runtime_error("'records' entry '" + records->names[p] + "' must be a list");
    }
    for (const Value& record : partition.items) {
      out.push_back(parseRecord(record));
    }
  }
  return out;
}

struct SampleFunction::Impl {
  explicit Impl(SampleFunctionOptions opts)
      : options(std::move(opts)), rng(std::random_device{}()) {
    if (!options.record_file.empty()) {
      record_file = std::fopen(options.record_file.c_str(), "a");
      if (record_file == nullptr) {
        throw std::runtime_error("cannot open record file '" + options.record_file + "'");
      }
    }
    try {
      server = std::make_unique<net::HttpServer>(
          options.listen, [this](const net::HttpRequest& request) { return handle(request); },
          serverOptions());
    } catch (...) {
      closeRecordFile();
      throw;
    }
  }

  ~Impl() {
    {
      std::lock_guard lock(stop_mutex);
      stopping = true;
    }
    stop_cv.notify_all();
    server->stop();
    closeRecordFile();
  }

  // A peer for kesm's pollers: one connection and one sleeping handler per batch in flight
  // (up to hundreds in the benchmarks), bodies above the 6 MiB invocation limit so that a
  // test sees what kesm really sends, and time to receive them from a loaded kesm.
  static net::HttpServerOptions serverOptions() {
    net::HttpServerOptions o;
    o.max_connections = 4096;
    o.handler_threads = 512;
    o.body_limit_bytes = 16ull * 1024 * 1024;
    o.header_limit_bytes = 64 * 1024;
    o.request_timeout = std::chrono::seconds(60);
    o.write_timeout = std::chrono::seconds(30);
    return o;
  }

  void closeRecordFile() {
    if (record_file != nullptr) {
      std::fclose(record_file);
      record_file = nullptr;
    }
  }

  static net::HttpResponse reply(int status, std::string body,
                                 const char* content_type = "application/json") {
    net::HttpResponse response;
    response.status = status;
    response.headers = {{"Content-Type", content_type}};
    response.body = std::move(body);
    return response;
  }

  // Sleeps until the deadline or until the server stops; false when stopping.
  bool sleepUntil(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(stop_mutex);
    return !stop_cv.wait_until(lock, deadline, [this] { return stopping; });
  }

  Verdict decide(const std::vector<ReceivedRecord>& records) {
    if (options.decide) {
      return options.decide(records);
    }
    if (options.fail_rate <= 0.0) {
      return Verdict::kSucceed;
    }
    std::lock_guard lock(rng_mutex);
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < options.fail_rate
               ? Verdict::kFailHttp500
               : Verdict::kSucceed;
  }

  void record(const std::vector<ReceivedRecord>& records) {
    if (record_file == nullptr) {
      return;
    }
    std::lock_guard lock(file_mutex);
    for (const auto& r : records) {
      std::fprintf(record_file, "%s %d %lld\n", r.topic.c_str(), r.partition,
                   static_cast<long long>(r.offset));
    }
    std::fflush(record_file);
  }

  net::HttpResponse handle(const net::HttpRequest& request) {
    if (request.method == "GET" || request.method == "HEAD") {
      if (request.target == "/healthz") {
        return reply(200, "ok\n", "text/plain");
      }
      return reply(404, "not found: POST an event to any path, or GET /healthz\n", "text/plain");
    }
    if (request.method != "POST") {
      return reply(405, "method not allowed\n", "text/plain");
    }
    invocations.fetch_add(1);
    std::vector<ReceivedRecord> records;
    try {
      records = parseLambdaKafkaEvent(request.body);
    } catch (const std::exception& e) {
      failures.fetch_add(1);
      return reply(400, std::string("malformed event: ") + e.what() + "\n", "text/plain");
    }
    const Verdict verdict = decide(records);
    const auto now = std::chrono::steady_clock::now();
    if (verdict == Verdict::kHang) {
      sleepUntil(now + std::chrono::hours(1));
      failures.fetch_add(1);
      return reply(503, "{\"errorMessage\":\"stopping\"}");
    }
    if (options.latency.count() > 0 && !sleepUntil(now + options.latency)) {
      failures.fetch_add(1);
      return reply(503, "{\"errorMessage\":\"stopping\"}");
    }
    switch (verdict) {
    case Verdict::kFailHttp500:
      failures.fetch_add(1);
      return reply(500, "{\"errorMessage\":\"injected failure\"}");
    case Verdict::kFailHttp404:
      failures.fetch_add(1);
      return reply(404, "{\"message\":\"Function not found\"}");
    case Verdict::kFailHttp413:
      failures.fetch_add(1);
      return reply(413, "{\"message\":\"Request must be smaller than the limit\"}");
    case Verdict::kFailHttp429:
      failures.fetch_add(1);
      return reply(429, "{\"message\":\"Rate exceeded\"}");
    case Verdict::kFailFunctionError: {
      failures.fetch_add(1);
      auto response = reply(200, "{\"errorMessage\":\"injected function error\","
                                 "\"errorType\":\"InjectedError\"}");
      response.headers.emplace_back("X-Amz-Function-Error", "Unhandled");
      return response;
    }
    case Verdict::kSucceed:
    case Verdict::kHang:
      break;
    }
    if (options.on_batch) {
      options.on_batch(records);
    }
    record(records);
    this->records.fetch_add(records.size());
    return reply(200, "{\"ok\":true}");
  }

  SampleFunctionOptions options;
  std::mutex rng_mutex;
  std::mt19937_64 rng;
  std::mutex file_mutex;
  std::FILE* record_file = nullptr;
  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stopping = false; // guarded by stop_mutex
  std::atomic<std::uint64_t> invocations{0};
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> records{0};
  std::unique_ptr<net::HttpServer> server; // last: its threads use the members above
};

SampleFunction::SampleFunction(SampleFunctionOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

SampleFunction::~SampleFunction() = default;

std::uint16_t SampleFunction::port() const { return impl_->server->port(); }

std::string SampleFunction::url() const {
  return "http://127.0.0.1:" + std::to_string(port()) + kInvocationsPath;
}

SampleFunctionStats SampleFunction::stats() const {
  SampleFunctionStats stats;
  stats.invocations = impl_->invocations.load();
  stats.failures = impl_->failures.load();
  stats.records = impl_->records.load();
  return stats;
}

} // namespace kesm::samplefn
