#include "poller/batcher.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::poller;
using namespace std::chrono_literals;

namespace {

using time_point = Clock::time_point;
const time_point t0{};

Record rec(const std::string& topic, int partition, std::int64_t offset, std::size_t size = 10) {
  Record r;
  r.topic = topic;
  r.partition = Partition{partition};
  r.offset = Offset{offset};
  r.value = std::string(size, 'v');
  return r;
}

// Sizes: each record costs its value length, each new partition 5, the envelope 20.
PayloadSizer simpleSizer() {
  PayloadSizer s;
  s.envelope_bytes = 20;
  s.record_bytes = [](const Record& r) { return r.value ? r.value->size() : 0; };
  s.partition_bytes = [](const TopicPartition&) { return std::size_t{5}; };
  return s;
}

std::vector<std::int64_t> offsets(const Batch& b) {
  std::vector<std::int64_t> out;
  for (const auto& r : b.records) {
    out.push_back(r.offset.value());
  }
  return out;
}

} // namespace

TEST_CASE("batcher: a full batch by count is ready at once and cut at the count", "[unit]") {
  Batcher b({.max_records = 3, .window = 500ms, .max_payload_bytes = 1000}, simpleSizer());
  b.add(rec("t", 0, 0), t0);
  b.add(rec("t", 0, 1), t0);
  CHECK_FALSE(b.ready(t0));
  b.add(rec("t", 0, 2), t0);
  b.add(rec("t", 0, 3), t0);
  CHECK(b.ready(t0));
  Batch batch = b.cut();
  CHECK(offsets(batch) == std::vector<std::int64_t>{0, 1, 2});
  CHECK(b.size() == 1);
}

TEST_CASE("batcher: the window counts from the oldest pending record", "[unit]") {
  Batcher b({.max_records = 100, .window = 500ms, .max_payload_bytes = 1000}, simpleSizer());
  CHECK(b.windowDeadline() == time_point::max());
  b.add(rec("t", 0, 0), t0);
  b.add(rec("t", 0, 1), t0 + 400ms);
  CHECK(b.windowDeadline() == t0 + 500ms);
  CHECK_FALSE(b.ready(t0 + 499ms));
  CHECK(b.ready(t0 + 500ms));
  CHECK(b.cut().records.size() == 2);
  CHECK_FALSE(b.ready(t0 + 10s));
}

TEST_CASE("batcher: a zero window sends whatever is pending", "[unit]") {
  Batcher b({.max_records = 100, .window = 0ms, .max_payload_bytes = 1000}, simpleSizer());
  CHECK_FALSE(b.ready(t0));
  b.add(rec("t", 0, 0), t0);
  CHECK(b.ready(t0));
}

TEST_CASE("batcher: cuts before the payload would pass the cap", "[unit]") {
  // envelope 20 + partition 5 + 3 x 100 = 325 <= 330; a fourth record would make 425.
  Batcher b({.max_records = 100, .window = 10s, .max_payload_bytes = 330}, simpleSizer());
  for (int i = 0; i < 3; ++i) {
    b.add(rec("t", 0, i, 100), t0);
  }
  CHECK_FALSE(b.ready(t0));
  b.add(rec("t", 0, 3, 100), t0);
  CHECK(b.ready(t0));
  Batch batch = b.cut();
  CHECK(offsets(batch) == std::vector<std::int64_t>{0, 1, 2});
  CHECK(batch.payload_bytes == 325);
  CHECK(b.pendingBytes() == 100);
}

TEST_CASE("batcher: a new partition's overhead counts toward the cap", "[unit]") {
  // 20 + (5 + 100) + (5 + 100) = 230 > 229: the second partition's record waits.
  Batcher b({.max_records = 100, .window = 0ms, .max_payload_bytes = 229}, simpleSizer());
  b.add(rec("t", 0, 0, 100), t0);
  b.add(rec("t", 1, 0, 100), t0);
  CHECK(b.cut().records.size() == 1);
  CHECK(b.cut().records.size() == 1);
}

TEST_CASE("batcher: one record larger than the cap is sent alone", "[unit]") {
  Batcher b({.max_records = 100, .window = 10s, .max_payload_bytes = 50}, simpleSizer());
  b.add(rec("t", 0, 0, 500), t0);
  b.add(rec("t", 0, 1, 10), t0);
  CHECK(b.ready(t0));
  CHECK(offsets(b.cut()) == std::vector<std::int64_t>{0});
}

TEST_CASE("batcher: keeps arrival order across partitions and offset order within one", "[unit]") {
  Batcher b({.max_records = 10, .window = 0ms, .max_payload_bytes = 10000}, simpleSizer());
  b.add(rec("t", 0, 5), t0);
  b.add(rec("t", 1, 7), t0);
  b.add(rec("t", 0, 6), t0);
  Batch batch = b.cut();
  REQUIRE(batch.records.size() == 3);
  CHECK(batch.records[0].partition == Partition{0});
  CHECK(batch.records[1].partition == Partition{1});
  CHECK(batch.records[2].offset == Offset{6});
}

TEST_CASE("batcher: busy partitions are skipped and keep their order for later", "[unit]") {
  Batcher b({.max_records = 10, .window = 0ms, .max_payload_bytes = 10000}, simpleSizer());
  b.add(rec("t", 0, 0), t0);
  b.add(rec("t", 1, 0), t0);
  b.add(rec("t", 0, 1), t0);
  std::set<TopicPartition> busy{{"t", Partition{0}}};
  Batch first = b.cut(busy);
  REQUIRE(first.records.size() == 1);
  CHECK(first.records[0].partition == Partition{1});
  CHECK_FALSE(b.ready(t0, busy));
  CHECK(offsets(b.cut()) == std::vector<std::int64_t>{0, 1});
}

TEST_CASE("batcher: drop forgets a revoked partition's records and bytes", "[unit]") {
  Batcher b({.max_records = 10, .window = 0ms, .max_payload_bytes = 10000}, simpleSizer());
  b.add(rec("t", 0, 0), t0);
  b.add(rec("t", 1, 0), t0);
  b.add(rec("t", 0, 1), t0);
  CHECK(b.drop({"t", Partition{0}}) == 2);
  CHECK(b.size() == 1);
  CHECK(b.pendingBytes() == 10);
  CHECK(b.cut().records.at(0).partition == Partition{1});
}
