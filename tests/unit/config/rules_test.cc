// One row per validation rule: the file, and the one diagnostic it must produce, with its exact
// line, column, key path and text.

#include "config/config.h"
#include "kafka/kafka.h"
#include "rule_case.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

using namespace kesm::config;
using namespace kesm::config::test;

namespace {

// A valid mapping in 7 lines; the lines a case appends start at line 8.
std::string withMapping(const std::string& lines) {
  return "mappings:\n"                      // 1
         "  - name: orders\n"               // 2
         "    source:\n"                    // 3
         "      bootstrapServers: k:9092\n" // 4
         "      topics: [orders]\n"         // 5
         "    function:\n"                  // 6
         "      url: http://fn:8080/\n" +   // 7
         lines;
}

// The source section is last; its lines start at line 6.
std::string withSource(const std::string& lines) {
  return "mappings:\n"                  // 1
         "  - name: orders\n"           // 2
         "    function:\n"              // 3
         "      url: http://fn:8080/\n" // 4
         "    source:\n" +              // 5
         lines;
}

// The function section is last; its lines start at line 7.
std::string withFunction(const std::string& lines) {
  return "mappings:\n"                      // 1
         "  - name: orders\n"               // 2
         "    source:\n"                    // 3
         "      bootstrapServers: k:9092\n" // 4
         "      topics: [orders]\n"         // 5
         "    function:\n" +                // 6
         lines;
}

// One valid mapping with the given name, on line 2 at column 11.
std::string named(const std::string& name) {
  return "mappings:\n"
         "  - name: " +
         name +
         "\n"
         "    source: {bootstrapServers: k:9092, topics: [t]}\n"
         "    function: {url: 'http://fn:8080/'}\n";
}

const std::string kServers = "      bootstrapServers: k:9092\n";
const std::string kTopics = "      topics: [orders]\n";

} // namespace

TEST_CASE("rules: the file as a whole", "[unit]") {
  auto c = GENERATE(from_range(std::vector<RuleCase>{
      {.rule = "an empty file",
       .yaml = "",
       .key = "",
       .line = 1,
       .column = 1,
       .message = "the file is empty; a kesm config needs at least a mappings list"},
      {.rule = "only comments",
       .yaml = "# nothing yet\n\n",
       .key = "",
       .line = 1,
       .column = 1,
       .message = "the file is empty; a kesm config needs at least a mappings list"},
      {.rule = "the top level is a list",
       .yaml = "# a list\n- name: orders\n",
       .key = "",
       .line = 2,
       .column = 1,
       .message = "the top level must be a map with the keys server and mappings, got a list"},
      {.rule = "the top level is a scalar",
       .yaml = "hello",
       .key = "",
       .line = 1,
       .column = 1,
       .message = "the top level must be a map with the keys server and mappings, got 'hello'"},
      {.rule = "invalid YAML",
       .yaml = "mappings:\n  - name: \"or\\qders\"\n",
       .key = "",
       .line = 2,
       .column = 16,
       .message = "invalid YAML: unknown escape character: q"},
      {.rule = "two YAML documents",
       .yaml = withMapping("---\nmappings: []\n"),
       .key = "",
       .line = 8,
       .column = 1,
       .message = "the file holds 2 YAML documents; kesm reads exactly one"},
      {.rule = "a NUL byte",
       .yaml = std::string("mappings:\n  - na\0me: x\n", 23),
       .key = "",
       .line = 2,
       .column = 7,
       .message = "the file is not text: it contains a NUL byte; is it a binary file?"},
      {.rule = "bytes that are not UTF-8",
       .yaml = "mappings:\n  - name: caf\xe9\n",
       .key = "",
       .line = 2,
       .column = 14,
       .message = "the file is not UTF-8 text: invalid byte 0xe9; save it as UTF-8"},
      {.rule = "a ',' outside of brackets (yaml-cpp 0.7 would loop on it)",
       .yaml = "- orders\n,\n",
       .key = "",
       .line = 2,
       .column = 1,
       .message = "invalid YAML: unexpected ',' outside of [ ] or { }"},
      {.rule = "a '[' never closed points at the '['",
       .yaml = "mappings:\n  - name: orders\n    source:\n      topics: [orders\n"
               "    function: {}\n",
       .key = "",
       .line = 4,
       .column = 15,
       .message = "invalid YAML: this '[' is never closed; a ']' is missing"},
      {.rule = "a '{' closed with ']'",
       .yaml = "mappings: [{name: orders]\n",
       .key = "",
       .line = 1,
       .column = 25,
       .message = "invalid YAML: unexpected ']': the '{' opened at line 1, column 12 must be "
                  "closed with '}' first"},
      {.rule = "a '{' never closed at the end of the file",
       .yaml = "server: {listen: 0.0.0.0:9464\n",
       .key = "",
       .line = 1,
       .column = 9,
       .message = "invalid YAML: this '{' is never closed; a '}' is missing"},
      {.rule = "a ']' with nothing open",
       .yaml = "mappings: ]\n",
       .key = "",
       .line = 1,
       .column = 11,
       .message = "invalid YAML: unexpected ']': no '[' is open here"},
      {.rule = "a block entry inside an unclosed '['",
       .yaml = "mappings: [\n  - name: orders\n",
       .key = "",
       .line = 2,
       .column = 3,
       .message = "invalid YAML: a '- ' list entry cannot stand inside the '[' opened at line 1, "
                  "column 11; is its ']' missing?"},
      {.rule = "brackets in quotes and comments do not count",
       .yaml = "# a [ comment\nmappings: ['[', \"{\", x # ]\n",
       .key = "",
       .line = 2,
       .column = 11,
       .message = "invalid YAML: this '[' is never closed; a ']' is missing"},
      {.rule = "a quoted string never closed points at its quote (yaml-cpp 0.7 notices only "
               "when no line break follows)",
       .yaml = "mappings:\n  - name: 'orders",
       .key = "",
       .line = 2,
       .column = 11,
       .message = "invalid YAML: this quoted string is never closed; a closing ' is missing"},
      {.rule = "a line that does not fit the map above it",
       .yaml = "server:\n  listen: 0.0.0.0:9464\n - mappings\n",
       .key = "",
       .line = 3,
       .column = 2,
       .message = "invalid YAML: this line does not fit the map above it; check its indentation"},
      {.rule = "a tab in the indentation",
       .yaml = "server:\n\tlisten: 0.0.0.0:9464\n",
       .key = "",
       .line = 2,
       .column = 1,
       .message = "invalid YAML: a tab in the indentation; indent with spaces"},
      {.rule = "a value holding ': ' unquoted",
       .yaml = "server:\n  listen: a: b\n",
       .key = "",
       .line = 2,
       .column = 12,
       .message = "invalid YAML: unexpected ':'; quote a value that holds ': ', like 'a: b'"},
      {.rule = "nesting too deep (yaml-cpp gives no better position)",
       .yaml = "mappings: " + std::string(5000, '['),
       .key = "",
       .line = 1,
       .column = 1,
       .message = "invalid YAML: nested too deeply"},
  }));
  checkRule(c);
}

TEST_CASE("rules: keys", "[unit]") {
  auto c = GENERATE(from_range(std::vector<RuleCase>{
      {.rule = "an unknown top-level key close to a known one",
       .yaml = withMapping("mapings: []\n"),
       .key = "mapings",
       .line = 8,
       .column = 1,
       .message = "unknown key, did you mean 'mappings'?"},
      {.rule = "an unknown key with no near match lists the allowed keys",
       .yaml = withMapping("logging: debug\n"),
       .key = "logging",
       .line = 8,
       .column = 1,
       .message = "unknown key; the keys allowed at the top level are server, leaderElection, "
                  "mappings"},
      {.rule = "an unknown key in server",
       .yaml = "server:\n  port: 9464\n" + withMapping(""),
       .key = "server.port",
       .line = 2,
       .column = 3,
       .message = "unknown key; the keys allowed under server are listen"},
      {.rule = "an unknown key in a mapping",
       .yaml = withMapping("    nmae: x\n"),
       .key = "mappings[0].nmae",
       .line = 8,
       .column = 5,
       .message = "unknown key, did you mean 'name'?"},
      {.rule = "a key of another section",
       .yaml = withMapping("    batchSize: 10\n"),
       .key = "mappings[0].batchSize",
       .line = 8,
       .column = 5,
       .message = "unknown key here: 'batchSize' belongs under a mapping's batching"},
      {.rule = "an unknown key in source, differing in case",
       .yaml = withSource(kServers + kTopics + "      TOPICS: [x]\n"),
       .key = "mappings[0].source.TOPICS",
       .line = 8,
       .column = 7,
       .message = "unknown key, did you mean 'topics'?"},
      {.rule = "an unknown key in function",
       .yaml = withFunction("      url: http://fn:8080/\n      timeuot: 5s\n"),
       .key = "mappings[0].function.timeuot",
       .line = 8,
       .column = 7,
       .message = "unknown key, did you mean 'timeout'?"},
      {.rule = "an unknown key in batching, letters swapped",
       .yaml = withMapping("    batching:\n      bacthSize: 10\n"),
       .key = "mappings[0].batching.bacthSize",
       .line = 9,
       .column = 7,
       .message = "unknown key, did you mean 'batchSize'?"},
      {.rule = "an unknown key in scaling",
       .yaml = withMapping("    scaling:\n      maxPollers: 10\n"),
       .key = "mappings[0].scaling.maxPollers",
       .line = 9,
       .column = 7,
       .message = "unknown key; the keys allowed under a mapping's scaling are minimumPollers, "
                  "maximumPollers, gracePeriod, evaluationInterval, scaleDownStabilization, "
                  "maxConcurrentBatches"},
      {.rule = "a scaling key in retry",
       .yaml = withMapping("    retry:\n      evaluationInterval: 5s\n"),
       .key = "mappings[0].retry.evaluationInterval",
       .line = 9,
       .column = 7,
       .message = "unknown key here: 'evaluationInterval' belongs under a mapping's scaling"},
      {.rule = "an AWS key kesm names differently",
       .yaml = withMapping("    retry:\n      maximumRecordAgeInSeconds: 60\n"),
       .key = "mappings[0].retry.maximumRecordAgeInSeconds",
       .line = 9,
       .column = 7,
       .message = "unknown key: AWS's 'maximumRecordAgeInSeconds' is retry.maximumRecordAge (a "
                  "duration, like 6h) in kesm"},
      {.rule = "a YAML merge key",
       .yaml = withMapping("    retry:\n      <<: {jitter: 0.1}\n"),
       .key = "mappings[0].retry.<<",
       .line = 9,
       .column = 7,
       .message = "YAML merge keys ('<<') are not supported; write the keys out"},
      {.rule = "a key written twice",
       .yaml = withMapping("    batching:\n      batchSize: 10\n      batchSize: 20\n"),
       .key = "mappings[0].batching.batchSize",
       .line = 10,
       .column = 7,
       .message = "appears more than once in the same map (first at line 9)"},
      {.rule = "a key that is not a name",
       .yaml = withMapping("[a, b]: 1\n"),
       .key = "",
       .line = 8,
       .column = 1,
       .message = "a key must be a plain name, got a list as a key"},
  }));
  checkRule(c);
}

TEST_CASE("rules: server and mappings", "[unit]") {
  auto c = GENERATE(from_range(std::vector<RuleCase>{
      {.rule = "server is not a map",
       .yaml = "server: [a]\n" + withMapping(""),
       .key = "server",
       .line = 1,
       .column = 9,
       .message = "must be a map with the key listen, got a list"},
      {.rule = "server.listen without a port",
       .yaml = "server:\n  listen: 9464\n" + withMapping(""),
       .key = "server.listen",
       .line = 2,
       .column = 11,
       .message = "must be host:port with a port from 0 to 65535, like 0.0.0.0:9464, got 9464"},
      {.rule = "server.listen with a port out of range",
       .yaml = "server:\n  listen: 0.0.0.0:65536\n" + withMapping(""),
       .key = "server.listen",
       .line = 2,
       .column = 11,
       .message = "must be host:port with a port from 0 to 65535, like 0.0.0.0:9464, got "
                  "'0.0.0.0:65536'"},
      {.rule = "mappings missing",
       .yaml = "# no mappings\nserver:\n  listen: 0.0.0.0:9464\n",
       .key = "mappings",
       .line = 2,
       .column = 1,
       .message = "required key is missing; add a list of at least one mapping"},
      {.rule = "mappings empty",
       .yaml = "mappings: []\n",
       .key = "mappings",
       .line = 1,
       .column = 11,
       .message = "must list at least one mapping, got an empty list"},
      {.rule = "mappings not a list",
       .yaml = "mappings:\n  name: orders\n",
       .key = "mappings",
       .line = 2,
       .column = 3,
       .message = "must be a list of mappings, got a map"},
      {.rule = "a mapping that is not a map",
       .yaml = "mappings:\n  - orders\n",
       .key = "mappings[0]",
       .line = 2,
       .column = 5,
       .message = "must be a map with name, source and function, got 'orders'"},
      {.rule = "name missing",
       .yaml = "mappings:\n  - source: {bootstrapServers: k:9092, topics: [t]}\n"
               "    function: {url: 'http://fn:8080/'}\n",
       .key = "mappings[0].name",
       .line = 2,
       .column = 5,
       .message = "required key is missing; give the mapping a unique name, like orders"},
      {.rule = "name with a space",
       .yaml = named("my orders"),
       .key = "mappings[0].name",
       .line = 2,
       .column = 11,
       .message = "must be a name of 1 to 64 letters, digits, '.', '_' or '-', got 'my orders'"},
      {.rule = "name longer than 64 characters",
       .yaml = named(std::string(65, 'a')),
       .key = "mappings[0].name",
       .line = 2,
       .column = 11,
       .message = "must be a name of 1 to 64 letters, digits, '.', '_' or '-', got '" +
                  std::string(60, 'a') + "...'"},
      {.rule = "name used twice",
       .yaml = withMapping("  - name: orders\n"
                           "    source: {bootstrapServers: k:9092, topics: [t]}\n"
                           "    function: {url: 'http://fn:8080/'}\n"),
       .key = "mappings[1].name",
       .line = 8,
       .column = 11,
       .message = "mapping name 'orders' is already used by mappings[0]"},
      {.rule = "consumer group used twice",
       .yaml = withMapping("  - name: payments\n"
                           "    source:\n"
                           "      consumerGroupId: kesm-orders\n"
                           "      bootstrapServers: k:9092\n"
                           "      topics: [payments]\n"
                           "    function: {url: 'http://fn:8080/'}\n"),
       .key = "mappings[1].source.consumerGroupId",
       .line = 10,
       .column = 24,
       .message = "consumer group 'kesm-orders' is already used by mappings[0]; each mapping "
                  "needs its own consumer group"},
      {.rule = "source missing",
       .yaml = "mappings:\n  - name: orders\n    function: {url: 'http://fn:8080/'}\n",
       .key = "mappings[0].source",
       .line = 2,
       .column = 5,
       .message = "required key is missing; say what to read, with bootstrapServers and topics"},
      {.rule = "source not a map",
       .yaml = "mappings:\n  - name: orders\n    function: {url: 'http://fn:8080/'}\n"
               "    source: k:9092\n",
       .key = "mappings[0].source",
       .line = 4,
       .column = 13,
       .message = "must be a map with bootstrapServers and topics, got 'k:9092'"},
      {.rule = "function missing",
       .yaml = "mappings:\n  - name: orders\n    source: {bootstrapServers: k:9092, topics: [t]}\n",
       .key = "mappings[0].function",
       .line = 2,
       .column = 5,
       .message = "required key is missing; say which function to invoke, with url"},
      {.rule = "function not a map",
       .yaml = "mappings:\n  - name: orders\n    function: 'http://fn:8080/'\n"
               "    source: {bootstrapServers: k:9092, topics: [t]}\n",
       .key = "mappings[0].function",
       .line = 3,
       .column = 15,
       .message = "must be a map with url and optionally timeout, got 'http://fn:8080/'"},
  }));
  checkRule(c);
}

TEST_CASE("rules: source", "[unit]") {
  auto c = GENERATE(from_range(std::vector<RuleCase>{
      {.rule = "bootstrapServers missing",
       .yaml = withSource(kTopics),
       .key = "mappings[0].source.bootstrapServers",
       .line = 6,
       .column = 7,
       .message = "required key is missing; list the Kafka brokers, like kafka-0:9092"},
      {.rule = "bootstrapServers: an entry without a port",
       .yaml = withSource("      bootstrapServers: kafka-0:9092,kafka-1\n" + kTopics),
       .key = "mappings[0].source.bootstrapServers",
       .line = 6,
       .column = 25,
       .message = "each server must be host:port with a port from 1 to 65535, got 'kafka-1'"},
      {.rule = "bootstrapServers: an empty entry",
       .yaml = withSource("      bootstrapServers: kafka-0:9092,\n" + kTopics),
       .key = "mappings[0].source.bootstrapServers",
       .line = 6,
       .column = 25,
       .message = "each server must be host:port with a port from 1 to 65535, got an empty entry"},
      {.rule = "bootstrapServers: a list entry with port 0",
       .yaml = withSource("      bootstrapServers: [kafka-0:9092, kafka-1:0]\n" + kTopics),
       .key = "mappings[0].source.bootstrapServers[1]",
       .line = 6,
       .column = 40,
       .message = "must be host:port with a port from 1 to 65535, got 'kafka-1:0'"},
      {.rule = "bootstrapServers: a port above 65535",
       .yaml = withSource("      bootstrapServers:\n        - kafka-0:70000\n" + kTopics),
       .key = "mappings[0].source.bootstrapServers[0]",
       .line = 7,
       .column = 11,
       .message = "must be host:port with a port from 1 to 65535, got 'kafka-0:70000'"},
      {.rule = "bootstrapServers: an empty list",
       .yaml = withSource("      bootstrapServers: []\n" + kTopics),
       .key = "mappings[0].source.bootstrapServers",
       .line = 6,
       .column = 25,
       .message = "must list at least one host:port, got an empty list"},
      {.rule = "bootstrapServers: a map",
       .yaml = withSource("      bootstrapServers: {kafka-0: 9092}\n" + kTopics),
       .key = "mappings[0].source.bootstrapServers",
       .line = 6,
       .column = 25,
       .message =
           "must be a list of host:port (or one string of them separated by commas), got a map"},
      {.rule = "topics missing",
       .yaml = withSource(kServers),
       .key = "mappings[0].source.topics",
       .line = 6,
       .column = 7,
       .message = "required key is missing; list the topics to read, like [orders]"},
      {.rule = "topics: an empty list",
       .yaml = withSource(kServers + "      topics: []\n"),
       .key = "mappings[0].source.topics",
       .line = 7,
       .column = 15,
       .message = "must list at least one topic, got an empty list"},
      {.rule = "topics: a duplicate",
       .yaml = withSource(kServers + "      topics: [orders, orders]\n"),
       .key = "mappings[0].source.topics[1]",
       .line = 7,
       .column = 24,
       .message = "topic 'orders' is listed twice (also at mappings[0].source.topics[0])"},
      {.rule = "topics: an empty name",
       .yaml = withSource(kServers + "      topics: [\"\"]\n"),
       .key = "mappings[0].source.topics[0]",
       .line = 7,
       .column = 16,
       .message = "must be a Kafka topic name: 1 to 249 letters, digits, '.', '_' or '-', got an "
                  "empty string"},
      {.rule = "topics: a single string with a comma",
       .yaml = withSource(kServers + "      topics: a,b\n"),
       .key = "mappings[0].source.topics",
       .line = 7,
       .column = 15,
       .message = "must be a Kafka topic name: 1 to 249 letters, digits, '.', '_' or '-', got "
                  "'a,b'; list several topics as a YAML list, like [a, b]"},
      {.rule = "topics: a list inside the list",
       .yaml = withSource(kServers + "      topics: [[orders]]\n"),
       .key = "mappings[0].source.topics[0]",
       .line = 7,
       .column = 16,
       .message = "must be a Kafka topic name, got a list"},
      {.rule = "topics: a map",
       .yaml = withSource(kServers + "      topics: {orders: 1}\n"),
       .key = "mappings[0].source.topics",
       .line = 7,
       .column = 15,
       .message = "must be a list of topic names, got a map"},
      {.rule = "consumerGroupId empty",
       .yaml = withSource(kServers + kTopics + "      consumerGroupId: ''\n"),
       .key = "mappings[0].source.consumerGroupId",
       .line = 8,
       .column = 24,
       .message = "must be a non-empty consumer group id; leave the key out for kesm-<name>"},
      {.rule = "startingPosition unknown",
       .yaml = withSource(kServers + kTopics + "      startingPosition: EARLIEST\n"),
       .key = "mappings[0].source.startingPosition",
       .line = 8,
       .column = 25,
       .message = "must be TRIM_HORIZON, LATEST or AT_TIMESTAMP, got 'EARLIEST'"},
      {.rule = "startingPosition in lower case",
       .yaml = withSource(kServers + kTopics + "      startingPosition: latest\n"),
       .key = "mappings[0].source.startingPosition",
       .line = 8,
       .column = 25,
       .message = "must be TRIM_HORIZON, LATEST or AT_TIMESTAMP, got 'latest' (the values are "
                  "upper case)"},
      {.rule = "startingPosition AT_TIMESTAMP without its timestamp",
       .yaml = withSource(kServers + kTopics + "      startingPosition: AT_TIMESTAMP\n"),
       .key = "mappings[0].source.startingPositionTimestamp",
       .line = 8,
       .column = 25,
       .message = "AT_TIMESTAMP needs startingPositionTimestamp, like 2026-11-20T10:00:00Z"},
      {.rule = "partitionAssignor unknown",
       .yaml = withSource(kServers + kTopics + "      partitionAssignor: sticky\n"),
       .key = "mappings[0].source.partitionAssignor",
       .line = 8,
       .column = 26,
       .message = "must be range, roundrobin or cooperative-sticky, got 'sticky'"},
      {.rule = "librdkafka not a map",
       .yaml = withSource(kServers + kTopics + "      librdkafka: fetch.max.bytes=1\n"),
       .key = "mappings[0].source.librdkafka",
       .line = 8,
       .column = 19,
       .message = "must be a map of librdkafka settings, like {fetch.max.bytes: 1048576}, got "
                  "'fetch.max.bytes=1'"},
      {.rule = "librdkafka value that is a list",
       .yaml = withSource(kServers + kTopics + "      librdkafka:\n        fetch.max.bytes: [1]\n"),
       .key = "mappings[0].source.librdkafka.fetch.max.bytes",
       .line = 9,
       .column = 26,
       .message = "must be a string, number or boolean, got a list"},
      {.rule = "librdkafka value left empty",
       .yaml = withSource(kServers + kTopics + "      librdkafka:\n        client.rack:\n"),
       .key = "mappings[0].source.librdkafka.client.rack",
       .line = 9,
       .column = 9,
       .message = "must be a string, number or boolean, got an empty value"},
      {.rule = "librdkafka setting that would break at-least-once",
       .yaml =
           withSource(kServers + kTopics + "      librdkafka:\n        enable.auto.commit: true\n"),
       .key = "mappings[0].source.librdkafka.enable.auto.commit",
       .line = 9,
       .column = 9,
       .message = "cannot be changed: kesm commits offsets itself, only after the function "
                  "succeeded"},
      {.rule = "librdkafka setting that has its own key",
       .yaml = withSource(kServers + kTopics + "      librdkafka: {group.id: mine}\n"),
       .key = "mappings[0].source.librdkafka.group.id",
       .line = 8,
       .column = 20,
       .message = "is set by kesm from source.consumerGroupId; set it there"},
      {.rule = "group.instance.id: static membership is per poller",
       .yaml = withSource(kServers + kTopics + "      librdkafka: {group.instance.id: pod}\n"),
       .key = "mappings[0].source.librdkafka.group.instance.id",
       .line = 8,
       .column = 20,
       .message = "is set per poller by `kesm poller --membership static` (pods mode); one id "
                  "shared by several consumers fences all but one"},
      {.rule = "librdkafka setting librdkafka does not know",
       .yaml = withSource(kServers + kTopics + "      librdkafka:\n        fetch.max.byte: 5\n"),
       .key = "mappings[0].source.librdkafka.fetch.max.byte",
       .line = 9,
       .column = 9,
       .message = "librdkafka refuses it: No such configuration property: \"fetch.max.byte\""},
      {.rule = "librdkafka value librdkafka refuses",
       .yaml =
           withSource(kServers + kTopics + "      librdkafka:\n        fetch.max.bytes: lots\n"),
       .key = "mappings[0].source.librdkafka.fetch.max.bytes",
       .line = 9,
       .column = 26,
       .message = "librdkafka refuses it: Invalid value for configuration property "
                  "\"fetch.max.bytes\", got 'lots'"},
  }));
  checkRule(c);
}

TEST_CASE("rules: function", "[unit]") {
  const std::string url_shape =
      "must be an http:// or https:// URL like https://host:8443/path, got ";
  auto c = GENERATE_COPY(from_range(std::vector<RuleCase>{
      {.rule = "url missing",
       .yaml = withFunction("      timeout: 5s\n"),
       .key = "mappings[0].function.url",
       .line = 7,
       .column = 7,
       .message = "required key is missing; give the function's URL, like "
                  "http://my-fn:8080/invoke"},
      {.rule = "url with https and no host",
       .yaml = withFunction("      url: https://:8443/invoke\n"),
       .key = "mappings[0].function.url",
       .line = 7,
       .column = 12,
       .message = url_shape + "'https://:8443/invoke'"},
      {.rule = "url with credentials: refused, the password not shown",
       .yaml = withFunction("      url: http://admin:s3cret@fn:8080/invoke\n"),
       .key = "mappings[0].function.url",
       .line = 7,
       .column = 12,
       .message = "must not hold credentials (user:password@ before the host): kesm sends no "
                  "credentials to the function; got 'http://***@fn:8080/invoke'"},
      {.rule = "url with credentials and https: the password not shown either",
       .yaml = withFunction("      url: https://admin:s3cret@fn/invoke?x=@\n"),
       .key = "mappings[0].function.url",
       .line = 7,
       .column = 12,
       .message = "must not hold credentials (user:password@ before the host): kesm sends no "
                  "credentials to the function; got 'https://***@fn/invoke?x=@'"},
      {.rule = "url with another scheme",
       .yaml = withFunction("      url: ftp://fn/invoke\n"),
       .key = "mappings[0].function.url",
       .line = 7,
       .column = 12,
       .message = url_shape + "'ftp://fn/invoke'"},
      {.rule = "url without a host",
       .yaml = withFunction("      url: http:///invoke\n"),
       .key = "mappings[0].function.url",
       .line = 7,
       .column = 12,
       .message = url_shape + "'http:///invoke'"},
      {.rule = "url with port 0",
       .yaml = withFunction("      url: http://fn:0/invoke\n"),
       .key = "mappings[0].function.url",
       .line = 7,
       .column = 12,
       .message = url_shape + "'http://fn:0/invoke'"},
      {.rule = "url with a space in the path",
       .yaml = withFunction("      url: http://fn:8080/my function\n"),
       .key = "mappings[0].function.url",
       .line = 7,
       .column = 12,
       .message = url_shape + "'http://fn:8080/my function'"},
      {.rule = "url that is a list",
       .yaml = withFunction("      url: [http://fn:8080/]\n"),
       .key = "mappings[0].function.url",
       .line = 7,
       .column = 12,
       .message = "must be an http:// or https:// URL like https://host:8443/path, got a list"},
      {.rule = "timeout 0",
       .yaml = withFunction("      url: http://fn:8080/\n      timeout: 0\n"),
       .key = "mappings[0].function.timeout",
       .line = 8,
       .column = 16,
       .message = "must be a duration from 1ms to 15m, got 0"},
      {.rule = "timeout above Lambda's 15 minutes",
       .yaml = withFunction("      url: http://fn:8080/\n      timeout: 901s\n"),
       .key = "mappings[0].function.timeout",
       .line = 8,
       .column = 16,
       .message = "must be a duration from 1ms to 15m, got 901s"},
      {.rule = "timeout without a unit",
       .yaml = withFunction("      url: http://fn:8080/\n      timeout: 30\n"),
       .key = "mappings[0].function.timeout",
       .line = 8,
       .column = 16,
       .message = "a duration needs a unit: ms, s, m or h (for example 30s), got 30"},
  }));
  checkRule(c);
}

TEST_CASE("rules: batching", "[unit]") {
  const std::string batch_size = "must be an integer from 1 to 10000, got ";
  auto c = GENERATE_COPY(from_range(std::vector<RuleCase>{
      {.rule = "batching not a map",
       .yaml = withMapping("    batching: 100\n"),
       .key = "mappings[0].batching",
       .line = 8,
       .column = 15,
       .message = "must be a map with batchSize and maximumBatchingWindow, got 100"},
      {.rule = "batchSize above 10000",
       .yaml = withMapping("    batching:\n      batchSize: 20000\n"),
       .key = "mappings[0].batching.batchSize",
       .line = 9,
       .column = 18,
       .message = batch_size + "20000"},
      {.rule = "batchSize 0",
       .yaml = withMapping("    batching:\n      batchSize: 0\n"),
       .key = "mappings[0].batching.batchSize",
       .line = 9,
       .column = 18,
       .message = batch_size + "0"},
      {.rule = "batchSize a decimal",
       .yaml = withMapping("    batching:\n      batchSize: 1.5\n"),
       .key = "mappings[0].batching.batchSize",
       .line = 9,
       .column = 18,
       .message = batch_size + "1.5"},
      {.rule = "batchSize a word",
       .yaml = withMapping("    batching:\n      batchSize: \"abc\"\n"),
       .key = "mappings[0].batching.batchSize",
       .line = 9,
       .column = 18,
       .message = batch_size + "'abc'"},
      {.rule = "batchSize a boolean",
       .yaml = withMapping("    batching:\n      batchSize: true\n"),
       .key = "mappings[0].batching.batchSize",
       .line = 9,
       .column = 18,
       .message = batch_size + "'true'"},
      {.rule = "batchSize too large for any integer",
       .yaml = withMapping("    batching:\n      batchSize: 99999999999999999999\n"),
       .key = "mappings[0].batching.batchSize",
       .line = 9,
       .column = 18,
       .message = batch_size + "99999999999999999999"},
      {.rule = "batchSize left empty",
       .yaml = withMapping("    batching:\n      batchSize:\n"),
       .key = "mappings[0].batching.batchSize",
       .line = 9,
       .column = 7,
       .message = batch_size + "an empty value"},
      {.rule = "maximumBatchingWindow above 300s",
       .yaml = withMapping("    batching:\n      maximumBatchingWindow: 301s\n"),
       .key = "mappings[0].batching.maximumBatchingWindow",
       .line = 9,
       .column = 30,
       .message = "must be a duration from 0 to 300s, got 301s"},
      {.rule = "maximumBatchingWindow without a unit",
       .yaml = withMapping("    batching:\n      maximumBatchingWindow: 500\n"),
       .key = "mappings[0].batching.maximumBatchingWindow",
       .line = 9,
       .column = 30,
       .message = "a duration needs a unit: ms, s, m or h (for example 30s), got 500"},
      {.rule = "maximumBatchingWindow not a duration",
       .yaml = withMapping("    batching:\n      maximumBatchingWindow: soon\n"),
       .key = "mappings[0].batching.maximumBatchingWindow",
       .line = 9,
       .column = 30,
       .message = "must be a duration from 0 to 300s, written like 500ms, 30s, 2m or 1h, got "
                  "'soon'"},
  }));
  checkRule(c);
}

TEST_CASE("rules: scaling", "[unit]") {
  auto c = GENERATE(from_range(std::vector<RuleCase>{
      {.rule = "minimumPollers 0",
       .yaml = withMapping("    scaling:\n      minimumPollers: 0\n"),
       .key = "mappings[0].scaling.minimumPollers",
       .line = 9,
       .column = 23,
       .message = "must be an integer from 1 to 200, got 0"},
      {.rule = "minimumPollers above 200",
       .yaml = withMapping("    scaling:\n      minimumPollers: 201\n"),
       .key = "mappings[0].scaling.minimumPollers",
       .line = 9,
       .column = 23,
       .message = "must be an integer from 1 to 200, got 201"},
      {.rule = "maxConcurrentBatches 0",
       .yaml = withMapping("    scaling:\n      maxConcurrentBatches: 0\n"),
       .key = "mappings[0].scaling.maxConcurrentBatches",
       .line = 9,
       .column = 29,
       .message = "must be an integer from 1 to 100, got 0"},
      {.rule = "maxConcurrentBatches above 100",
       .yaml = withMapping("    scaling:\n      maxConcurrentBatches: 101\n"),
       .key = "mappings[0].scaling.maxConcurrentBatches",
       .line = 9,
       .column = 29,
       .message = "must be an integer from 1 to 100, got 101"},
      {.rule = "maximumPollers above 2000",
       .yaml = withMapping("    scaling:\n      maximumPollers: 2001\n"),
       .key = "mappings[0].scaling.maximumPollers",
       .line = 9,
       .column = 23,
       .message = "must be an integer from 1 to 2000, got 2001"},
      {.rule = "maximumPollers below minimumPollers",
       .yaml = withMapping("    scaling:\n      minimumPollers: 10\n      maximumPollers: 5\n"),
       .key = "mappings[0].scaling.maximumPollers",
       .line = 10,
       .column = 23,
       .message = "must be at least minimumPollers (10), got 5"},
      {.rule = "gracePeriod above 10m",
       .yaml = withMapping("    scaling:\n      gracePeriod: 11m\n"),
       .key = "mappings[0].scaling.gracePeriod",
       .line = 9,
       .column = 20,
       .message = "must be a duration from 0 to 10m, got 11m"},
      {.rule = "gracePeriod a map",
       .yaml = withMapping("    scaling:\n      gracePeriod: {s: 5}\n"),
       .key = "mappings[0].scaling.gracePeriod",
       .line = 9,
       .column = 20,
       .message = "must be a duration from 0 to 10m, got a map"},
      {.rule = "evaluationInterval below 1s",
       .yaml = withMapping("    scaling:\n      evaluationInterval: 999ms\n"),
       .key = "mappings[0].scaling.evaluationInterval",
       .line = 9,
       .column = 27,
       .message = "must be a duration from 1s to 5m, got 999ms"},
      {.rule = "evaluationInterval 0",
       .yaml = withMapping("    scaling:\n      evaluationInterval: 0\n"),
       .key = "mappings[0].scaling.evaluationInterval",
       .line = 9,
       .column = 27,
       .message = "must be a duration from 1s to 5m, got 0"},
      {.rule = "evaluationInterval above 5m",
       .yaml = withMapping("    scaling:\n      evaluationInterval: 5m1ms\n"),
       .key = "mappings[0].scaling.evaluationInterval",
       .line = 9,
       .column = 27,
       .message = "must be a duration from 1s to 5m, got 5m1ms"},
      {.rule = "evaluationInterval without a unit",
       .yaml = withMapping("    scaling:\n      evaluationInterval: 5\n"),
       .key = "mappings[0].scaling.evaluationInterval",
       .line = 9,
       .column = 27,
       .message = "a duration needs a unit: ms, s, m or h (for example 30s), got 5"},
      {.rule = "evaluationInterval not a duration",
       .yaml = withMapping("    scaling:\n      evaluationInterval: often\n"),
       .key = "mappings[0].scaling.evaluationInterval",
       .line = 9,
       .column = 27,
       .message = "must be a duration from 1s to 5m, written like 500ms, 30s, 2m or 1h, got "
                  "'often'"},
      {.rule = "scaleDownStabilization negative (no duration is below 0)",
       .yaml = withMapping("    scaling:\n      scaleDownStabilization: -1s\n"),
       .key = "mappings[0].scaling.scaleDownStabilization",
       .line = 9,
       .column = 31,
       .message = "must be a duration from 0 to 1h; a duration is never negative, got '-1s'"},
      {.rule = "a duration with a unit kesm does not know",
       .yaml = withMapping("    scaling:\n      scaleDownStabilization: 1d\n"),
       .key = "mappings[0].scaling.scaleDownStabilization",
       .line = 9,
       .column = 31,
       .message = "must be a duration from 0 to 1h; 'd' is not a unit, use ms, s, m or h, got "
                  "'1d'"},
      {.rule = "scaleDownStabilization above 1h",
       .yaml = withMapping("    scaling:\n      scaleDownStabilization: 1h1ms\n"),
       .key = "mappings[0].scaling.scaleDownStabilization",
       .line = 9,
       .column = 31,
       .message = "must be a duration from 0 to 1h, got 1h1ms"},
      {.rule = "scaleDownStabilization without a unit",
       .yaml = withMapping("    scaling:\n      scaleDownStabilization: 60\n"),
       .key = "mappings[0].scaling.scaleDownStabilization",
       .line = 9,
       .column = 31,
       .message = "a duration needs a unit: ms, s, m or h (for example 30s), got 60"},
      {.rule = "scaleDownStabilization not a duration",
       .yaml = withMapping("    scaling:\n      scaleDownStabilization: 1 minute\n"),
       .key = "mappings[0].scaling.scaleDownStabilization",
       .line = 9,
       .column = 31,
       .message = "must be a duration from 0 to 1h, written like 500ms, 30s, 2m or 1h, got "
                  "'1 minute'"},
  }));
  checkRule(c);
}

TEST_CASE("rules: retry", "[unit]") {
  auto c = GENERATE(from_range(std::vector<RuleCase>{
      {.rule = "retry not a map",
       .yaml = withMapping("    retry: forever\n"),
       .key = "mappings[0].retry",
       .line = 8,
       .column = 12,
       .message = "must be a map with initialBackoff, maximumBackoff, backoffMultiplier and "
                  "jitter, got 'forever'"},
      {.rule = "initialBackoff 0",
       .yaml = withMapping("    retry:\n      initialBackoff: 0\n"),
       .key = "mappings[0].retry.initialBackoff",
       .line = 9,
       .column = 23,
       .message = "must be a duration from 1ms to 15m, got 0"},
      {.rule = "maximumBackoff above 15m",
       .yaml = withMapping("    retry:\n      maximumBackoff: 16m\n"),
       .key = "mappings[0].retry.maximumBackoff",
       .line = 9,
       .column = 23,
       .message = "must be a duration from 1ms to 15m, got 16m"},
      {.rule = "initialBackoff longer than maximumBackoff",
       .yaml = withMapping("    retry:\n      initialBackoff: 1m\n      maximumBackoff: 30s\n"),
       .key = "mappings[0].retry.initialBackoff",
       .line = 9,
       .column = 23,
       .message = "must not be longer than maximumBackoff (30s), got 1m"},
      {.rule = "initialBackoff longer than the default maximumBackoff",
       .yaml = withMapping("    retry:\n      initialBackoff: 1m\n"),
       .key = "mappings[0].retry.initialBackoff",
       .line = 9,
       .column = 23,
       .message = "must not be longer than maximumBackoff (30s, the default), got 1m"},
      {.rule = "maximumBackoff shorter than the default initialBackoff",
       .yaml = withMapping("    retry:\n      maximumBackoff: 50ms\n"),
       .key = "mappings[0].retry.maximumBackoff",
       .line = 9,
       .column = 23,
       .message = "must not be shorter than initialBackoff (100ms, the default), got 50ms"},
      {.rule = "backoffMultiplier below 1",
       .yaml = withMapping("    retry:\n      backoffMultiplier: 0.5\n"),
       .key = "mappings[0].retry.backoffMultiplier",
       .line = 9,
       .column = 26,
       .message = "must be a number from 1 to 10, got 0.5"},
      {.rule = "backoffMultiplier a word",
       .yaml = withMapping("    retry:\n      backoffMultiplier: double\n"),
       .key = "mappings[0].retry.backoffMultiplier",
       .line = 9,
       .column = 26,
       .message = "must be a number from 1 to 10, got 'double'"},
      {.rule = "jitter above 1",
       .yaml = withMapping("    retry:\n      jitter: 1.5\n"),
       .key = "mappings[0].retry.jitter",
       .line = 9,
       .column = 15,
       .message = "must be a number from 0 to 1, got 1.5"},
      {.rule = "jitter not a number",
       .yaml = withMapping("    retry:\n      jitter: .nan\n"),
       .key = "mappings[0].retry.jitter",
       .line = 9,
       .column = 15,
       .message = "must be a number from 0 to 1, got '.nan'"},
  }));
  checkRule(c);
}

TEST_CASE("rules: error handling, starting positions and security (issue 6)", "[unit]") {
  auto c = GENERATE(from_range(std::vector<RuleCase>{
      {.rule = "maximumRetryAttempts above 10000",
       .yaml = withMapping("    retry:\n      maximumRetryAttempts: 10001\n"),
       .key = "mappings[0].retry.maximumRetryAttempts",
       .line = 9,
       .column = 29,
       .message = "must be an integer from -1 to 10000, got 10001"},
      {.rule = "maximumRetryAttempts below -1",
       .yaml = withMapping("    retry:\n      maximumRetryAttempts: -2\n"),
       .key = "mappings[0].retry.maximumRetryAttempts",
       .line = 9,
       .column = 29,
       .message = "must be an integer from -1 to 10000, got -2"},
      {.rule = "maximumRecordAge below a minute",
       .yaml = withMapping("    retry:\n      maximumRecordAge: 30s\n"),
       .key = "mappings[0].retry.maximumRecordAge",
       .line = 9,
       .column = 25,
       .message = "must be a duration from 60s to 168h (7 days), or -1 for unbounded, got 30s"},
      {.rule = "maximumRecordAge above 7 days",
       .yaml = withMapping("    retry:\n      maximumRecordAge: 169h\n"),
       .key = "mappings[0].retry.maximumRecordAge",
       .line = 9,
       .column = 25,
       .message = "must be a duration from 60s to 168h (7 days), or -1 for unbounded, got 169h"},
      {.rule = "bisectBatchOnFunctionError not a boolean",
       .yaml = withMapping("    retry:\n      bisectBatchOnFunctionError: yes\n"),
       .key = "mappings[0].retry.bisectBatchOnFunctionError",
       .line = 9,
       .column = 35,
       .message = "must be true or false, got 'yes'"},
      {.rule = "onFailure destination without the kafka scheme",
       .yaml = withMapping("    onFailure:\n      destination: orders-dlq\n"),
       .key = "mappings[0].onFailure.destination",
       .line = 9,
       .column = 20,
       .message = "must be kafka://TOPIC, a topic on the mapping's own cluster, got 'orders-dlq'"},
      {.rule = "onFailure destination an AWS ARN",
       .yaml = withMapping("    onFailure:\n      destination: arn:aws:sqs:eu-west-1:1:q\n"),
       .key = "mappings[0].onFailure.destination",
       .line = 9,
       .column = 20,
       .message = "must be kafka://TOPIC, a topic on the mapping's own cluster, got "
                  "'arn:aws:sqs:eu-west-1:1:q' (AWS destinations are not reachable from kesm)"},
      {.rule = "onFailure destination is the source topic",
       .yaml = withMapping("    onFailure:\n      destination: kafka://orders\n"),
       .key = "mappings[0].onFailure.destination",
       .line = 9,
       .column = 20,
       .message = "must not be a source topic of this mapping ('orders'): failed records would "
                  "be read again and fail again"},
      {.rule = "onFailure destination with a bad topic name",
       .yaml = withMapping("    onFailure:\n      destination: kafka://a b\n"),
       .key = "mappings[0].onFailure.destination",
       .line = 9,
       .column = 20,
       .message = "the topic must be a Kafka topic name: 1 to 249 letters, digits, '.', '_' or "
                  "'-', got 'a b'"},
      {.rule = "onFailure without destination",
       .yaml = withMapping("    onFailure: {}\n"),
       .key = "mappings[0].onFailure.destination",
       .line = 8,
       .column = 16,
       .message = "required key is missing; name a topic, like kafka://orders-failed"},
      {.rule = "startingPositionTimestamp without AT_TIMESTAMP",
       .yaml = withSource(kServers + kTopics + "      startingPositionTimestamp: 1700000000\n"),
       .key = "mappings[0].source.startingPositionTimestamp",
       .line = 8,
       .column = 7,
       .message = "applies only with startingPosition: AT_TIMESTAMP"},
      {.rule = "startingPositionTimestamp without a zone",
       .yaml = withSource(kServers + kTopics +
                          "      startingPosition: AT_TIMESTAMP\n"
                          "      startingPositionTimestamp: 2026-11-20T10:00:00\n"),
       .key = "mappings[0].source.startingPositionTimestamp",
       .line = 9,
       .column = 34,
       .message = "must be a time like 2026-11-20T10:00:00Z (RFC 3339, with a zone) or epoch "
                  "seconds, got '2026-11-20T10:00:00'"},
      {.rule = "a literal password",
       .yaml = withSource(kServers + kTopics +
                          "      security:\n"
                          "        sasl:\n"
                          "          mechanism: SCRAM-SHA-512\n"
                          "          username: kesm\n"
                          "          passwordFile: /run/secrets/kafka\n"
                          "          password: hunter2\n"),
       .key = "mappings[0].source.security.sasl.password",
       .line = 13,
       .column = 11,
       .message = "a secret is never written in the config file; use passwordFile (a file "
                  "holding it) or passwordEnv (an environment variable)"},
      {.rule = "sasl without a password",
       .yaml = withSource(kServers + kTopics +
                          "      security:\n"
                          "        sasl:\n"
                          "          mechanism: PLAIN\n"
                          "          username: kesm\n"),
       .key = "mappings[0].source.security.sasl.passwordFile",
       .line = 10,
       .column = 11,
       .message = "required key is missing; give the password with passwordFile or passwordEnv"},
      {.rule = "password from a file and from the environment",
       .yaml = withSource(kServers + kTopics +
                          "      security:\n"
                          "        sasl:\n"
                          "          mechanism: PLAIN\n"
                          "          username: kesm\n"
                          "          passwordFile: /run/secrets/kafka\n"
                          "          passwordEnv: KAFKA_PASSWORD\n"),
       .key = "mappings[0].source.security.sasl.passwordEnv",
       .line = 13,
       .column = 11,
       .message = "give the password once: passwordFile or passwordEnv, not several"},
      {.rule = "an unknown SASL mechanism",
       .yaml = withSource(kServers + kTopics +
                          "      security:\n"
                          "        sasl:\n"
                          "          mechanism: GSSAPI\n"
                          "          username: kesm\n"
                          "          passwordEnv: KAFKA_PASSWORD\n"),
       .key = "mappings[0].source.security.sasl.mechanism",
       .line = 10,
       .column = 22,
       .message = "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got 'GSSAPI' (GSSAPI is not "
                  "supported yet)"},
      {.rule = "an environment variable name that is not one",
       .yaml = withSource(kServers + kTopics +
                          "      security:\n"
                          "        sasl:\n"
                          "          mechanism: PLAIN\n"
                          "          username: kesm\n"
                          "          passwordEnv: 1PASSWORD\n"),
       .key = "mappings[0].source.security.sasl.passwordEnv",
       .line = 12,
       .column = 24,
       .message = "must be an environment variable name (letters, digits and '_', not starting "
                  "with a digit), got '1PASSWORD'"},
      {.rule = "a client certificate without its key",
       .yaml = withSource(kServers + kTopics +
                          "      security:\n"
                          "        tls:\n"
                          "          certificateFile: /etc/kesm/client.pem\n"),
       .key = "mappings[0].source.security.tls.certificateFile",
       .line = 10,
       .column = 11,
       .message = "a client certificate needs both certificateFile and keyFile (mutual TLS), or "
                  "neither"},
      {.rule = "protocol SASL_SSL without sasl",
       .yaml = withSource(kServers + kTopics +
                          "      security:\n"
                          "        protocol: SASL_SSL\n"),
       .key = "mappings[0].source.security.protocol",
       .line = 9,
       .column = 19,
       .message = "SASL_SSL needs a sasl section with the credentials"},
      {.rule = "protocol SSL with sasl",
       .yaml = withSource(kServers + kTopics +
                          "      security:\n"
                          "        protocol: SSL\n"
                          "        sasl:\n"
                          "          mechanism: PLAIN\n"
                          "          username: kesm\n"
                          "          passwordEnv: P\n"),
       .key = "mappings[0].source.security.sasl",
       .line = 10,
       .column = 9,
       .message = "protocol SSL does not use SASL; use SASL_PLAINTEXT or SASL_SSL"},
      {.rule = "a security setting in the librdkafka map",
       .yaml = withSource(kServers + kTopics + "      librdkafka:\n        sasl.password: x\n"),
       .key = "mappings[0].source.librdkafka.sasl.password",
       .line = 9,
       .column = 9,
       .message = "is set by kesm from source.security (a secret read from a file or an "
                  "environment variable, never written in this file); set it there"},
      {.rule = "security.protocol in the librdkafka map",
       .yaml = withSource(kServers + kTopics +
                          "      librdkafka:\n        security.protocol: SASL_SSL\n"),
       .key = "mappings[0].source.librdkafka.security.protocol",
       .line = 9,
       .column = 9,
       .message = "is set by kesm from source.security; set it there"},
  }));
  checkRule(c);
}

TEST_CASE("error handling keys are read as written", "[unit]") {
  auto config = parseConfig(withMapping("    retry:\n"
                                        "      maximumRetryAttempts: 3\n"
                                        "      maximumRecordAge: 6h\n"
                                        "      bisectBatchOnFunctionError: true\n"
                                        "    onFailure:\n"
                                        "      destination: kafka://orders-failed\n"),
                            "kesm.yaml", kesm::kafka::checkSetting);
  const auto& m = config.mappings.at(0);
  CHECK(m.retry.maximum_retry_attempts == 3);
  REQUIRE(m.retry.maximum_record_age.has_value());
  CHECK(*m.retry.maximum_record_age == std::chrono::hours(6));
  CHECK(m.retry.bisect_batch_on_function_error);
  CHECK(m.on_failure.destination_topic == "orders-failed");

  auto unbounded = parseConfig(withMapping("    retry:\n"
                                           "      maximumRetryAttempts: -1\n"
                                           "      maximumRecordAge: -1\n"),
                               "kesm.yaml", kesm::kafka::checkSetting);
  CHECK(unbounded.mappings[0].retry.maximum_retry_attempts == kUnbounded);
  CHECK_FALSE(unbounded.mappings[0].retry.maximum_record_age.has_value());
  CHECK_FALSE(unbounded.mappings[0].retry.bounded());
}

TEST_CASE("AT_TIMESTAMP takes RFC 3339 or epoch seconds", "[unit]") {
  auto at = [](const std::string& ts) {
    return parseConfig(withSource(kServers + kTopics + "      startingPosition: AT_TIMESTAMP\n" +
                                  "      startingPositionTimestamp: " + ts + "\n"),
                       "kesm.yaml", kesm::kafka::checkSetting)
        .mappings[0]
        .source.starting_position_timestamp_ms;
  };
  CHECK(at("1700000000") == 1700000000000LL);
  CHECK(at("1700000000.5") == 1700000000500LL);
  CHECK(at("2023-11-14T22:13:20Z") == 1700000000000LL);
  CHECK(at("2023-11-14T23:13:20+01:00") == 1700000000000LL);
  CHECK(at("2023-11-14T22:13:20.250Z") == 1700000000250LL);
  CHECK(at("1970-01-01T00:00:00Z") == 0);
}

TEST_CASE("security becomes librdkafka settings, with secrets from files and variables", "[unit]") {
  char dir_template[] = "/tmp/kesm-secrets-XXXXXX";
  std::string dir = mkdtemp(dir_template);
  std::string password_file = dir + "/password";
  {
    FILE* f = std::fopen(password_file.c_str(), "w");
    std::fputs("s3cret\n", f); // the newline of `echo` is not part of the secret
    std::fclose(f);
  }
  std::string ca = dir + "/ca.pem";
  {
    FILE* f = std::fopen(ca.c_str(), "w");
    std::fputs("-----BEGIN CERTIFICATE-----\n", f);
    std::fclose(f);
  }
  setenv("KESM_TEST_USER", "alice", 1);
  auto config = parseConfig(withSource(kServers + kTopics +
                                       "      security:\n"
                                       "        sasl:\n"
                                       "          mechanism: SCRAM-SHA-256\n"
                                       "          usernameEnv: KESM_TEST_USER\n"
                                       "          passwordFile: " +
                                       password_file +
                                       "\n"
                                       "        tls:\n"
                                       "          caFile: " +
                                       ca +
                                       "\n"
                                       "          verifyHostname: false\n"),
                            "kesm.yaml", kesm::kafka::checkSetting);
  CHECK(config.mappings[0].source.security.protocol == SecurityProtocol::kSaslSsl);
  loadSecrets(config);
  auto settings = kesm::kafka::clientSettings(config.mappings[0].source);
  auto value = [&](const std::string& key) {
    for (const auto& [k, v] : settings) {
      if (k == key) {
        return v;
      }
    }
    return std::string("<absent>");
  };
  CHECK(value("bootstrap.servers") == "k:9092");
  CHECK(value("security.protocol") == "sasl_ssl");
  CHECK(value("sasl.mechanisms") == "SCRAM-SHA-256");
  CHECK(value("sasl.username") == "alice");
  CHECK(value("sasl.password") == "s3cret");
  CHECK(value("ssl.ca.location") == ca);
  CHECK(value("ssl.endpoint.identification.algorithm") == "none");
  CHECK(value("ssl.certificate.location") == "<absent>");

  // A missing variable and an unreadable file name where they were written.
  unsetenv("KESM_TEST_USER");
  std::remove(password_file.c_str());
  try {
    loadSecrets(config);
    FAIL("loadSecrets accepted a missing file and an unset variable");
  } catch (const ConfigError& e) {
    REQUIRE(e.diagnostics().size() == 2);
    CHECK(e.diagnostics()[0].key == "mappings[0].source.security.sasl.usernameEnv");
    CHECK(e.diagnostics()[0].rule == "environment variable KESM_TEST_USER is not set");
    CHECK(e.diagnostics()[1].key == "mappings[0].source.security.sasl.passwordFile");
    CHECK(e.diagnostics()[1].rule ==
          "cannot read " + password_file + ": No such file or directory");
    // Never the secret itself.
    CHECK(std::string(e.what()).find("s3cret") == std::string::npos);
  }
  std::remove(ca.c_str());
  rmdir(dir.c_str());
}
