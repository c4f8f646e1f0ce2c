#pragma once

// Compiling a mapping's `filters:` from the config's YAML. The one header of the filter
// component with a vendor type: it is meant for config/config.cc, which reads the file with
// yaml-cpp; everything else uses filter/filter.h. Runs at startup only.

#include "filter/filter.h"

#include <memory>
#include <string>
#include <vector>
#include <yaml-cpp/yaml.h>

namespace kesm::filter {

// Compiles the `filters:` list of a mapping. Each entry is one pattern (a YAML/JSON map);
// a record passes when it matches ANY pattern. Reports every rule broken, with 1-based line
// and column from the node marks and the key path (e.g. mappings[0].filters[1].value.price),
// appending to `errors`; returns null when it appended any, the compiled filters otherwise.
// `path` is the key path of `list` itself, e.g. mappings[0].filters. An empty list is an
// error (it would drop every record); leave `filters` out to deliver every record. yaml-cpp
// has no position for an empty value (`filters:` with nothing after it): that error comes
// with line and column 0, so a caller that knows where the key is may check IsNull() first.
std::shared_ptr<const Filters> compileFilters(const YAML::Node& list, const std::string& path,
                                              std::vector<FilterError>& errors);

} // namespace kesm::filter
