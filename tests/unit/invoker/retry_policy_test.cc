#include "invoker/retry_policy.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

using namespace kesm::invoker;
using namespace std::chrono_literals;

namespace {

const double kAlmostOne = std::nextafter(1.0, 0.0);

// The documented base: min(maximum, initial * multiplier^(attempt-1)).
double expectedBase(const BackoffPolicy& p, int attempt) {
  double base = static_cast<double>(p.initial.count());
  for (int i = 1; i < attempt && base < static_cast<double>(p.maximum.count()); ++i) {
    base *= p.multiplier;
  }
  return std::min(base, static_cast<double>(p.maximum.count()));
}

} // namespace

TEST_CASE("backoff: stays within [base * (1 - jitter), base] for attempts 1..40", "[unit]") {
  const BackoffPolicy policy{.initial = 100ms, .maximum = 30s, .multiplier = 2.0, .jitter = 0.2};
  auto attempt = GENERATE(range(1, 41));
  auto random = GENERATE(0.0, 0.5, kAlmostOne);
  CAPTURE(attempt, random);
  const double base = expectedBase(policy, attempt);
  const auto delay = nextBackoff(policy, attempt, random);
  CHECK(static_cast<double>(delay.count()) <= base);
  CHECK(static_cast<double>(delay.count()) >= std::floor(base * (1.0 - policy.jitter)));
}

TEST_CASE("backoff: random 0 gives the low end, random ~1 the base", "[unit]") {
  const BackoffPolicy policy{.initial = 100ms, .maximum = 30s, .multiplier = 2.0, .jitter = 0.2};
  struct Case {
    int attempt;
    double random;
    std::chrono::milliseconds expected;
  };
  auto c = GENERATE(Case{.attempt = 1, .random = 0.0, .expected = 80ms},
                    Case{.attempt = 1, .random = kAlmostOne, .expected = 100ms},
                    Case{.attempt = 2, .random = 0.0, .expected = 160ms},
                    Case{.attempt = 3, .random = kAlmostOne, .expected = 400ms},
                    Case{.attempt = 3, .random = 0.5, .expected = 360ms},
                    Case{.attempt = 9, .random = kAlmostOne, .expected = 25600ms},
                    Case{.attempt = 10, .random = kAlmostOne, .expected = 30s},
                    Case{.attempt = 10, .random = 0.0, .expected = 24s});
  CAPTURE(c.attempt, c.random);
  CHECK(nextBackoff(policy, c.attempt, c.random) == c.expected);
}

TEST_CASE("backoff: grows with the attempt until the cap, then stays at the cap", "[unit]") {
  const BackoffPolicy policy{.initial = 50ms, .maximum = 10s, .multiplier = 3.0, .jitter = 0.0};
  std::chrono::milliseconds previous{0};
  for (int attempt = 1; attempt <= 60; ++attempt) {
    const auto delay = nextBackoff(policy, attempt, 0.3);
    CAPTURE(attempt);
    CHECK(delay >= previous);
    CHECK(delay <= policy.maximum);
    previous = delay;
  }
  CHECK(nextBackoff(policy, 2, 0.0) == 150ms);
  CHECK(nextBackoff(policy, 60, 0.0) == 10s);
}

TEST_CASE("backoff: jitter 0 is deterministic", "[unit]") {
  const BackoffPolicy policy{.initial = 100ms, .maximum = 30s, .multiplier = 2.0, .jitter = 0.0};
  auto random = GENERATE(0.0, 0.25, 0.5, 0.999);
  CHECK(nextBackoff(policy, 1, random) == 100ms);
  CHECK(nextBackoff(policy, 4, random) == 800ms);
}

TEST_CASE("backoff: out-of-range inputs are clamped", "[unit]") {
  const BackoffPolicy policy{.initial = 100ms, .maximum = 30s, .multiplier = 2.0, .jitter = 0.5};
  struct Case {
    const char* name;
    int attempt;
    double random;
    std::chrono::milliseconds expected;
  };
  auto c = GENERATE(
      Case{.name = "attempt 0 is attempt 1", .attempt = 0, .random = 0.0, .expected = 50ms},
      Case{.name = "negative attempt", .attempt = -5, .random = 0.0, .expected = 50ms},
      Case{.name = "huge attempt caps",
           .attempt = std::numeric_limits<int>::max(),
           .random = kAlmostOne,
           .expected = 30s},
      Case{.name = "random below 0", .attempt = 1, .random = -3.0, .expected = 50ms},
      Case{.name = "random 1 and above", .attempt = 1, .random = 7.0, .expected = 100ms},
      Case{.name = "random NaN",
           .attempt = 1,
           .random = std::numeric_limits<double>::quiet_NaN(),
           .expected = 50ms});
  CAPTURE(c.name);
  CHECK(nextBackoff(policy, c.attempt, c.random) == c.expected);
}

TEST_CASE("backoff: degenerate policies give sane delays", "[unit]") {
  CHECK(nextBackoff({.initial = 0ms, .maximum = 30s, .multiplier = 2.0, .jitter = 0.2}, 50, 0.5) ==
        0ms);
  CHECK(nextBackoff({.initial = 500ms, .maximum = 100ms, .multiplier = 2.0, .jitter = 0.0}, 1,
                    0.5) == 100ms);
  CHECK(nextBackoff({.initial = 100ms, .maximum = 30s, .multiplier = 0.5, .jitter = 0.0}, 5, 0.5) ==
        100ms);
  CHECK(nextBackoff({.initial = 100ms, .maximum = 30s, .multiplier = 2.0, .jitter = 7.0}, 1, 0.0) ==
        0ms);
}
