#pragma once

// What a config needs of threads and file descriptors with every mapping at its maximum
// pollers, from the figures measured on the mock cluster (docs/operations.md, "Resources"),
// against the limits of this process: `kesm validate` warns when they do not fit.

#include "common/resources.h"
#include "config/config.h"

#include <string>
#include <vector>

namespace kesm::app {

struct ResourceNeed {
  long threads = 0;
  long descriptors = 0;
};

// An upper estimate: every poller with maxConcurrentBatches invoke workers and connections,
// as many brokers as bootstrap servers.
ResourceNeed estimateNeed(const config::Config& config);

// One line per limit the need passes; empty when it fits.
std::vector<std::string> capacityWarnings(const ResourceNeed& need, const ResourceLimits& limits);

} // namespace kesm::app
