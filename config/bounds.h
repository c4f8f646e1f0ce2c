#pragma once

// The work a config file may cost before it is even validated: its size, and how far YAML
// aliases expand it. Internal to the config component (config.cc calls these first).

#include "config/config.h"

#include <optional>
#include <string>

namespace kesm::config::detail {

// Every node of the document counted once per use: an alias counts as a copy of the node it
// names, so aliases nested in aliases count what they would expand to. An alias-free file of
// kMaxConfigBytes stays below both bounds; a handful of nested aliases does not.
inline constexpr std::size_t kMaxExpandedValues = 250000;
inline constexpr std::size_t kMaxExpandedTextBytes = 4 * 1024 * 1024;

// Reads at most kMaxConfigBytes + 1 bytes of the file, so a device (/dev/zero), a pipe or a
// huge file costs no more than that. Throws ConfigError when it cannot be read.
std::string readCapped(const std::string& path);

// A diagnostic at the byte where the text passes kMaxConfigBytes; nullopt when it does not.
std::optional<Diagnostic> checkSize(const std::string& text, const std::string& file);

// Walks the first YAML document's events (no node is built) and counts what it expands to.
// A diagnostic at the alias, or the value, where the count passes a bound; nullopt when it
// stays within them or when the text is not valid YAML (the parser reports that later).
std::optional<Diagnostic> checkExpansion(const std::string& text, const std::string& file);

} // namespace kesm::config::detail
