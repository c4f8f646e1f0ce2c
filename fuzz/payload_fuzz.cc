// libFuzzer target: records built from the fuzz bytes, encoded as AWS Lambda's Kafka event
// by kesm's encoder, decoded by the sample function's strict reader, compared.
//
// Findings (abort): the event is not strict JSON, a record does not come back byte for
// byte (topic, partition, offset, timestamp, key, value, header names and values, null
// distinct from empty, order within a partition), or the encoder's predicted size is not
// the encoded size (the batcher's 6 MiB cut relies on it); or a crash, leak or UB. The same
// bytes are also read as an event body, as the sample function reads any HTTP body.
//
// Input format (docs/fuzzing.md), read front to back; missing bytes read as zero:
//   servers: str8
//   then records until the input ends, at most 64:
//     flags: u8   bit0 key present, bit1 value present, bit2 topic from the input
//                 (else one of four fixed names), bits3-4 timestamp type, bit5 large value
//     topic: str8 if bit2, else u8 picks the name
//     partition: u8 (0..255)   offset: i64   timestamp: i64
//     key: str8 if bit0        value: str16 if bit1 and bit5, str8 if bit1 only
//     headers: u8 count (mod 16), each: flags u8 (bit0 value present), name str8,
//              value str8 if present
//   str8 = u8 length + bytes, str16 = u16 (little endian) length + bytes.

#include "invoker/payload.h"
#include "samplefn/sample_function.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using kesm::Batch;
using kesm::Header;
using kesm::Record;

class Input {
public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
      v |= std::uint64_t{u8()} << (8 * i);
    }
    return v;
  }
  std::string bytes(std::size_t n) {
    n = std::min(n, size_ - std::min(pos_, size_));
    std::string out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }
  std::string str8() { return bytes(u8()); }
  std::string str16() {
    std::size_t n = u8();
    n |= std::size_t{u8()} << 8;
    return bytes(n);
  }

private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "payload_fuzz: %s\n", what.c_str());
  std::abort();
}

std::string show(const std::optional<std::string>& s) {
  if (!s) {
    return "null";
  }
  std::string out = "\"";
  for (char c : *s) {
    char buf[5];
    std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
    out += buf;
  }
  return out + "\"";
}

void expectEqual(const std::optional<std::string>& sent, const std::optional<std::string>& got,
                 const std::string& what) {
  if (sent != got) {
    finding(what + ": sent " + show(sent) + ", got " + show(got));
  }
}

Batch readBatch(Input& in) {
  static const char* const kTopics[] = {"orders", "a-1", "t\"q\\x", "caf\xc3\xa9"};
  Batch batch;
  while (!in.empty() && batch.records.size() < 64) {
    const std::uint8_t flags = in.u8();
    Record r;
    r.topic = flags & 4 ? in.str8() : kTopics[in.u8() % 4];
    r.partition = kesm::Partition{in.u8()}; // Kafka partitions are never negative
    r.offset = kesm::Offset{static_cast<std::int64_t>(in.u64())};
    r.timestamp_ms = static_cast<std::int64_t>(in.u64());
    r.timestamp_type = static_cast<kesm::TimestampType>(((flags >> 3) & 3) % 3);
    if (flags & 1) {
      r.key = in.str8();
    }
    if (flags & 2) {
      r.value = flags & 32 ? in.str16() : in.str8();
    }
    const int headers = in.u8() % 16;
    for (int h = 0; h < headers; ++h) {
      const std::uint8_t header_flags = in.u8();
      Header header;
      header.key = in.str8();
      if (header_flags & 1) {
        header.value = in.str8();
      }
      r.headers.push_back(std::move(header));
    }
    batch.records.push_back(std::move(r));
  }
  return batch;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The sample function reads any body a client sends: the raw bytes as an event must give
  // records or a std::runtime_error, nothing else (and no crash, however deep or broken).
  try {
    kesm::samplefn::parseLambdaKafkaEvent(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const std::runtime_error&) {
  }

  Input in(data, size);
  const std::string servers = in.str8();
  const Batch batch = readBatch(in);
  // The lossless format (function.nullValues: omit), so that every null must come back null.
  const kesm::invoker::EventFormat format{.nulls = kesm::invoker::NullStyle::kOmit};
  const std::string json = kesm::invoker::encodeLambdaKafkaEvent(batch, servers, format);

  // The batcher's size identity (invoker/payload.h); an empty batch is never sent.
  if (!batch.records.empty()) {
    std::size_t predicted = kesm::invoker::encodedEnvelopeOverhead(servers);
    std::map<std::pair<std::string, std::int32_t>, bool> seen;
    for (const Record& r : batch.records) {
      if (!seen[{r.topic, r.partition.value()}]) {
        seen[{r.topic, r.partition.value()}] = true;
        predicted += kesm::invoker::encodedPartitionOverhead(r.topic, r.partition);
      }
      predicted += kesm::invoker::encodedRecordSize(r, format);
    }
    if (predicted != json.size()) {
      finding("predicted " + std::to_string(predicted) + " bytes, encoded " +
              std::to_string(json.size()));
    }
  }

  std::vector<kesm::samplefn::ReceivedRecord> got;
  try {
    got = kesm::samplefn::parseLambdaKafkaEvent(json);
  } catch (const std::exception& e) {
    finding(std::string("the event does not parse: ") + e.what() + "\n" + json);
  }
  if (got.size() != batch.records.size()) {
    finding("sent " + std::to_string(batch.records.size()) + " records, got " +
            std::to_string(got.size()));
  }

  // The event groups records by partition: compare each partition's records in order.
  std::map<std::pair<std::string, std::int32_t>, std::vector<const Record*>> sent_by_tp;
  for (const Record& r : batch.records) {
    sent_by_tp[{r.topic, r.partition.value()}].push_back(&r);
  }
  std::map<std::pair<std::string, std::int32_t>, std::size_t> next;
  for (const auto& g : got) {
    const auto tp = std::make_pair(g.topic, g.partition);
    auto it = sent_by_tp.find(tp);
    if (it == sent_by_tp.end()) {
      finding("a record of a partition never sent: topic " + show(g.topic) + " partition " +
              std::to_string(g.partition));
    }
    std::size_t& i = next[tp];
    if (i >= it->second.size()) {
      finding("more records than sent for topic " + show(g.topic));
    }
    const Record& s = *it->second[i++];
    if (g.offset != s.offset.value() || g.timestamp_ms != s.timestamp_ms) {
      finding("offset or timestamp changed at offset " + std::to_string(s.offset.value()));
    }
    expectEqual(s.key, g.key, "key");
    expectEqual(s.value, g.value, "value");
    if (g.headers.size() != s.headers.size()) {
      finding("header count changed");
    }
    for (std::size_t h = 0; h < s.headers.size(); ++h) {
      expectEqual(s.headers[h].key, g.headers[h].key, "header name");
      expectEqual(s.headers[h].value, g.headers[h].value, "header value");
    }
  }
  return 0;
}
