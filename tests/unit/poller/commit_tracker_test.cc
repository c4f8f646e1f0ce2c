// What a poller may commit (poller/commit_tracker.h): a pure tracker of succeeded ranges.

#include "poller/commit_tracker.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::poller;

namespace {

const TopicPartition kP0{"orders", Partition{0}};
const TopicPartition kP1{"orders", Partition{1}};

PartitionRanges range(const TopicPartition& tp, std::int64_t first, std::int64_t last,
                      std::size_t records) {
  return PartitionRanges{{tp, PartitionRange{Offset{first}, Offset{last}, records}}};
}

std::vector<CommitAnswer> answersOf(const CommitRequest& request, bool accepted) {
  std::vector<CommitAnswer> answers;
  for (const auto& o : request.offsets) {
    answers.push_back(CommitAnswer{o.tp, o.next, accepted});
  }
  return answers;
}

Record record(const TopicPartition& tp, std::int64_t offset) {
  Record r;
  r.topic = tp.topic;
  r.partition = tp.partition;
  r.offset = Offset{offset};
  return r;
}

} // namespace

TEST_CASE("a committed offset is the next offset to read: last succeeded + 1",
          "[unit][poller][commit]") {
  CommitTracker tracker;
  tracker.assign(kP0);
  CHECK(tracker.take().empty()); // nothing succeeded yet
  tracker.succeeded(range(kP0, 10, 19, 10));
  CommitRequest request = tracker.take();
  REQUIRE(request.offsets.size() == 1);
  CHECK(request.offsets[0].tp == kP0);
  CHECK(request.offsets[0].next == Offset{20});
  CHECK(request.records.at(kP0) == 10);
}

TEST_CASE("a commit point only moves forward", "[unit][poller][commit]") {
  CommitTracker tracker;
  tracker.assign(kP0);
  tracker.succeeded(range(kP0, 10, 19, 10));
  tracker.succeeded(range(kP0, 0, 4, 5)); // an earlier range settling late must not rewind
  CHECK(tracker.committable(kP0) == 20);
}

TEST_CASE("an accepted commit is not sent again, a later success is", "[unit][poller][commit]") {
  CommitTracker tracker;
  tracker.assign(kP0);
  tracker.assign(kP1);
  tracker.succeeded(range(kP0, 0, 9, 10));
  tracker.succeeded(range(kP1, 0, 4, 5));
  CommitRequest first = tracker.take();
  REQUIRE(first.offsets.size() == 2);
  CHECK(tracker.settle(first, answersOf(first, true)) == 15);
  CHECK(tracker.take().empty());
  tracker.succeeded(range(kP1, 5, 6, 2));
  CommitRequest second = tracker.take();
  REQUIRE(second.offsets.size() == 1);
  CHECK(second.offsets[0].tp == kP1);
  CHECK(second.offsets[0].next == Offset{7});
}

TEST_CASE("a refused commit is resent with the next request, at the newest offset, its records "
          "counted once",
          "[unit][poller][commit]") {
  CommitTracker tracker;
  tracker.assign(kP0);
  tracker.succeeded(range(kP0, 0, 9, 10));
  CommitRequest refused = tracker.take();
  tracker.succeeded(range(kP0, 10, 11, 2));
  CHECK(tracker.settle(refused, answersOf(refused, false)) == 0);
  CommitRequest resend = tracker.take();
  REQUIRE(resend.offsets.size() == 1);
  CHECK(resend.offsets[0].next == Offset{12});
  CHECK(tracker.settle(resend, answersOf(resend, true)) == 12);
}

TEST_CASE("records move into a request once and return when it is refused",
          "[unit][poller][commit]") {
  CommitTracker tracker;
  tracker.assign(kP0);
  tracker.succeeded(range(kP0, 0, 9, 10));
  CommitRequest first = tracker.take();
  CHECK(first.records.at(kP0) == 10);
  CommitRequest overlapping = tracker.take(); // same offset, records already taken
  CHECK(overlapping.records.at(kP0) == 0);
  tracker.settle(first, answersOf(first, false));
  CommitRequest again = tracker.take();
  CHECK(again.records.at(kP0) == 10);
}

TEST_CASE("one refused partition of a request stays due, the accepted one does not",
          "[unit][poller][commit]") {
  CommitTracker tracker;
  tracker.assign(kP0);
  tracker.assign(kP1);
  tracker.succeeded(range(kP0, 0, 9, 10));
  tracker.succeeded(range(kP1, 0, 4, 5));
  CommitRequest request = tracker.take();
  std::vector<CommitAnswer> answers{{kP0, Offset{10}, true}, {kP1, Offset{5}, false}};
  CHECK(tracker.settle(request, answers) == 10);
  CommitRequest resend = tracker.take();
  REQUIRE(resend.offsets.size() == 1);
  CHECK(resend.offsets[0].tp == kP1);
}

TEST_CASE("a revoked partition is forgotten: its late successes commit nothing",
          "[unit][poller][commit]") {
  CommitTracker tracker;
  tracker.assign(kP0);
  tracker.assign(kP1);
  tracker.succeeded(range(kP0, 0, 9, 10));
  tracker.revoke(kP0);
  CHECK_FALSE(tracker.owns(kP0));
  tracker.succeeded(range(kP0, 10, 19, 10)); // an attempt that finished after the revoke
  tracker.succeeded(range(kP1, 0, 0, 1));
  CommitRequest request = tracker.take();
  REQUIRE(request.offsets.size() == 1);
  CHECK(request.offsets[0].tp == kP1);
  // Assigned again: starts from the group's committed offset, nothing remembered.
  tracker.assign(kP0);
  CHECK(tracker.committable(kP0) == -1);
}

TEST_CASE("a revoke commits only the revoked partitions", "[unit][poller][commit]") {
  CommitTracker tracker;
  tracker.assign(kP0);
  tracker.assign(kP1);
  tracker.succeeded(range(kP0, 0, 9, 10));
  tracker.succeeded(range(kP1, 0, 4, 5));
  std::set<TopicPartition> revoked{kP1};
  CommitRequest request = tracker.take(&revoked);
  REQUIRE(request.offsets.size() == 1);
  CHECK(request.offsets[0].tp == kP1);
  tracker.settle(request, answersOf(request, true));
  CommitRequest rest = tracker.take();
  REQUIRE(rest.offsets.size() == 1); // P0 still due
  CHECK(rest.offsets[0].tp == kP0);
}

TEST_CASE("filtered records are covered with their cut and counted on its first partition",
          "[unit][poller][commit]") {
  CommitTracker tracker;
  tracker.assign(kP0);
  tracker.assign(kP1);
  PartitionRanges cut{{kP0, PartitionRange{Offset{0}, Offset{9}, 10}},
                      {kP1, PartitionRange{Offset{3}, Offset{3}, 1}}};
  tracker.covered(cut, 4);
  CommitRequest request = tracker.take();
  REQUIRE(request.offsets.size() == 2);
  CHECK(request.offsets[0].next == Offset{10});
  CHECK(request.offsets[1].next == Offset{4});
  CHECK(request.records.at(kP0) == 4);
  CHECK(request.records.at(kP1) == 0);
}

TEST_CASE("LATEST: the start offset chosen is committed with the next request",
          "[unit][poller][commit]") {
  CommitTracker tracker;
  tracker.assign(kP0);
  tracker.startAt(kP0, Offset{500});
  CommitRequest request = tracker.take();
  REQUIRE(request.offsets.size() == 1);
  CHECK(request.offsets[0].next == Offset{500});
}

TEST_CASE("ranges of a batch: first and last offset and record count per partition",
          "[unit][poller][commit]") {
  Batch batch;
  batch.records = {record(kP0, 5), record(kP1, 7), record(kP0, 9), record(kP0, 12)};
  auto ranges = rangesOf(batch);
  REQUIRE(ranges.size() == 2);
  CHECK(ranges.at(kP0).first == Offset{5});
  CHECK(ranges.at(kP0).last == Offset{12});
  CHECK(ranges.at(kP0).records == 3); // gaps: fewer records than offsets
  CHECK(ranges.at(kP1).records == 1);
  CHECK(describe(ranges) == "orders-0@5..12, orders-1@7..7");
}
