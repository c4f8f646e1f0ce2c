#pragma once

// The YAML model of kesm: one file, a server section and one or more mappings.
// parseConfig is pure (no file, no network, no librdkafka): it judges the librdkafka map with
// the SettingValidator it is given (kafka::checkSetting, kafka/kafka.h, asks
// librdkafka). Every rule broken is reported with file, line, column and key path. The I/O is
// loadConfigFile and loadSecrets (load.cc): the file, the secrets it names, its TLS files.
// Startup only; the Config is then read-only and may be shared by threads.

#include "config/duration.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kesm::filter {
class Filters;
}

namespace kesm::config {

inline constexpr int kDefaultBatchSize = 100;
inline constexpr Millis kDefaultBatchingWindow{500};
inline constexpr std::size_t kMaxPayloadBytes = 6 * 1024 * 1024; // AWS Lambda's 6 MiB
inline constexpr int kDefaultMinimumPollers = 1;
inline constexpr int kDefaultMaxConcurrentBatches = 5; // AWS: 5 invocations per poller
inline constexpr int kMaxConcurrentBatches = 100;
inline constexpr int kDefaultMaximumPollers = 200; // AWS provisioned-mode default
inline constexpr const char* kDefaultListen = "0.0.0.0:9464";

// Bounds on what a config file may hold, so that reading one costs little memory and time
// whatever it holds (docs/configuration.md, "Limits").
inline constexpr std::size_t kMaxConfigBytes = 1024 * 1024;
inline constexpr std::size_t kMaxMappings = 100;
inline constexpr std::size_t kMaxTopics = 1000; // per mapping
inline constexpr std::size_t kMaxBootstrapServers = 100;
inline constexpr std::size_t kMaxLibrdkafkaSettings = 300;
// At most this many diagnostics are listed; a last one says how many more there were.
inline constexpr std::size_t kMaxDiagnostics = 100;

enum class StartingPosition { kTrimHorizon, kLatest, kAtTimestamp };

// Where a value was written in the file, kept for the errors found after parsing: the cluster
// preflight (app/preflight.h) points at the bootstrapServers or topic entry it could not use.
struct Location {
  std::string key; // key path, e.g. mappings[0].source.topics[1]
  int line = 0;    // 1-based; 0 when unknown (a Config built in code)
  int column = 0;  // 1-based
};

enum class SecurityProtocol { kPlaintext, kSsl, kSaslPlaintext, kSaslSsl };
enum class SaslMechanism { kPlain, kScramSha256, kScramSha512 };

// A value the file names rather than holds: written literally (usernames only), read from a
// file or from an environment variable by loadSecrets() at startup. `value` is the secret
// itself: never logged, never in /status or metrics.
struct SecretSource {
  enum class Kind { kNone, kLiteral, kFile, kEnv };
  Kind kind = Kind::kNone;
  std::string ref; // the literal, the file path or the variable name
  Location at;     // where it was written
  std::string value;
};

struct SaslConfig {
  SaslMechanism mechanism = SaslMechanism::kScramSha512;
  SecretSource username;
  SecretSource password; // kFile or kEnv only
};

struct TlsConfig {
  std::string ca_file;          // PEM; empty: the system's CA store
  std::string certificate_file; // PEM client certificate (mTLS), with key_file
  std::string key_file;         // PEM private key
  SecretSource key_password;    // for an encrypted key; kFile or kEnv
  bool verify_hostname = true;
  Location ca_file_at, certificate_file_at, key_file_at;
};

struct SecurityConfig {
  SecurityProtocol protocol = SecurityProtocol::kPlaintext;
  std::optional<SaslConfig> sasl;
  std::optional<TlsConfig> tls;
  Location at; // the security map; line 0 when absent
};

struct SourceConfig {
  std::vector<std::string> bootstrap_servers; // required, host:port each
  std::vector<std::string> topics;            // required, non-empty
  std::string consumer_group_id;              // default "kesm-<mapping name>"
  StartingPosition starting_position = StartingPosition::kTrimHorizon;
  std::int64_t starting_position_timestamp_ms = 0; // AT_TIMESTAMP only; epoch milliseconds
  SecurityConfig security;
  // Eager assignors by default: see docs/architecture.md for the evidence.
  std::string partition_assignor = "roundrobin";
  // Passed verbatim to librdkafka, in file order; applied after kesm's own settings.
  std::vector<std::pair<std::string, std::string>> librdkafka;
  // Where the values above were written; topics_at runs parallel to topics.
  Location bootstrap_servers_at;
  std::vector<Location> topics_at;
  Location librdkafka_at; // the librdkafka map; line 0 when the key is absent
};

// How the event writes Kafka's nulls (docs/configuration.md, "function").
enum class NullValues {
  kEmpty, // tombstone: "value":""; null header value: [] -- every Lambda library reads these
  kOmit,  // tombstone: no "value" (as AWS); null header value: null -- lossless, fewer readers
};

// How kesm talks to the function (docs/functions.md).
enum class FunctionProtocol {
  kLambdaEvent, // POST AWS Lambda's self-managed Kafka event as JSON to url
  kAwsLambda,   // the AWS Lambda Invoke API, signed with SigV4
  kCloudEvents, // CloudEvents over HTTP to url
};

// An https function URL: whom to trust, and the client certificate for mutual TLS.
struct FunctionTlsConfig {
  std::string ca_file;          // PEM; empty: the system's CA store
  std::string certificate_file; // PEM client certificate (chain), with key_file
  std::string key_file;         // PEM private key, unencrypted
  // The name the server's certificate must carry, also sent as SNI; empty: the URL's host.
  std::string server_name;
  Location at; // the tls map
};

struct AwsLambdaConfig {
  // A name, 123456789012:function:NAME or a full ARN, optionally ending :QUALIFIER.
  std::string function_name;
  std::string qualifier; // ?Qualifier=; empty: none (or the one in function_name)
  std::string region;    // empty: the ARN's, else AWS_REGION, else AWS_DEFAULT_REGION at start
  std::string endpoint;  // empty: https://lambda.REGION.amazonaws.com
  Location at;           // the lambda map
};

enum class CloudEventsMode {
  kBinary, // one record per request, attributes in ce- headers
  kBatch,  // the batch as one application/cloudevents-batch+json array
};

struct CloudEventsConfig {
  CloudEventsMode mode = CloudEventsMode::kBinary;
  std::string source; // ce-source; empty: derived from the mapping (docs/functions.md)
  std::string type = "dev.knative.kafka.event";
};

struct FunctionConfig {
  FunctionProtocol protocol = FunctionProtocol::kLambdaEvent;
  std::string url; // http[s]://host[:port]/path; required unless protocol is kAwsLambda
  Millis timeout{30000};
  NullValues null_values = NullValues::kEmpty;
  // A 2xx whose body is a Lambda runtime's error document (errorMessage + errorType) is a
  // function error: the Runtime Interface Emulator answers a raising handler that way.
  bool detect_error_body = true;
  std::optional<FunctionTlsConfig> tls; // only with an https url or lambda endpoint
  AwsLambdaConfig lambda;               // protocol kAwsLambda
  CloudEventsConfig cloud_events;       // protocol kCloudEvents
};

// Whether kesm reaches this function over TLS: an https:// url, or an awsLambda endpoint that
// is https:// or AWS's own (function_section.cc). The one place that decides it.
bool usesHttps(const FunctionConfig& function);

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

inline constexpr int kUnbounded = -1;

struct RetryConfig {
  Millis initial_backoff{100};
  Millis maximum_backoff{30000};
  double backoff_multiplier = 2.0; // >= 1
  double jitter = 0.2;             // 0..1: fraction of the delay that is randomised
  // Retries after the first attempt before a batch is given up; kUnbounded or 0..10000.
  int maximum_retry_attempts = kUnbounded;
  // A batch whose oldest record is older than this is not retried further; nullopt:
  // unbounded, else 60 s..7 days.
  std::optional<Millis> maximum_record_age;
  // A failing batch is split in halves, recursively, to isolate a poison record.
  bool bisect_batch_on_function_error = false;
  bool bounded() const { return maximum_retry_attempts != kUnbounded || maximum_record_age; }
};

// Where a batch that exhausted its retries goes; without one, such records are dropped
// (counted and logged), which is only possible when the user bounded the retries.
struct OnFailureConfig {
  std::string destination_topic; // kafka://TOPIC on the mapping's cluster; empty: none
  Location at;
};

// Pods mode (docs/kubernetes.md): where the mapping's poller pods are, read by `kesm
// controller` and `kesm poller` only.
struct PodsConfig {
  // The poller StatefulSet (a DNS-1123 label of at most 52 characters: its pods' names and
  // revision label add to it). Default "kesm-" + name; empty when that is no such label, which
  // `kesm controller` refuses (at name_at).
  std::string stateful_set;
  // The headless Service governing it, whose EndpointSlices list the pods; default stateful_set.
  std::string service;
  int pollers_per_pod = 1;       // 1..64: each pod's pollers; replicas = ceil(pollers / this)
  Millis status_interval{15000}; // how often the controller reads every pod's /status; 1 s..5 min
  Location name_at;              // where the mapping's name was written
};

struct Mapping {
  std::string name; // [A-Za-z0-9._-]{1,64}, unique
  SourceConfig source;
  FunctionConfig function;
  BatchingConfig batching;
  ScalingConfig scaling;
  RetryConfig retry;
  OnFailureConfig on_failure;
  // Records matching none of these patterns are committed without invocation; null: no
  // filtering (every record is delivered).
  std::shared_ptr<const filter::Filters> filters;
  PodsConfig pods;
  // functionResponseTypes: [ReportBatchItemFailures]: the function may answer with the
  // records that failed (docs/functions.md); lambdaEvent and awsLambda only.
  bool report_batch_item_failures = false;
};

struct ServerConfig {
  std::string listen = kDefaultListen; // host:port
};

// Two or more replicas of one config: only the holder of a coordination.k8s.io/v1 Lease runs
// pollers (app/leadership.h). Timings as client-go's leader election names them.
struct LeaderElectionConfig {
  enum class Mode { kAuto, kOn, kOff };
  Mode enabled = Mode::kAuto; // kAuto: on when kesm runs in a Kubernetes pod
  std::string lease_name = "kesm";
  std::string ns;               // empty: the pod's namespace
  Millis lease_duration{15000}; // whole seconds: a Lease holds leaseDurationSeconds
  Millis renew_deadline{10000}; // the leader stops its pollers when not renewed by then
  Millis retry_period{2000};    // between two tries to acquire or renew
  Location at;                  // where `enabled` was written (else the section); empty when absent
};

struct Config {
  std::string file; // the file name the config was read from, for later diagnostics
  ServerConfig server;
  LeaderElectionConfig leader_election;
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

// Why a SettingValidator refuses one setting of the librdkafka map.
struct SettingRefusal {
  enum class Part {
    kName, // no such setting: the diagnostic points at the key
    kValue // the value is wrong: the diagnostic points at the value
  };
  Part part = Part::kValue;
  std::string reason; // e.g. librdkafka's "No such configuration property: ..."
};

// Judges one `librdkafka:` setting as written (name, value); nullopt accepts it. Called once
// per setting, on the parsing thread. Every caller that parses a real config passes
// kafka::checkSetting, so that a setting librdkafka would refuse fails at startup, on its line.
using SettingValidator =
    std::function<std::optional<SettingRefusal>(const std::string& name, const std::string& value)>;

// Parses and validates. Throws ConfigError listing every rule broken. `validate_setting` must
// not be empty (std::invalid_argument).
Config parseConfig(const std::string& yaml_text, const std::string& file_name,
                   const SettingValidator& validate_setting);
// Reads the file (an unreadable file is a ConfigError too), parses it and loads its secrets.
Config loadConfigFile(const std::string& path, const SettingValidator& validate_setting);

// Reads every SecretSource of `config` (files, environment variables) into its value and
// checks that the TLS files it names are readable. Throws ConfigError naming where each
// unreadable one was written. I/O: called at startup, never by parseConfig().
void loadSecrets(Config& config);

} // namespace kesm::config
