#include "config_yaml.h"

#include <algorithm>

namespace kesm::test {

YamlMap::YamlMap(std::initializer_list<std::pair<std::string, std::string>> entries) {
  for (const auto& [key, value] : entries) {
    set(key, value);
  }
}

YamlMap& YamlMap::set(const std::string& key, std::string value) {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [&](const auto& entry) { return entry.first == key; });
  if (it != entries_.end()) {
    it->second = std::move(value);
  } else {
    entries_.emplace_back(key, std::move(value));
  }
  return *this;
}

YamlMap& YamlMap::set(const std::string& key, const char* value) {
  return set(key, std::string(value));
}

YamlMap& YamlMap::set(const std::string& key, int value) { return set(key, std::to_string(value)); }

YamlMap& YamlMap::set(const std::string& key, bool value) {
  return set(key, std::string(value ? "true" : "false"));
}

YamlMap& YamlMap::erase(const std::string& key) {
  std::erase_if(entries_, [&](const auto& entry) { return entry.first == key; });
  return *this;
}

std::string YamlMap::lines(int indent) const {
  std::string out;
  for (const auto& [key, value] : entries_) {
    out += std::string(static_cast<std::size_t>(indent), ' ') + key + ": " + value + "\n";
  }
  return out;
}

MappingYaml& MappingYaml::pollers(int minimum, int maximum) {
  scaling.set("minimumPollers", minimum);
  scaling.set("maximumPollers", maximum);
  return *this;
}

namespace {

std::string section(const std::string& key, const YamlMap& map) {
  return map.empty() ? "" : "    " + key + ":\n" + map.lines(6);
}

std::string entry(const MappingYaml& m) {
  std::string topics;
  for (const auto& t : m.topics) {
    topics += (topics.empty() ? "" : ", ") + t;
  }
  std::string out = "  - name: " + m.name + "\n";
  out += "    source:\n";
  out += "      bootstrapServers: " + m.bootstrap + "\n";
  out += "      topics: [" + topics + "]\n";
  out += m.source.lines(6);
  if (!m.librdkafka.empty()) {
    out += "      librdkafka:\n" + m.librdkafka.lines(8);
  }
  out += m.source_lines;
  out += "    function:\n";
  out += "      url: " + m.url + "\n";
  out += m.function.lines(6);
  out += section("batching", m.batching);
  out += section("scaling", m.scaling);
  out += section("retry", m.retry);
  if (!m.on_failure.empty()) {
    out += "    onFailure:\n      destination: " + m.on_failure + "\n";
  }
  if (!m.filters.empty()) {
    out += "    filters:\n";
    for (const auto& f : m.filters) {
      out += "      - " + f + "\n";
    }
  }
  out += m.extra_lines;
  return out;
}

} // namespace

std::string ConfigYaml::str() const {
  std::string out = listen.empty() ? "" : "server:\n  listen: " + listen + "\n";
  out += "mappings:\n";
  for (const auto& m : mappings) {
    out += entry(m);
  }
  return out;
}

std::string configYaml(const MappingYaml& mapping) {
  return ConfigYaml{.mappings = {mapping}}.str();
}

MappingYaml testMapping(const std::string& name, const std::string& bootstrap,
                        const std::string& topic, const std::string& url, int min_pollers,
                        int max_pollers) {
  MappingYaml m;
  m.name = name;
  m.bootstrap = bootstrap;
  m.topics = {topic};
  m.url = url;
  m.function.set("timeout", "5s");
  m.batching.set("batchSize", 100).set("maximumBatchingWindow", "100ms");
  m.pollers(min_pollers, max_pollers).scaling.set("gracePeriod", "10s");
  m.retry.set("initialBackoff", "50ms").set("maximumBackoff", "500ms");
  return m;
}

std::string mappingYaml(const std::string& name, const std::string& bootstrap,
                        const std::string& topic, const std::string& url, int min_pollers,
                        int max_pollers) {
  return configYaml(testMapping(name, bootstrap, topic, url, min_pollers, max_pollers));
}

} // namespace kesm::test
