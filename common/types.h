#pragma once

// Vocabulary types shared by every component. No vendor type appears here.

#include <chrono>
#include <compare>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kesm {

// A strong type: an Offset cannot be passed where a Partition is expected.
template <class T, class Tag> class NamedType {
public:
  using value_type = T;
  constexpr NamedType() = default;
  constexpr explicit NamedType(T v) : value_(v) {}
  constexpr T value() const { return value_; }
  constexpr auto operator<=>(const NamedType&) const = default;

private:
  T value_{};
};

// A Kafka offset. A *committed* offset is the next offset to read, i.e. last processed + 1.
using Offset = NamedType<std::int64_t, struct OffsetTag>;
using Partition = NamedType<std::int32_t, struct PartitionTag>;

enum class TimestampType { kNotAvailable, kCreateTime, kLogAppendTime };

struct Header {
  std::string key;
  std::optional<std::string> value; // null header values exist in Kafka
};

// One Kafka record as kesm hands it to a function. Bytes are kept verbatim.
struct Record {
  std::string topic;
  Partition partition;
  Offset offset;
  std::int64_t timestamp_ms = 0; // epoch milliseconds
  TimestampType timestamp_type = TimestampType::kCreateTime;
  std::optional<std::string> key;   // nullopt = null key
  std::optional<std::string> value; // nullopt = null value (tombstone)
  std::vector<Header> headers;
  // Set by the poller when the record matches none of the mapping's filters: it travels in
  // its batch only so that its offset is committed in order, and is never sent.
  bool filtered = false;
};

struct TopicPartition {
  std::string topic;
  Partition partition;
  auto operator<=>(const TopicPartition&) const = default;
};

// startingPosition LATEST: the partitions of a mapping's topics that existed when the mapping
// started in this process. A partition the group never committed starts at its end when it is
// in the set, at its beginning when it is not: it was added since, so it holds only records
// produced after the start. Filled once before the first poller starts, read-only after.
struct PartitionsAtStart {
  bool known = false; // false: the lookup failed, and every such partition starts at its end
  std::set<TopicPartition> partitions;
  bool addedSince(const TopicPartition& tp) const { return known && !partitions.count(tp); }
};

// Records of one or more partitions, in offset order within each partition.
struct Batch {
  std::vector<Record> records;
  std::size_t payload_bytes = 0; // estimated encoded size, see invoker/payload.h
};

// Injected time so that loops and decisions can be driven by a fake in unit tests.
class Clock {
public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point now() const = 0;
};

class SteadyClock final : public Clock {
public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
};

} // namespace kesm
