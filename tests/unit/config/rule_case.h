#pragma once

// What the config tests share: the diagnostics a file produces, and a row of "this file gives
// exactly this one diagnostic".

#include "config/config.h"
#include "kafka/kafka.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace kesm::config::test {

inline std::vector<Diagnostic> diagnosticsOf(const std::string& yaml) {
  try {
    parseConfig(yaml, "kesm.yaml", kesm::kafka::checkSetting);
  } catch (const ConfigError& e) {
    return e.diagnostics();
  }
  return {};
}

struct RuleCase {
  const char* rule; // what the row shows
  std::string yaml;
  std::string key;
  int line;
  int column;
  std::string message;
};

inline void checkRule(const RuleCase& c) {
  INFO("rule: " << c.rule << "\n--- yaml ---\n" << c.yaml);
  auto diagnostics = diagnosticsOf(c.yaml);
  for (const auto& d : diagnostics) {
    UNSCOPED_INFO(d.toString());
  }
  REQUIRE(diagnostics.size() == 1);
  const Diagnostic& d = diagnostics.front();
  CHECK(d.file == "kesm.yaml");
  CHECK(d.key == c.key);
  CHECK(d.line == c.line);
  CHECK(d.column == c.column);
  CHECK(d.rule == c.message);
}

} // namespace kesm::config::test
