#include "config/config.h"

#include "config/bounds.h"
#include "config/schema.h"
#include "config/sections.h"
#include "config/yaml_diagnostics.h"
#include "config/yaml_errors.h"

#include <cctype>
#include <stdexcept>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

// parseConfig's pipeline: the size, the text, the documents, the alias expansion (each a
// bound on what a file may cost), then the YAML tree read section by section
// (sections.cc). The parts: duration.cc, yaml_diagnostics.cc (reading and reporting),
// schema.cc (keys and ranges), values.cc, yaml_errors.cc, load.cc (file and secret I/O).

namespace kesm::config {

namespace {

using namespace detail;

Config parse(const std::string& yaml_text, const std::string& file_name,
             const SettingValidator& validate_setting) {
  Reporter reporter(file_name);
  // The size first: a device or a huge file is refused before any pass over all of it.
  if (auto diagnostic = detail::checkSize(yaml_text, file_name)) {
    throw ConfigError({*diagnostic});
  }
  if (auto diagnostic = checkText(yaml_text, file_name)) {
    throw ConfigError({*diagnostic});
  }
  YAML::Node root;
  try {
    DocumentScan scan = scanDocuments(yaml_text);
    if (scan.stuck_at) {
      const YAML::Mark& mark = *scan.stuck_at;
      std::string rule = "invalid YAML: the parser cannot read past this point";
      if (mark.pos >= 0 && static_cast<std::size_t>(mark.pos) < yaml_text.size() &&
          std::isgraph(static_cast<unsigned char>(yaml_text[mark.pos]))) {
        rule = std::string("invalid YAML: unexpected '") + yaml_text[mark.pos] + "'";
        if (yaml_text[mark.pos] == ',') {
          rule += " outside of [ ] or { }";
        }
      }
      reporter.add(Pos{mark.line + 1, mark.column + 1}, "", rule);
      reporter.raise();
    }
    if (scan.documents.size() > 1) {
      const YAML::Mark& mark = scan.documents[1];
      reporter.add(Pos{mark.line + 1, mark.column + 1}, "",
                   "the file holds " + std::to_string(scan.documents.size()) +
                       " YAML documents; kesm reads exactly one");
    }
    // Before any node is walked: aliases nested in aliases expand exponentially.
    if (auto diagnostic = detail::checkExpansion(yaml_text, file_name)) {
      throw ConfigError({*diagnostic});
    }
    root = YAML::Load(yaml_text);
  } catch (const YAML::DeepRecursion& e) {
    Pos pos = e.mark.is_null() ? kFileStart : Pos{e.mark.line + 1, e.mark.column + 1};
    reporter.add(pos, "", "invalid YAML: nested too deeply");
    reporter.raise();
  } catch (const YAML::Exception& e) {
    auto [pos, rule] = explainYamlError(e, yaml_text);
    reporter.add(pos, "", rule);
    reporter.raise();
  }
  if (!root.IsDefined() || root.IsNull()) {
    reporter.add(kFileStart, "", "the file is empty; a kesm config needs at least a mappings list");
    reporter.raise();
  }
  Pos root_pos = posOf(root, kFileStart);
  Config config;
  config.file = file_name;
  if (!root.IsMap()) {
    reporter.add(root_pos, "",
                 "the top level must be a map with the keys server and mappings, got " +
                     describe(root));
    reporter.raise();
  }
  SectionReader top(reporter, root, "", root_pos, kTopSection);
  if (auto f = top.optional("server")) {
    readServer(reporter, *f, config.server);
  }
  if (auto f = top.optional("leaderElection")) {
    readLeaderElection(reporter, *f, config.leader_election);
  }
  if (auto f = top.required("mappings", "add a list of at least one mapping")) {
    readMappings(reporter, *f, validate_setting, config.mappings);
  }
  if (!reporter.empty()) {
    reporter.raise();
  }
  return config;
}

} // namespace

Config parseConfig(const std::string& yaml_text, const std::string& file_name,
                   const SettingValidator& validate_setting) {
  if (!validate_setting) {
    throw std::invalid_argument("parseConfig: no SettingValidator (pass kafka::checkSetting)");
  }
  try {
    return parse(yaml_text, file_name, validate_setting);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    // yaml-cpp on input nobody foresaw, or a conversion: still one clear diagnostic.
    throw ConfigError({Diagnostic{file_name, 1, 1, "", std::string("cannot parse: ") + e.what()}});
  }
}

} // namespace kesm::config
