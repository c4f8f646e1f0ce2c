#include "scaler/lag_source.h"

#include <catch2/catch.hpp>

using kesm::config::StartingPosition;
using kesm::scaler::partitionLag;

TEST_CASE("lag: a committed offset counts what is left after it", "[unit]") {
  CHECK(partitionLag(0, 1000, 400, StartingPosition::kTrimHorizon) == 600);
  CHECK(partitionLag(0, 1000, 1000, StartingPosition::kTrimHorizon) == 0);
  CHECK(partitionLag(0, 1000, 400, StartingPosition::kLatest) == 600);
}

TEST_CASE("lag: without a committed offset it follows the starting position", "[unit]") {
  // TRIM_HORIZON reads everything still in the log; LATEST only what comes next.
  CHECK(partitionLag(200, 1000, std::nullopt, StartingPosition::kTrimHorizon) == 800);
  CHECK(partitionLag(200, 1000, std::nullopt, StartingPosition::kLatest) == 0);
}

TEST_CASE("lag: LATEST counts a partition added since the start from its beginning, where the "
          "pollers read it",
          "[unit]") {
  using kesm::scaler::PartitionOrigin;
  CHECK(partitionLag(0, 120, std::nullopt, StartingPosition::kLatest,
                     PartitionOrigin::kAddedSince) == 120);
  CHECK(partitionLag(0, 120, std::nullopt, StartingPosition::kLatest, PartitionOrigin::kAtStart) ==
        0);
  // Once committed, the origin no longer matters.
  CHECK(partitionLag(0, 120, 100, StartingPosition::kLatest, PartitionOrigin::kAddedSince) == 20);
}

TEST_CASE("lag: a committed offset deleted by retention counts only what still exists", "[unit]") {
  CHECK(partitionLag(500, 1000, 100, StartingPosition::kTrimHorizon) == 500);
}

TEST_CASE("lag: never negative", "[unit]") {
  // A committed offset past the high watermark (a truncated or recreated topic).
  CHECK(partitionLag(0, 100, 150, StartingPosition::kTrimHorizon) == 0);
}
