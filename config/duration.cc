#include "config/duration.h"

#include <cstdint>
#include <string_view>

namespace kesm::config {

std::optional<Millis> parseDuration(const std::string& text) {
  // A sum of <number><unit> terms ("500ms", "1.5s", "1m30s"), or a bare "0". Every term must
  // come out as a whole number of milliseconds.
  if (text == "0") {
    return Millis{0};
  }
  if (text.empty()) {
    return std::nullopt;
  }
  constexpr std::int64_t kMaxWhole = 1'000'000'000'000;         // keeps whole * 3.6e6 in range
  constexpr std::int64_t kMaxTotal = 1'000'000'000'000'000'000; // ~31 million years
  constexpr std::size_t kMaxFractionDigits = 12;
  std::int64_t total = 0;
  std::size_t i = 0;
  const std::size_t n = text.size();
  auto digit = [&](std::size_t at) { return at < n && text[at] >= '0' && text[at] <= '9'; };
  while (i < n) {
    std::int64_t whole = 0;
    std::size_t whole_digits = 0;
    while (digit(i)) {
      whole = whole * 10 + (text[i] - '0');
      if (whole > kMaxWhole) {
        return std::nullopt;
      }
      ++i;
      ++whole_digits;
    }
    std::int64_t fraction = 0;
    std::int64_t scale = 1;
    std::size_t fraction_digits = 0;
    if (i < n && text[i] == '.') {
      ++i;
      std::size_t first = i;
      while (digit(i)) {
        ++i;
      }
      fraction_digits = i - first;
      std::string_view digits = std::string_view(text).substr(first, fraction_digits);
      while (!digits.empty() && digits.back() == '0') {
        digits.remove_suffix(1); // trailing zeros do not change the value
      }
      if (fraction_digits == 0 || digits.size() > kMaxFractionDigits) {
        return std::nullopt;
      }
      for (char c : digits) {
        fraction = fraction * 10 + (c - '0');
        scale *= 10;
      }
    }
    if (whole_digits == 0 && fraction_digits == 0) {
      return std::nullopt;
    }
    std::int64_t unit = 0;
    if (text.compare(i, 2, "ms") == 0) {
      unit = 1;
      i += 2;
    } else if (i < n && text[i] == 's') {
      unit = 1000;
      ++i;
    } else if (i < n && text[i] == 'm') {
      unit = 60 * 1000;
      ++i;
    } else if (i < n && text[i] == 'h') {
      unit = 60 * 60 * 1000;
      ++i;
    } else {
      return std::nullopt;
    }
    // fraction < 10^12 and unit <= 3.6e6: the product stays below 2^63.
    if ((fraction * unit) % scale != 0) {
      return std::nullopt; // finer than a millisecond
    }
    total += whole * unit + fraction * unit / scale;
    if (total > kMaxTotal) {
      return std::nullopt;
    }
  }
  return Millis{total};
}

std::string formatDuration(Millis value) {
  auto ms = value.count();
  if (ms != 0 && ms % 3'600'000 == 0) {
    return std::to_string(ms / 3'600'000) + "h";
  }
  if (ms != 0 && ms % 60'000 == 0) {
    return std::to_string(ms / 60'000) + "m";
  }
  if (ms != 0 && ms % 1000 == 0) {
    return std::to_string(ms / 1000) + "s";
  }
  return ms == 0 ? "0" : std::to_string(ms) + "ms";
}

} // namespace kesm::config
