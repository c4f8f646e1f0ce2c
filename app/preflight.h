#pragma once

// The startup preflight: before kesm runs a config (or when `kesm validate --connect` asks), it
// checks against the cluster that each mapping's bootstrap servers answer and that every topic
// it names exists. A wrong address or a misspelt topic is a configuration error, reported like
// the static ones: FILE:LINE:COLUMN: KEY: RULE, pointing at the value in the file.
//
// At runtime the same conditions (a broker outage, a deleted topic) are not errors of the
// config: the pollers and the controller ride them out. See docs/architecture.md.

#include "config/config.h"

#include <chrono>
#include <vector>

namespace kesm::app {

inline constexpr std::chrono::milliseconds kDefaultPreflightTimeout{10000};

// Checks every mapping, all at once, within `timeout` in total. Each check uses its own
// short-lived librdkafka client with the mapping's librdkafka settings (security and so on):
// never a group member, and it never asks the brokers to create a topic (it reads the metadata
// of all topics). Throws config::ConfigError listing every problem found; returns when all
// mappings passed. Runs on the calling thread, plus one helper thread per mapping.
void preflight(const config::Config& config,
               std::chrono::milliseconds timeout = kDefaultPreflightTimeout);

// The same checks, reported per mapping (in config order): an empty list for a mapping that
// passed. `kesm run` starts the mappings that passed and disables the others, unless none
// passed.
std::vector<std::vector<config::Diagnostic>>
preflightEach(const config::Config& config,
              std::chrono::milliseconds timeout = kDefaultPreflightTimeout);

} // namespace kesm::app
