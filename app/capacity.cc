#include "app/capacity.h"

namespace kesm::app {

namespace {

// The process itself: the main thread and the metrics server; stdio, the listening socket
// and what the libraries hold open (measured: 2 threads, 16 descriptors).
constexpr long kBaseThreads = 2;
constexpr long kBaseDescriptors = 16;

} // namespace

ResourceNeed estimateNeed(const config::Config& config) {
  ResourceNeed need{kBaseThreads, kBaseDescriptors};
  for (const auto& mapping : config.mappings) {
    const int servers = static_cast<int>(mapping.source.bootstrap_servers.size());
    const long workers = mapping.scaling.max_concurrent_batches;
    // The controller and the lag probe's client; the onFailure producer when there is one.
    need.threads += 1 + kafkaClientThreads(servers);
    need.descriptors += 6 + 2L * servers;
    if (!mapping.on_failure.destination_topic.empty()) {
      need.threads += kafkaClientThreads(servers);
      need.descriptors += 4 + 2L * servers;
    }
    const long pollers = mapping.scaling.maximum_pollers;
    need.threads += pollers * (pollerThreads(servers) + workers - 1);
    need.descriptors += pollers * (pollerDescriptors(servers) + workers - 1);
  }
  return need;
}

std::vector<std::string> capacityWarnings(const ResourceNeed& need, const ResourceLimits& limits) {
  std::vector<std::string> out;
  if (limits.threads && need.threads > *limits.threads) {
    out.push_back("with every mapping at maximumPollers this config may need about " +
                  std::to_string(need.threads) + " threads, more than the " +
                  std::to_string(*limits.threads) + " of " + limits.threads_from +
                  "; pollers past the limit will not start (the pool holds at what runs)");
  }
  if (limits.descriptors && need.descriptors > *limits.descriptors) {
    out.push_back("with every mapping at maximumPollers this config may need about " +
                  std::to_string(need.descriptors) + " file descriptors, more than the " +
                  std::to_string(*limits.descriptors) +
                  " of RLIMIT_NOFILE; raise it (ulimit -n) or lower maximumPollers");
  }
  return out;
}

} // namespace kesm::app
