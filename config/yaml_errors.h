#pragma once

// The checks a config's text gets before and while yaml-cpp reads it, and the explanation of
// the parser's errors in the words of someone who edits YAML by hand ("this '[' is never
// closed"). Internal to config/; pure, any thread.

#include "config/config.h"
#include "config/yaml_diagnostics.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <yaml-cpp/yaml.h>

namespace kesm::config::detail {

// YAML is Unicode text. A NUL byte or bytes that are not UTF-8 mean a binary or mis-encoded
// file: a diagnostic saying so, instead of the parser's confusing escape error. nullopt for
// UTF-8 text, and for UTF-16 or UTF-32 with a byte order mark (yaml-cpp decodes those).
std::optional<Diagnostic> checkText(const std::string& text, const std::string& file);

// Where each YAML document of a text starts, found without building any node.
//
// yaml-cpp 0.7 never gets past a ',' outside of brackets (",", "- a\n,"): it reports an empty
// document there again and again, and YAML::LoadAll grows until memory runs out. A document that
// starts where the one before it started is therefore where the parser is stuck.
struct DocumentScan {
  std::vector<YAML::Mark> documents; // the first mark of each document
  std::optional<YAML::Mark> stuck_at;
};

// At most 10000 documents are scanned. Throws what yaml-cpp throws on invalid YAML.
DocumentScan scanDocuments(const std::string& text);

// A clearer rule, and where to point, for the yaml-cpp errors a hand-edited file runs into:
// the bracket or quote never closed, a '- ' entry inside brackets, a tab in the indentation.
// `text` is what the parser read.
std::pair<Pos, std::string> explainYamlError(const YAML::Exception& e, const std::string& text);

} // namespace kesm::config::detail
