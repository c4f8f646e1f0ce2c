#pragma once

// The readers of a config's sections: each turns one Field of the YAML into its part of the
// Config, reporting every rule broken. Internal to config/ (config.cc calls readServer and
// readMappings); pure but for `validate_setting`, which is called once per librdkafka
// setting.

#include "config/config.h"
#include "config/schema.h"
#include "config/yaml_diagnostics.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kesm::config::detail {

void readServer(Reporter& reporter, const Field& field, ServerConfig& server);
// leader_section.cc
void readLeaderElection(Reporter& reporter, const Field& field, LeaderElectionConfig& out);
// Kubernetes object names (leader_section.cc): an RFC 1123 subdomain (most objects), an RFC
// 1123 label (namespaces, at most `max` characters) and an RFC 1035 label (Services: starting
// with a letter).
bool validSubdomain(std::string_view s);
bool validLabel(std::string_view s, std::size_t max = 63);
bool validDns1035Label(std::string_view s);
// A mapping's pods section (pods_section.cc); `pods.name_at` and the defaults derived from the
// name are filled by the caller.
void readPods(Reporter& reporter, const Field& field, PodsConfig& pods);
// "kesm-" + name when that makes a StatefulSet name, else empty.
std::string defaultStatefulSet(const std::string& mapping_name);
// A path to a file, read at startup; only its shape is checked here (source_section.cc).
std::optional<std::string> readPath(Reporter& reporter, const Field& field);
// The caFile, certificateFile and keyFile paths of a tls section, with the rule both TLS
// sections share: a client certificate needs both files or neither (source_section.cc).
// Returns the fields given (nullptr where absent), for their locations.
struct TlsFileFields {
  const Field* ca = nullptr;
  const Field* cert = nullptr;
  const Field* key = nullptr;
};
TlsFileFields readTlsFiles(Reporter& reporter, SectionReader& section, std::string& ca_file,
                           std::string& certificate_file, std::string& key_file);
// A mapping's function (function_section.cc), and its functionResponseTypes list.
void readFunction(Reporter& reporter, const Field& field, FunctionConfig& function);
void readFunctionResponseTypes(Reporter& reporter, const Field& field, Mapping& mapping);
void readMappings(Reporter& reporter, const Field& field, const SettingValidator& validate_setting,
                  std::vector<Mapping>& mappings);

// A mapping's source (source_section.cc). `group_pos` is set when consumerGroupId is written.
void readSource(Reporter& reporter, const Field& field, const SettingValidator& validate_setting,
                SourceConfig& source, std::optional<Pos>& group_pos);

} // namespace kesm::config::detail
