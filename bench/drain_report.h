#pragma once

// bench/drain's report: the figures of a run, printed as "key: value" lines or as one JSON
// object (stdout). Built and printed on the main thread.

#include <string>
#include <vector>

namespace kesm::bench::drain {

// Figures in order, printed as "key: value" or as one JSON object.
class Report {
public:
  // A number with `precision` decimals, shown with its unit; NaN is JSON null, shown "n/a".
  void num(const std::string& key, double value, int precision = 2, const std::string& unit = "");
  void str(const std::string& key, const std::string& value);
  void print(bool json) const;

private:
  struct Item {
    std::string key, raw, shown;
    bool is_string;
  };
  std::vector<Item> items_;
};

// The q-quantile (0..1) of `values`, nearest rank; NaN when there are none.
double percentile(std::vector<double> values, double q);

} // namespace kesm::bench::drain
