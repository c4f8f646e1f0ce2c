// A mapping's pods section: defaults derived from the name, every rule and where it points.

#include "rule_case.h"

using namespace kesm::config;
using kesm::config::test::checkRule;
using kesm::config::test::RuleCase;

namespace {

std::string mapping(const std::string& name, const std::string& pods = "") {
  return "mappings:\n"
         "  - name: " +
         name +
         "\n"
         "    source: {bootstrapServers: k:9092, topics: [orders]}\n"
         "    function: {url: http://fn:8080/}\n" +
         pods;
}

Config parse(const std::string& yaml) {
  return parseConfig(yaml, "kesm.yaml", kesm::kafka::checkSetting);
}

} // namespace

TEST_CASE("pods: absent means kesm-NAME, one poller per pod, read every 15 s", "[unit]") {
  auto c = parse(mapping("orders"));
  const auto& p = c.mappings.at(0).pods;
  CHECK(p.stateful_set == "kesm-orders");
  CHECK(p.service == "kesm-orders");
  CHECK(p.pollers_per_pod == 1);
  CHECK(p.status_interval == Millis{15000});
  CHECK(p.name_at.key == "mappings[0].name");
  CHECK(p.name_at.line == 2);
  CHECK(p.name_at.column == 11);
}

TEST_CASE("pods: a name that makes no StatefulSet name leaves it empty", "[unit]") {
  // Capitals, '_' and '.' are fine in a mapping name, not in a Kubernetes object name.
  CHECK(parse(mapping("Orders")).mappings.at(0).pods.stateful_set.empty());
  CHECK(parse(mapping("or_ders")).mappings.at(0).pods.stateful_set.empty());
  CHECK(parse(mapping(std::string(48, 'a'))).mappings.at(0).pods.stateful_set.empty());
  CHECK(parse(mapping(std::string(47, 'a'))).mappings.at(0).pods.stateful_set ==
        "kesm-" + std::string(47, 'a'));
}

TEST_CASE("pods: every key read, and service defaults to the StatefulSet", "[unit]") {
  auto c = parse(mapping("Orders_EU", "    pods:\n"
                                      "      statefulSet: orders-eu\n"
                                      "      pollersPerPod: 4\n"
                                      "      statusInterval: 2s\n"));
  const auto& p = c.mappings.at(0).pods;
  CHECK(p.stateful_set == "orders-eu");
  CHECK(p.service == "orders-eu");
  CHECK(p.pollers_per_pod == 4);
  CHECK(p.status_interval == Millis{2000});
  auto d = parse(mapping("orders", "    pods: {service: orders-pollers}\n"));
  CHECK(d.mappings.at(0).pods.stateful_set == "kesm-orders");
  CHECK(d.mappings.at(0).pods.service == "orders-pollers");
}

TEST_CASE("pods: rules", "[unit]") {
  auto c = GENERATE(from_range(std::vector<RuleCase>{
      {.rule = "a StatefulSet name with capitals",
       .yaml = mapping("orders", "    pods:\n      statefulSet: Orders\n"),
       .key = "mappings[0].pods.statefulSet",
       .line = 6,
       .column = 20,
       .message = "must be a StatefulSet name: at most 52 lowercase letters, digits and '-', "
                  "starting and ending with a letter or digit, like kesm-orders (its pods add "
                  "-ORDINAL and Kubernetes a revision label to it), got 'Orders'"},
      {.rule = "a StatefulSet name of 53 characters",
       .yaml = mapping("orders", "    pods:\n      statefulSet: " + std::string(53, 'a') + "\n"),
       .key = "mappings[0].pods.statefulSet",
       .line = 6,
       .column = 20,
       .message = ""},
      {.rule = "a Service name starting with a digit",
       .yaml = mapping("orders", "    pods:\n      service: 1orders\n"),
       .key = "mappings[0].pods.service",
       .line = 6,
       .column = 16,
       .message = "must be a Service name: at most 63 lowercase letters, digits and '-', "
                  "starting with a letter and ending with a letter or digit, like kesm-orders, "
                  "got '1orders'"},
      {.rule = "pollersPerPod above 64",
       .yaml = mapping("orders", "    pods:\n      pollersPerPod: 65\n"),
       .key = "mappings[0].pods.pollersPerPod",
       .line = 6,
       .column = 22,
       .message = ""},
      {.rule = "statusInterval below 1s",
       .yaml = mapping("orders", "    pods:\n      statusInterval: 100ms\n"),
       .key = "mappings[0].pods.statusInterval",
       .line = 6,
       .column = 23,
       .message = ""},
      {.rule = "an unknown key",
       .yaml = mapping("orders", "    pods:\n      replicas: 3\n"),
       .key = "mappings[0].pods.replicas",
       .line = 6,
       .column = 7,
       .message = ""},
      {.rule = "not a map",
       .yaml = mapping("orders", "    pods: 3\n"),
       .key = "mappings[0].pods",
       .line = 5,
       .column = 11,
       .message = ""},
  }));
  if (c.message.empty()) {
    auto d = kesm::config::test::diagnosticsOf(c.yaml);
    REQUIRE(d.size() == 1);
    CHECK(d[0].key == c.key);
    CHECK(d[0].line == c.line);
    CHECK(d[0].column == c.column);
  } else {
    checkRule(c);
  }
}
