#pragma once

// Exponential backoff with jitter. Pure; the random value is injected.

#include <chrono>

namespace kesm::invoker {

struct BackoffPolicy {
  std::chrono::milliseconds initial{100};
  std::chrono::milliseconds maximum{30000};
  double multiplier = 2.0; // >= 1
  double jitter = 0.2;     // 0..1
};

// Delay before retry number `attempt` (1 = first retry after the first failure).
// base = min(maximum, initial * multiplier^(attempt-1)); the result lies in
// [base * (1 - jitter), base], chosen by random01 in [0, 1).
std::chrono::milliseconds nextBackoff(const BackoffPolicy& policy, int attempt, double random01);

} // namespace kesm::invoker
