#pragma once

// The one builder of kesm config files for the integration and e2e tests: named fields in,
// YAML text out. Tests that check how kesm reports a broken file write their text literally;
// every other test builds its config here rather than editing YAML strings.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kesm::test {

// `key: value` entries of one YAML map, in order. Values are written verbatim: a scalar
// (`5s`, `kafka://dlq`) or a flow node (`[a, b]`).
class YamlMap {
public:
  YamlMap() = default;
  YamlMap(std::initializer_list<std::pair<std::string, std::string>> entries);

  // Replaces the value of `key` where it stands, or appends the entry.
  YamlMap& set(const std::string& key, std::string value);
  YamlMap& set(const std::string& key, const char* value);
  YamlMap& set(const std::string& key, int value);
  YamlMap& set(const std::string& key, bool value);
  YamlMap& erase(const std::string& key);

  bool empty() const { return entries_.empty(); }
  // Each entry as `<indent>key: value\n`.
  std::string lines(int indent) const;

private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

// One entry of `mappings`. A map left empty is not written.
struct MappingYaml {
  std::string name;
  std::string bootstrap;           // source.bootstrapServers
  std::vector<std::string> topics; // source.topics
  // Other source keys: startingPosition, startingPositionTimestamp, partitionAssignor, ...
  YamlMap source;
  YamlMap librdkafka;       // source.librdkafka, in order (librdkafka applies it in order)
  std::string source_lines; // raw lines under source, indented 6 (a security map)
  std::string url;          // function.url
  YamlMap function;         // other function keys: timeout, nullValues, ...
  YamlMap batching;
  YamlMap scaling;
  YamlMap retry;
  std::string on_failure;           // onFailure.destination, e.g. kafka://orders-failed
  std::vector<std::string> filters; // filter patterns, each a flow map
  std::string extra_lines;          // raw lines appended to the mapping, indented 4

  // scaling.minimumPollers and scaling.maximumPollers.
  MappingYaml& pollers(int minimum, int maximum);
};

// A whole config file.
struct ConfigYaml {
  std::string listen = "127.0.0.1:0"; // server.listen; empty: no server section
  std::vector<MappingYaml> mappings{};

  std::string str() const;
};

// A whole file on 127.0.0.1:0 with this mapping alone.
std::string configYaml(const MappingYaml& mapping);

// The integration tests' mapping: one topic, a 5 s function timeout, batches of 100 cut after
// 100 ms, a 10 s grace period and short backoffs (50 ms to 500 ms).
MappingYaml testMapping(const std::string& name, const std::string& bootstrap,
                        const std::string& topic, const std::string& url, int min_pollers,
                        int max_pollers);

// A whole file on 127.0.0.1:0 with testMapping(...) alone.
std::string mappingYaml(const std::string& name, const std::string& bootstrap,
                        const std::string& topic, const std::string& url, int min_pollers,
                        int max_pollers);

} // namespace kesm::test
