#pragma once

// Small text helpers shared by the config parser and the filter compiler (pure).

#include <cstddef>
#include <string_view>

namespace kesm {

// Optimal string alignment distance: Levenshtein plus adjacent transpositions ("bacthSize"),
// for "did you mean" suggestions.
std::size_t editDistance(std::string_view a, std::string_view b);

} // namespace kesm
