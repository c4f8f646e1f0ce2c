#include "config/schema.h"

#include <algorithm>
#include <cctype>

namespace kesm::config::detail {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

} // namespace

const Section kTopSection{"at the top level", {"server", "leaderElection", "mappings"}};
const Section kLeaderElectionSection{
    "under leaderElection",
    {"enabled", "leaseName", "namespace", "leaseDuration", "renewDeadline", "retryPeriod"}};
const Section kServerSection{"under server", {"listen"}};
const Section kMappingSection{"in a mapping (an entry of the mappings list)",
                              {"name", "source", "function", "batching", "scaling", "retry",
                               "onFailure", "filters", "pods", "functionResponseTypes"}};
const Section kPodsSection{"under a mapping's pods",
                           {"statefulSet", "service", "pollersPerPod", "statusInterval"}};
const Section kSourceSection{"under a mapping's source",
                             {"bootstrapServers", "topics", "consumerGroupId", "startingPosition",
                              "startingPositionTimestamp", "partitionAssignor", "security",
                              "librdkafka"}};
const Section kSecuritySection{"under a mapping's source.security", {"protocol", "sasl", "tls"}};
const Section kSaslSection{
    "under a mapping's source.security.sasl",
    {"mechanism", "username", "usernameFile", "usernameEnv", "passwordFile", "passwordEnv"}};
const Section kTlsSection{"under a mapping's source.security.tls",
                          {"caFile", "certificateFile", "keyFile", "keyPasswordFile",
                           "keyPasswordEnv", "verifyHostname"}};
const Section kOnFailureSection{"under a mapping's onFailure", {"destination"}};
const Section kFunctionSection{"under a mapping's function",
                               {"protocol", "url", "timeout", "nullValues", "detectErrorBody",
                                "tls", "lambda", "cloudEvents"}};
const Section kFunctionTlsSection{"under a mapping's function.tls",
                                  {"caFile", "certificateFile", "keyFile", "serverName"}};
const Section kLambdaSection{"under a mapping's function.lambda",
                             {"functionName", "qualifier", "region", "endpoint"}};
const Section kCloudEventsSection{"under a mapping's function.cloudEvents",
                                  {"mode", "source", "type"}};
const Section kBatchingSection{"under a mapping's batching",
                               {"batchSize", "maximumBatchingWindow"}};
const Section kScalingSection{"under a mapping's scaling",
                              {"minimumPollers", "maximumPollers", "gracePeriod",
                               "evaluationInterval", "scaleDownStabilization",
                               "maxConcurrentBatches"}};
const Section kRetrySection{"under a mapping's retry",
                            {"initialBackoff", "maximumBackoff", "backoffMultiplier", "jitter",
                             "maximumRetryAttempts", "maximumRecordAge",
                             "bisectBatchOnFunctionError"}};

namespace {

const std::vector<const Section*>& allSections() {
  static const std::vector<const Section*> sections{
      &kTopSection,        &kServerSection,   &kLeaderElectionSection, &kMappingSection,
      &kSourceSection,     &kSecuritySection, &kSaslSection,           &kTlsSection,
      &kFunctionSection,   &kBatchingSection, &kScalingSection,        &kRetrySection,
      &kOnFailureSection,  &kPodsSection,     &kFunctionTlsSection,    &kLambdaSection,
      &kCloudEventsSection};
  return sections;
}

// Keys of AWS's event source mapping API that users may bring along, and kesm's name for them.
const std::vector<std::pair<std::string_view, std::string_view>> kAwsNames{
    {"maximumRecordAgeInSeconds", "retry.maximumRecordAge (a duration, like 6h)"},
    {"destinationConfig", "onFailure.destination (kafka://TOPIC)"},
    {"filterCriteria", "filters (a list of patterns)"},
    {"selfManagedEventSource", "source.bootstrapServers"},
    {"sourceAccessConfigurations", "source.security"},
};

} // namespace

std::string unknownKeyRule(std::string_view key, const Section& section) {
  if (key == "<<") {
    return "YAML merge keys ('<<') are not supported; write the keys out";
  }
  if (key == "password" || key == "keyPassword") {
    return "a secret is never written in the config file; use " + std::string(key) +
           "File (a file holding it) or " + std::string(key) + "Env (an environment variable)";
  }
  constexpr std::size_t kNearMiss = 3; // edits, ignoring case
  std::string_view best = nearestName(key, section.keys, kNearMiss, lower);
  if (!best.empty()) {
    return "unknown key, did you mean '" + std::string(best) + "'?";
  }
  std::string key_lower = lower(key);
  for (const Section* other : allSections()) {
    if (other == &section) {
      continue;
    }
    for (auto known : other->keys) {
      if (lower(known) == key_lower) {
        return "unknown key here: '" + std::string(known) + "' belongs " +
               std::string(other->where);
      }
    }
  }
  for (auto [aws, kesm_name] : kAwsNames) {
    if (lower(aws) == key_lower) {
      return "unknown key: AWS's '" + std::string(aws) + "' is " + std::string(kesm_name) +
             " in kesm";
    }
  }
  return "unknown key; the keys allowed " + std::string(section.where) + " are " +
         joinNames(section.keys);
}

SectionReader::SectionReader(Reporter& reporter, const YAML::Node& map, std::string path, Pos pos,
                             const Section& section)
    : reporter_(reporter), path_(std::move(path)), pos_(pos) {
  for (auto& field : entriesOf(reporter, map, path_, pos)) {
    std::string_view key =
        std::string_view(field.path).substr(path_.empty() ? 0 : path_.size() + 1);
    if (std::find(section.keys.begin(), section.keys.end(), key) == section.keys.end()) {
      reporter.add(field.key_pos, field.path, unknownKeyRule(key, section));
      continue;
    }
    fields_.emplace(std::string(key), std::move(field));
  }
}

const Field* SectionReader::optional(std::string_view key) const {
  auto it = fields_.find(key);
  return it == fields_.end() ? nullptr : &it->second;
}

const Field* SectionReader::required(std::string_view key, std::string_view what) {
  const Field* field = optional(key);
  if (field == nullptr) {
    reporter_.add(pos_, joinPath(path_, key), "required key is missing; " + std::string(what));
  }
  return field;
}

std::optional<std::string> reservedLibrdkafkaRule(const std::string& key) {
  if (key == "bootstrap.servers" || key == "metadata.broker.list") {
    return "is set by kesm from source.bootstrapServers; set it there";
  }
  if (key == "group.id") {
    return "is set by kesm from source.consumerGroupId; set it there";
  }
  if (key == "group.instance.id") {
    return "is set per poller by `kesm poller --membership static` (pods mode); one id shared by "
           "several consumers fences all but one";
  }
  if (key == "auto.offset.reset") {
    return "is set by kesm from source.startingPosition (TRIM_HORIZON or LATEST); set it there";
  }
  if (key == "partition.assignment.strategy") {
    return "is set by kesm from source.partitionAssignor; set it there";
  }
  if (key == "enable.auto.commit" || key == "enable.auto.offset.store") {
    return "cannot be changed: kesm commits offsets itself, only after the function succeeded";
  }
  if (key == "sasl.password" || key == "ssl.key.password" || key == "sasl.username") {
    return "is set by kesm from source.security (a secret read from a file or an environment "
           "variable, never written in this file); set it there";
  }
  if (key == "security.protocol" || key == "sasl.mechanism" || key == "sasl.mechanisms" ||
      key == "ssl.ca.location" || key == "ssl.certificate.location" || key == "ssl.key.location" ||
      key == "ssl.endpoint.identification.algorithm") {
    return "is set by kesm from source.security; set it there";
  }
  return std::nullopt;
}

} // namespace kesm::config::detail
