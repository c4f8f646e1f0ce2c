// The batcher with the payload encoder's real sizes: 1 MiB records (about 1.4 MB of base64
// each) are cut so that every event stays within 6 MiB, exactly at the byte.

#include "invoker/payload.h"
#include "poller/batcher.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::poller;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kCap = 6 * 1024 * 1024;
const std::string kServers = "b:9092";
const Clock::time_point t0{};

PayloadSizer encoderSizer() {
  PayloadSizer s;
  s.envelope_bytes = invoker::encodedEnvelopeOverhead(kServers);
  s.record_bytes = [](const Record& r) { return invoker::encodedRecordSize(r); };
  s.partition_bytes = [](const TopicPartition& tp) {
    return invoker::encodedPartitionOverhead(tp.topic, tp.partition);
  };
  return s;
}

Record megabyteRecord(int partition, std::int64_t offset) {
  static const std::string big = [] {
    std::string s(1 << 20, '\0');
    for (std::size_t i = 0; i < s.size(); ++i) {
      s[i] = static_cast<char>(i % 256);
    }
    return s;
  }();
  Record r;
  r.topic = "large";
  r.partition = Partition{partition};
  r.offset = Offset{offset};
  r.key = "k";
  r.value = big;
  return r;
}

} // namespace

TEST_CASE("payload cap: 1 MiB records are cut four to a 6 MiB batch", "[unit]") {
  Batcher b({.max_records = 10000, .window = 10s, .max_payload_bytes = kCap}, encoderSizer());
  // Two partitions interleaved: their overheads count too.
  for (int i = 0; i < 10; ++i) {
    b.add(megabyteRecord(i % 2, i / 2), t0);
  }
  std::vector<std::size_t> sizes;
  while (!b.empty()) {
    REQUIRE(b.ready(t0 + 10s));
    Batch batch = b.cut();
    const std::string json = invoker::encodeLambdaKafkaEvent(batch, kServers);
    CHECK(json.size() == batch.payload_bytes); // the prediction is exact
    CHECK(json.size() <= kCap);
    sizes.push_back(batch.records.size());
  }
  CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
}

TEST_CASE("payload cap: a batch may end exactly at 6 MiB, one byte more is cut", "[unit]") {
  // Four 1 MiB records, then a small record whose header key fills the batch to the cap.
  auto fill = [](std::size_t extra) {
    Batcher b({.max_records = 10000, .window = 10s, .max_payload_bytes = kCap}, encoderSizer());
    std::size_t four = invoker::encodedEnvelopeOverhead(kServers) +
                       invoker::encodedPartitionOverhead("large", Partition{0});
    for (int i = 0; i < 4; ++i) {
      Record r = megabyteRecord(0, i);
      four += invoker::encodedRecordSize(r);
      b.add(std::move(r), t0);
    }
    Record filler = megabyteRecord(0, 4);
    filler.value = "";
    filler.headers = {{"", "x"}};
    const std::size_t base = invoker::encodedRecordSize(filler);
    filler.headers[0].key = std::string(kCap - four - base + extra, 'f');
    b.add(std::move(filler), t0);
    b.add(megabyteRecord(0, 5), t0);
    return b;
  };
  SECTION("exactly at the cap: the filler rides along") {
    Batcher b = fill(0);
    Batch batch = b.cut();
    CHECK(batch.records.size() == 5);
    CHECK(batch.payload_bytes == kCap);
    CHECK(invoker::encodeLambdaKafkaEvent(batch, kServers).size() == kCap);
  }
  SECTION("one byte over: the filler waits for the next batch") {
    Batcher b = fill(1);
    Batch batch = b.cut();
    CHECK(batch.records.size() == 4);
    CHECK(invoker::encodeLambdaKafkaEvent(batch, kServers).size() == batch.payload_bytes);
    CHECK(b.cut().records.front().offset == Offset{4});
  }
}

TEST_CASE("payload cap: a single record above 6 MiB is sent alone", "[unit]") {
  Batcher b({.max_records = 10000, .window = 10s, .max_payload_bytes = kCap}, encoderSizer());
  Record huge = megabyteRecord(0, 0);
  huge.value = std::string(5 * 1024 * 1024, 'x'); // about 7 MB of base64
  b.add(std::move(huge), t0);
  b.add(megabyteRecord(0, 1), t0);
  REQUIRE(b.ready(t0));
  Batch batch = b.cut();
  CHECK(batch.records.size() == 1);
  CHECK(batch.payload_bytes > kCap);
  CHECK(invoker::encodeLambdaKafkaEvent(batch, kServers).size() == batch.payload_bytes);
}
