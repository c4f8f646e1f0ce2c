// When refused Kafka access disables a mapping (poller/failure_policy.h AccessRefusalWindow).

#include "poller/failure_policy.h"

#include <catch2/catch.hpp>

using namespace kesm;
using namespace kesm::poller;
using std::chrono::milliseconds;
using Verdict = AccessRefusalWindow::Verdict;

namespace {
const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1);
}

TEST_CASE("refusals that last 30 s disable, and each reconnect's refusal continues the count",
          "[unit][poller][access]") {
  AccessRefusalWindow window;
  CHECK(window.refused(kT0) == Verdict::kStarted);
  CHECK(window.refused(kT0 + milliseconds(10000)) == Verdict::kContinuing);
  CHECK(window.refused(kT0 + milliseconds(20000)) == Verdict::kContinuing);
  CHECK(window.refused(kT0 + milliseconds(29999)) == Verdict::kContinuing);
  CHECK(window.refused(kT0 + milliseconds(30000)) == Verdict::kFatal);
}

TEST_CASE("a silence of 15 s means access worked in between: the count starts again",
          "[unit][poller][access]") {
  AccessRefusalWindow window;
  CHECK(window.refused(kT0) == Verdict::kStarted);
  CHECK(window.refused(kT0 + milliseconds(14000)) == Verdict::kContinuing);
  CHECK(window.refused(kT0 + milliseconds(29000)) == Verdict::kStarted); // 15 s of silence
  CHECK(window.refused(kT0 + milliseconds(40000)) == Verdict::kContinuing);
  CHECK(window.refused(kT0 + milliseconds(50000)) == Verdict::kContinuing);
  CHECK(window.refused(kT0 + milliseconds(59000)) == Verdict::kFatal);
}

TEST_CASE("a record arriving starts the count again", "[unit][poller][access]") {
  AccessRefusalWindow window;
  window.refused(kT0);
  window.refused(kT0 + milliseconds(10000));
  window.worked();
  CHECK(window.refused(kT0 + milliseconds(20000)) == Verdict::kStarted); // 10 s after the last
  CHECK(window.refused(kT0 + milliseconds(30000)) == Verdict::kContinuing);
  CHECK(window.refused(kT0 + milliseconds(40000)) == Verdict::kContinuing);
  CHECK(window.refused(kT0 + milliseconds(50000)) == Verdict::kFatal);
}
