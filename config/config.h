#pragma once

// The YAML model of kesm: one file, a server section and one or more mappings.
// Parsing and validation are pure (no Kafka, no HTTP); every rule broken is reported
// with file, line, column and key path.

#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kesm::config {

using Millis = std::chrono::milliseconds;

inline constexpr int kDefaultBatchSize = 100;
inline constexpr Millis kDefaultBatchingWindow{500};
inline constexpr std::size_t kMaxPayloadBytes = 6 * 1024 * 1024; // AWS Lambda's 6 MiB
inline constexpr int kDefaultMinimumPollers = 1;
inline constexpr int kDefaultMaxConcurrentBatches = 5; // AWS: 5 invocations per poller
inline constexpr int kMaxConcurrentBatches = 100;
inline constexpr int kDefaultMaximumPollers = 200; // AWS provisioned-mode default
inline constexpr const char* kDefaultListen = "0.0.0.0:9464";

enum class StartingPosition { kTrimHorizon, kLatest };

// Where a value was written in the file, kept for the errors found after parsing: the cluster
// preflight (app/preflight.h) points at the bootstrapServers or topic entry it could not use.
struct Location {
  std::string key; // key path, e.g. mappings[0].source.topics[1]
  int line = 0;    // 1-based; 0 when unknown (a Config built in code)
  int column = 0;  // 1-based
};

struct SourceConfig {
  std::vector<std::string> bootstrap_servers; // required, host:port each
  std::vector<std::string> topics;            // required, non-empty
  std::string consumer_group_id;              // default "kesm-<mapping name>"
  StartingPosition starting_position = StartingPosition::kTrimHorizon;
  // Eager assignors by default: see docs/architecture.md for the evidence.
  std::string partition_assignor = "roundrobin";
  // Passed verbatim to librdkafka, in file order; applied after kesm's own settings.
  std::vector<std::pair<std::string, std::string>> librdkafka;
  // Where the values above were written; topics_at runs parallel to topics.
  Location bootstrap_servers_at;
  std::vector<Location> topics_at;
  Location librdkafka_at; // the librdkafka map; line 0 when the key is absent
};

struct FunctionConfig {
  std::string url; // required, http://host[:port]/path
  Millis timeout{30000};
};

struct BatchingConfig {
  int batch_size = kDefaultBatchSize;                      // 1..10000
  Millis maximum_batching_window = kDefaultBatchingWindow; // 0..300 s
  std::size_t maximum_payload_bytes = kMaxPayloadBytes;    // fixed at 6 MiB
};

struct ScalingConfig {
  int minimum_pollers = kDefaultMinimumPollers; // 1..200
  int maximum_pollers = kDefaultMaximumPollers; // 1..2000, >= minimum
  // A retiring or stopping poller finishes its batch in flight within this time.
  Millis grace_period{30000};
  // How often the controller probes lag and decides; 1 s..5 min.
  Millis evaluation_interval{5000};
  // Scale down only to the highest recommendation seen over this window; 0..1 h.
  Millis scale_down_stabilization{60000};
  // Batches one poller may have in flight at once, each of different partitions; 1..100.
  int max_concurrent_batches = kDefaultMaxConcurrentBatches;
};

struct RetryConfig {
  Millis initial_backoff{100};
  Millis maximum_backoff{30000};
  double backoff_multiplier = 2.0; // >= 1
  double jitter = 0.2;             // 0..1: fraction of the delay that is randomised
};

struct Mapping {
  std::string name; // [A-Za-z0-9._-]{1,64}, unique
  SourceConfig source;
  FunctionConfig function;
  BatchingConfig batching;
  ScalingConfig scaling;
  RetryConfig retry;
};

struct ServerConfig {
  std::string listen = kDefaultListen; // host:port
};

struct Config {
  std::string file; // the file name the config was read from, for later diagnostics
  ServerConfig server;
  std::vector<Mapping> mappings; // at least one
};

// One broken rule, located in the file.
struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the position is unknown
  int column = 0;  // 1-based
  std::string key; // key path, e.g. mappings[0].batching.batchSize
  std::string rule;
  std::string toString() const; // "FILE:LINE:COL: KEY: RULE"
};

// Thrown at startup only. what() lists every diagnostic, one per line.
class ConfigError : public std::runtime_error {
public:
  explicit ConfigError(std::vector<Diagnostic> diagnostics);
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

private:
  std::vector<Diagnostic> diagnostics_;
};

// Parses and validates. Throws ConfigError listing every rule broken.
Config parseConfig(const std::string& yaml_text, const std::string& file_name);
// Reads the file (an unreadable file is a ConfigError too) and parses it.
Config loadConfigFile(const std::string& path);

// "500ms", "5s", "2m", "1h"; nullopt when malformed.
std::optional<Millis> parseDuration(const std::string& text);
// The inverse for messages: the largest unit that divides the value, 30000ms -> "30s".
std::string formatDuration(Millis value);

} // namespace kesm::config
