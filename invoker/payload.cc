#include "invoker/payload.h"

#include "common/json.h"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

namespace kesm::invoker {
namespace {

// One template writes the event and, with Counting = true, only counts its bytes. Both
// paths run the same code, which is what makes the size functions exact.
template <bool Counting> class Writer {
public:
  explicit Writer(std::string* out = nullptr) : out_(out) {}

  std::size_t size() const { return size_; }

  void raw(std::string_view s) {
    if constexpr (Counting) {
      size_ += s.size();
    } else {
      out_->append(s);
    }
  }
  void ch(char c) {
    if constexpr (Counting) {
      ++size_;
    } else {
      out_->push_back(c);
    }
  }
  void integer(std::int64_t v) {
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof(buf), v);
    raw(std::string_view(buf, static_cast<std::size_t>(res.ptr - buf)));
  }
  void base64(std::string_view bytes);
  void jsonString(std::string_view s);
  void byteArray(std::string_view bytes);

private:
  std::string* out_;
  std::size_t size_ = 0;
};

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::size_t base64Size(std::size_t n) { return (n + 2) / 3 * 4; }

void base64Into(std::string_view in, char* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t n = in.size();
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8) | p[i + 2];
    *out++ = kBase64Alphabet[(v >> 18) & 0x3f];
    *out++ = kBase64Alphabet[(v >> 12) & 0x3f];
    *out++ = kBase64Alphabet[(v >> 6) & 0x3f];
    *out++ = kBase64Alphabet[v & 0x3f];
  }
  if (std::size_t rest = n - i; rest > 0) {
    std::uint32_t v = std::uint32_t{p[i]} << 16;
    if (rest == 2) {
      v |= std::uint32_t{p[i + 1]} << 8;
    }
    *out++ = kBase64Alphabet[(v >> 18) & 0x3f];
    *out++ = kBase64Alphabet[(v >> 12) & 0x3f];
    *out++ = rest == 2 ? kBase64Alphabet[(v >> 6) & 0x3f] : '=';
    *out++ = '=';
  }
}

template <bool Counting> void Writer<Counting>::base64(std::string_view bytes) {
  std::size_t n = base64Size(bytes.size());
  if constexpr (Counting) {
    size_ += n;
  } else {
    std::size_t pos = out_->size();
    out_->resize(pos + n);
    base64Into(bytes, out_->data() + pos);
  }
}

// Whether the well-formed sequence of `len` bytes at s[i] is one of the code points the
// string rule reserves, U+EF80..U+EFFF: EE BE xx or EE BF xx.
bool isReservedSequence(std::string_view s, std::size_t i, std::size_t len) {
  return len == 3 && static_cast<unsigned char>(s[i]) == 0xee &&
         (static_cast<unsigned char>(s[i + 1]) & 0xfe) == 0xbe;
}

// JSON string with RFC 8259 escaping: '"', '\\' and control characters (as \u00XX).
// Well-formed UTF-8 is copied verbatim. Any other byte b >= 0x80 (Kafka header keys are
// bytes, not text), and each byte of a reserved code point U+EF80..U+EFFF, is written as
// \uefXX, the code point U+EF00 + b: the output is always valid JSON of valid UTF-8, and
// jsonStringBytes() recovers the exact bytes (see invoker/payload.h).
template <bool Counting> void Writer<Counting>::jsonString(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  ch('"');
  std::size_t run_start = 0;
  std::size_t i = 0;
  auto flush = [&] {
    if (i > run_start) {
      raw(s.substr(run_start, i - run_start));
    }
  };
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b >= 0x20 && b < 0x80 && b != '"' && b != '\\') {
      ++i;
      continue;
    }
    if (b >= 0x80) {
      if (std::size_t len = json::utf8SequenceLength(s, i);
          len > 0 && !isReservedSequence(s, i, len)) {
        i += len;
        continue;
      }
    }
    flush();
    if (b == '"' || b == '\\') {
      ch('\\');
      ch(static_cast<char>(b));
    } else {
      // Below 0x20: \u00XX. From 0x80: \uefXX.
      const char high = b < 0x80 ? '0' : 'e';
      const char low = b < 0x80 ? '0' : 'f';
      char esc[6] = {'\\', 'u', high, low, kHex[b >> 4], kHex[b & 0xf]};
      raw(std::string_view(esc, 6));
    }
    ++i;
    run_start = i;
  }
  flush();
  ch('"');
}

struct ByteText {
  std::array<char, 5> text; // the signed decimal followed by ','
  std::uint8_t digits;      // characters before the ','
};

// AWS's poller is Java: a header value reaches the function as an array of Java bytes, which
// are signed. 0xC3 is -61, not 195; aws-lambda-go (int8) and .NET (sbyte) refuse 195.
constexpr std::array<ByteText, 256> makeByteTexts() {
  std::array<ByteText, 256> table{};
  for (int v = 0; v < 256; ++v) {
    ByteText& t = table[static_cast<std::size_t>(v)];
    int n = v < 128 ? v : 256 - v;
    std::uint8_t len = 0;
    if (v >= 128) {
      t.text[len++] = '-';
    }
    if (n >= 100) {
      t.text[len++] = static_cast<char>('0' + n / 100);
    }
    if (n >= 10) {
      t.text[len++] = static_cast<char>('0' + n / 10 % 10);
    }
    t.text[len++] = static_cast<char>('0' + n % 10);
    t.text[len] = ',';
    t.digits = len;
  }
  return table;
}

constexpr std::array<ByteText, 256> kByteTexts = makeByteTexts();

// [104,-61]: the bytes as signed decimal numbers, as AWS sends header values.
template <bool Counting> void Writer<Counting>::byteArray(std::string_view bytes) {
  std::size_t n = 2 + (bytes.empty() ? 0 : bytes.size() - 1); // brackets and commas
  for (char c : bytes) {
    n += kByteTexts[static_cast<unsigned char>(c)].digits;
  }
  if constexpr (Counting) {
    size_ += n;
  } else {
    std::size_t pos = out_->size();
    out_->resize(pos + n);
    char* p = out_->data() + pos;
    *p++ = '[';
    for (char c : bytes) {
      const ByteText& t = kByteTexts[static_cast<unsigned char>(c)];
      for (std::uint8_t d = 0; d <= t.digits; ++d) {
        *p++ = t.text[d]; // the digits and a comma; the last comma becomes ']'
      }
    }
    if (!bytes.empty()) {
      --p;
    }
    *p = ']';
  }
}

const char* timestampTypeName(TimestampType type) {
  switch (type) {
  case TimestampType::kCreateTime:
    return "CREATE_TIME";
  case TimestampType::kLogAppendTime:
    return "LOG_APPEND_TIME";
  case TimestampType::kNotAvailable:
    break;
  }
  return "NO_TIMESTAMP_TYPE";
}

template <bool Counting>
void writeRecord(Writer<Counting>& w, const Record& r, const EventFormat& format) {
  const bool empty_nulls = format.nulls == NullStyle::kEmpty;
  w.raw("{\"topic\":");
  w.jsonString(r.topic);
  w.raw(",\"partition\":");
  w.integer(r.partition.value());
  w.raw(",\"offset\":");
  w.integer(r.offset.value());
  w.raw(",\"timestamp\":");
  w.integer(r.timestamp_ms);
  w.raw(",\"timestampType\":\"");
  w.raw(timestampTypeName(r.timestamp_type));
  w.ch('"');
  if (r.key) {
    w.raw(",\"key\":\"");
    w.base64(*r.key);
    w.ch('"');
  }
  if (r.value) {
    w.raw(",\"value\":\"");
    w.base64(*r.value);
    w.ch('"');
  } else if (empty_nulls) {
    // AWS leaves a tombstone's value out, which powertools' KafkaEvent, its parser model and
    // ConsumerRecords cannot read; "" reads everywhere (as an empty value).
    w.raw(",\"value\":\"\"");
  }
  w.raw(",\"headers\":[");
  bool first = true;
  for (const Header& h : r.headers) {
    if (!first) {
      w.ch(',');
    }
    first = false;
    w.ch('{');
    w.jsonString(h.key);
    w.ch(':');
    if (h.value) {
      w.byteArray(*h.value);
    } else if (empty_nulls) {
      w.raw("[]"); // Lambda libraries type a header value as a byte array; null breaks some
    } else {
      w.raw("null"); // Kafka's null header value, distinct from an empty one ([])
    }
    w.ch('}');
  }
  w.raw("]}");
}

// "<topic>-<partition>":[  -- the key of one partition's array in "records".
template <bool Counting>
void writePartitionOpen(Writer<Counting>& w, const std::string& topic, Partition partition) {
  char buf[24];
  buf[0] = '-';
  auto res = std::to_chars(buf + 1, buf + sizeof(buf), partition.value());
  std::string key;
  key.reserve(topic.size() + static_cast<std::size_t>(res.ptr - buf));
  key.append(topic).append(buf, static_cast<std::size_t>(res.ptr - buf));
  w.jsonString(key);
  w.raw(":[");
}

template <bool Counting>
void writeEnvelopeOpen(Writer<Counting>& w, const std::string& bootstrap_servers) {
  w.raw("{\"eventSource\":\"SelfManagedKafka\",\"bootstrapServers\":");
  w.jsonString(bootstrap_servers);
  w.raw(",\"records\":{");
}

// Records grouped by partition, groups in order of first appearance in the batch.
std::vector<std::vector<const Record*>> groupByPartition(const Batch& batch) {
  std::vector<std::vector<const Record*>> groups;
  std::map<std::pair<std::string_view, std::int32_t>, std::size_t> index;
  const Record* last = nullptr;
  std::size_t last_group = 0;
  for (const Record& r : batch.records) {
    // Consecutive records of one partition are the common case: skip the map lookup.
    if (last != nullptr && last->partition == r.partition && last->topic == r.topic) {
      groups[last_group].push_back(&r);
    } else {
      auto [it, inserted] = index.try_emplace(
          std::make_pair(std::string_view(r.topic), r.partition.value()), groups.size());
      if (inserted) {
        groups.emplace_back();
      }
      last_group = it->second;
      groups[last_group].push_back(&r);
    }
    last = &r;
  }
  return groups;
}

template <bool Counting>
void writeEvent(Writer<Counting>& w, const std::vector<std::vector<const Record*>>& groups,
                const std::string& bootstrap_servers, const EventFormat& format) {
  writeEnvelopeOpen(w, bootstrap_servers);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    if (g > 0) {
      w.ch(',');
    }
    const auto& records = groups[g];
    writePartitionOpen(w, records.front()->topic, records.front()->partition);
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (i > 0) {
        w.ch(',');
      }
      writeRecord(w, *records[i], format);
    }
    w.ch(']');
  }
  w.raw("}}");
}

} // namespace

std::string base64Encode(std::string_view bytes) {
  std::string out(base64Size(bytes.size()), '\0');
  base64Into(bytes, out.data());
  return out;
}

std::string jsonStringBytes(std::string_view decoded_utf8) {
  std::string out;
  out.reserve(decoded_utf8.size());
  for (std::size_t i = 0; i < decoded_utf8.size(); ++i) {
    // U+EF80..U+EFFF is EE BE 80..EE BF BF; its byte is 0x80 + the low bit of the second
    // byte * 0x40 + the low six bits of the third.
    if (i + 2 < decoded_utf8.size() && static_cast<unsigned char>(decoded_utf8[i]) == 0xee &&
        (static_cast<unsigned char>(decoded_utf8[i + 1]) & 0xfe) == 0xbe &&
        (static_cast<unsigned char>(decoded_utf8[i + 2]) & 0xc0) == 0x80) {
      const auto second = static_cast<unsigned char>(decoded_utf8[i + 1]);
      const auto third = static_cast<unsigned char>(decoded_utf8[i + 2]);
      out.push_back(static_cast<char>(0x80 | ((second & 1) << 6) | (third & 0x3f)));
      i += 2;
    } else {
      out.push_back(decoded_utf8[i]);
    }
  }
  return out;
}

std::string encodeLambdaKafkaEvent(const Batch& batch, const std::string& bootstrap_servers,
                                   const EventFormat& format) {
  auto groups = groupByPartition(batch);
  Writer<true> counter;
  writeEvent(counter, groups, bootstrap_servers, format);
  std::string out;
  out.reserve(counter.size());
  Writer<false> writer(&out);
  writeEvent(writer, groups, bootstrap_servers, format);
  return out;
}

// The size identity. The event is
//   envelope-open  key0:[r,r,r] , key1:[r] ...  }}
// It holds R - 1 commas: P - 1 between partitions and R - P between records. Each record
// is charged one comma (R in all) and each partition only its key and brackets, so the
// envelope gives back the one comma too many. An empty batch (never sent) therefore
// encodes to encodedEnvelopeOverhead() + 1 bytes; every non-empty batch matches exactly.
std::size_t encodedRecordSize(const Record& record, const EventFormat& format) {
  Writer<true> w;
  writeRecord(w, record, format);
  return w.size() + 1;
}

std::size_t encodedEnvelopeOverhead(const std::string& bootstrap_servers) {
  Writer<true> w;
  writeEnvelopeOpen(w, bootstrap_servers);
  return w.size() + 2 - 1;
}

std::size_t encodedPartitionOverhead(const std::string& topic, Partition partition) {
  Writer<true> w;
  writePartitionOpen(w, topic, partition);
  return w.size() + 1; // the closing ']'
}

} // namespace kesm::invoker
