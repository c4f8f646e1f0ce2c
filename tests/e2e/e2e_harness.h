#pragma once

// End-to-end pieces: a real Apache Kafka broker run by tests/e2e/kafka.sh, topics made with
// the Admin API, Kafka's own ConsumerGroupCommand for an independent view of the group, and
// a kesm child process whose /metrics and /readyz are read over HTTP.

#include "../integration/harness.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kesm::test::e2e {

// Runs a shell command; returns its stdout, and its exit status in `status`.
std::string runCommand(const std::string& command, int& status);

// The broker shared by the e2e tests (started by the ctest fixture, or here when the test
// binary runs by hand). Returns its bootstrap address.
std::string sharedBroker();

// The group's committed offsets; none while the coordinator is still loading (a probe error).
std::map<std::int32_t, std::int64_t> committedNow(const config::Mapping& mapping);
std::string sharedBrokerDir();

// The address of a broker's listener (plaintext, sasl, ssl, sasl_ssl; tests/e2e/kafka.sh) and
// the directory of its CA and client certificates. User kesm, password kesm-secret.
std::string brokerListener(const std::string& dir, const std::string& listener);
std::string brokerTlsDir(const std::string& dir);

// A broker of one test's own, for faults that stop it. Stopped and removed at destruction.
class OwnBroker {
public:
  // kafka_version: "" for kafka.sh's default (4.4.0), or e.g. "3.9.1".
  explicit OwnBroker(std::string dir, const std::string& kafka_version = "");
  ~OwnBroker();
  OwnBroker(const OwnBroker&) = delete;
  OwnBroker& operator=(const OwnBroker&) = delete;

  const std::string& bootstrap() const { return bootstrap_; }
  const std::string& dir() const { return dir_; }
  // SIGTERM the broker and keep its data; resume() starts it again on the same port.
  void stopKeepingData();
  void resume();

private:
  std::string dir_;
  std::string bootstrap_;
};

// Creates a topic with the Admin API (replication factor 1) and waits until every
// partition has a leader.
void createTopic(const std::string& bootstrap, const std::string& topic, int partitions,
                 const std::map<std::string, std::string>& configs = {});

// Grows a topic to `partitions` with the Admin API (CreatePartitions) and waits until every
// partition has a leader.
void addPartitions(const std::string& bootstrap, const std::string& topic, int partitions);

// Deletes a topic with the Admin API.
void deleteTopic(const std::string& bootstrap, const std::string& topic);

// The group's offsets on `topic` as Kafka's own ConsumerGroupCommand prints them. Partitions
// without a committed offset have committed and lag -1 (the tool shows "-").
struct ToolRow {
  std::int64_t committed = -1;
  std::int64_t end = -1;
  std::int64_t lag = -1;
};
std::map<std::int32_t, ToolRow>
kafkaToolOffsets(const std::string& broker_dir, const std::string& group, const std::string& topic);

// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t freePort();

// A name no earlier run used (topics and groups outlive a test on the shared broker).
std::string uniqueName(const std::string& prefix);

// GET http://127.0.0.1:<port><target>; status 0 when nothing answered.
struct Get {
  int status = 0;
  std::string body;
};
Get httpGet(std::uint16_t port, const std::string& target);

// One sample of the exposition whose name matches and whose labels include `labels`;
// NaN when none does.
double metric(const std::string& exposition, const std::string& name,
              const std::map<std::string, std::string>& labels);

// A mapping for a real broker (config_yaml.h's testMapping, then): from the start of the
// topic, Kafka's minimum session timeout (6 s) so that a killed member's partitions move soon,
// a 1 s evaluation interval, a 10 s scale-down stabilization, backoffs of 100 ms to 1 s, and
// librdkafka's group debug log into kesm's log (kesm runs with --verbose in these tests), so
// a failed run shows what the group did; `m.librdkafka.erase("debug")` for a quiet one.
MappingYaml e2eMapping(const std::string& name, const std::string& bootstrap,
                       const std::string& topic, const std::string& url, int min_pollers = 1,
                       int max_pollers = 1);
// A whole config file: the mappings on one listener, 127.0.0.1:<port>.
std::string e2eConfigYaml(std::uint16_t port, const std::vector<MappingYaml>& mappings);

// High watermark of every partition of the topic.
std::map<std::int32_t, std::int64_t> highWatermarks(const std::string& bootstrap,
                                                    const std::string& topic, int partitions);

// Prints the last lines of a kesm log to stderr when the scope is left by a failed REQUIRE,
// so ctest --output-on-failure shows what kesm did.
class DumpLogOnFailure {
public:
  explicit DumpLogOnFailure(std::string path) : path_(std::move(path)) {}
  ~DumpLogOnFailure();
  DumpLogOnFailure(const DumpLogOnFailure&) = delete;
  DumpLogOnFailure& operator=(const DumpLogOnFailure&) = delete;

private:
  std::string path_;
};

} // namespace kesm::test::e2e
