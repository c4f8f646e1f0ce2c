#include "bench/drain_report.h"

#include "common/json.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iostream>
#include <sstream>

namespace kesm::bench::drain {

void Report::num(const std::string& key, double value, int precision, const std::string& unit) {
  std::ostringstream text;
  if (std::isnan(value)) {
    items_.push_back({key, "null", "n/a", false});
    return;
  }
  text.setf(std::ios::fixed);
  text.precision(precision);
  text << value;
  items_.push_back({key, text.str(), text.str() + (unit.empty() ? "" : " " + unit), false});
}

void Report::str(const std::string& key, const std::string& value) {
  items_.push_back({key, value, value, true});
}

void Report::print(bool json) const {
  if (json) {
    std::cout << "{";
    for (std::size_t i = 0; i < items_.size(); ++i) {
      std::cout << (i ? "," : "") << kesm::json::quote(items_[i].key) << ":"
                << (items_[i].is_string ? kesm::json::quote(items_[i].raw) : items_[i].raw);
    }
    std::cout << "}\n";
    return;
  }
  std::size_t width = 0;
  for (const auto& item : items_) {
    width = std::max(width, item.key.size());
  }
  for (const auto& item : items_) {
    std::cout << "  " << item.key << std::string(width - item.key.size() + 1, ' ') << ": "
              << item.shown << "\n";
  }
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) {
    return std::nan("");
  }
  auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size()))) - 1;
  k = std::min(k, values.size() - 1);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

} // namespace kesm::bench::drain
