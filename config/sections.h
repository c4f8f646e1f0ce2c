#pragma once

// The readers of a config's sections: each turns one Field of the YAML into its part of the
// Config, reporting every rule broken. Internal to config/ (config.cc calls readServer and
// readMappings); pure but for `validate_setting`, which is called once per librdkafka
// setting.

#include "config/config.h"
#include "config/yaml_diagnostics.h"

#include <optional>
#include <vector>

namespace kesm::config::detail {

void readServer(Reporter& reporter, const Field& field, ServerConfig& server);
// leader_section.cc
void readLeaderElection(Reporter& reporter, const Field& field, LeaderElectionConfig& out);
void readMappings(Reporter& reporter, const Field& field, const SettingValidator& validate_setting,
                  std::vector<Mapping>& mappings);

// A mapping's source (source_section.cc). `group_pos` is set when consumerGroupId is written.
void readSource(Reporter& reporter, const Field& field, const SettingValidator& validate_setting,
                SourceConfig& source, std::optional<Pos>& group_pos);

} // namespace kesm::config::detail
