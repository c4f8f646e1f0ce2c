#include "invoker/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace kesm::invoker {

std::chrono::milliseconds nextBackoff(const BackoffPolicy& policy, int attempt, double random01) {
  // Clamp every input so that a bad config or random source cannot produce a negative,
  // overflowing or NaN delay.
  const double initial = static_cast<double>(std::max<long long>(0, policy.initial.count()));
  const double maximum = static_cast<double>(std::max<long long>(0, policy.maximum.count()));
  const double multiplier =
      std::isfinite(policy.multiplier) ? std::max(1.0, policy.multiplier) : 1.0;
  const double jitter = std::isfinite(policy.jitter) ? std::clamp(policy.jitter, 0.0, 1.0) : 0.0;
  const double r =
      std::isfinite(random01) ? std::clamp(random01, 0.0, std::nextafter(1.0, 0.0)) : 0.0;
  const int exponent = std::max(1, attempt) - 1;

  // base = min(maximum, initial * multiplier^exponent), decided in log space before pow()
  // so that a huge attempt number neither overflows nor wastes time.
  double base = maximum;
  if (initial < maximum) {
    if (multiplier == 1.0 || exponent == 0) {
      base = initial;
    } else if (initial > 0.0 &&
               static_cast<double>(exponent) * std::log(multiplier) < std::log(maximum / initial)) {
      base = std::min(maximum, initial * std::pow(multiplier, exponent));
    } else if (initial == 0.0) {
      base = 0.0;
    }
  }

  // The result lies in [base * (1 - jitter), base]; random 0 gives the low end.
  const double low = base * (1.0 - jitter);
  const double chosen = low + r * (base - low);
  auto ms = static_cast<long long>(std::llround(chosen));
  ms = std::min(ms, static_cast<long long>(std::floor(base)));
  ms = std::max(ms, std::min(static_cast<long long>(std::ceil(low)),
                             static_cast<long long>(std::floor(base))));
  return std::chrono::milliseconds(ms);
}

} // namespace kesm::invoker
