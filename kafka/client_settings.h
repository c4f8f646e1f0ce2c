#pragma once

// The librdkafka properties of every client kesm makes for a mapping's cluster (pollers, lag
// probe, preflight, onFailure producer), from one function so that a security setting cannot
// reach one client and miss another. Pure; any thread.

#include "config/config.h"

#include <string>
#include <utility>
#include <vector>

namespace kesm::kafka {

// In order: bootstrap.servers, security (protocol, SASL, TLS), then the source's librdkafka
// map, which therefore wins. Holds the secrets loaded by config::loadSecrets: never log it.
std::vector<std::pair<std::string, std::string>> clientSettings(const config::SourceConfig& source);

} // namespace kesm::kafka
