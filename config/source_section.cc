// A mapping's source: brokers, topics, where to start, security (with its secrets), and the
// librdkafka map, judged by the injected SettingValidator.

#include "config/schema.h"
#include "config/sections.h"
#include "config/values.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <string_view>
#include <utility>

namespace kesm::config::detail {

// A path to a file, read at startup; only its shape is checked here.
std::optional<std::string> readPath(Reporter& reporter, const Field& field) {
  auto text = readScalar(reporter, field, "a file path");
  if (text && text->empty()) {
    reporter.add(field.value_pos, field.path, "must be a file path, got an empty string");
    return std::nullopt;
  }
  return text;
}

TlsFileFields readTlsFiles(Reporter& reporter, SectionReader& section, std::string& ca_file,
                           std::string& certificate_file, std::string& key_file) {
  auto path = [&](const char* key, std::string& out) {
    const Field* f = section.optional(key);
    if (f != nullptr) {
      if (auto text = readPath(reporter, *f)) {
        out = *text;
      }
    }
    return f;
  };
  TlsFileFields files{path("caFile", ca_file), path("certificateFile", certificate_file),
                      path("keyFile", key_file)};
  if ((files.cert == nullptr) != (files.key == nullptr)) {
    const Field* given = files.cert != nullptr ? files.cert : files.key;
    reporter.add(given->key_pos, given->path,
                 "a client certificate needs both certificateFile and keyFile (mutual TLS), "
                 "or neither");
  }
  return files;
}

namespace {

void readBootstrapServers(Reporter& reporter, const Field& field, SourceConfig& source) {
  source.bootstrap_servers_at = locationOf(field);
  const char* expected = "a list of host:port (or one string of them separated by commas)";
  const std::string entry_rule = "must be host:port with a port from 1 to 65535, got ";
  if (field.value.IsScalar()) {
    std::string_view text = field.value.Scalar();
    std::size_t start = 0;
    while (start <= text.size()) {
      auto comma = text.find(',', start);
      auto end = comma == std::string_view::npos ? text.size() : comma;
      auto entry = text.substr(start, end - start);
      while (!entry.empty() && entry.front() == ' ') {
        entry.remove_prefix(1);
      }
      while (!entry.empty() && entry.back() == ' ') {
        entry.remove_suffix(1);
      }
      if (!validHostPort(entry, 1)) {
        reporter.add(field.value_pos, field.path,
                     "each server " + entry_rule +
                         (entry.empty() ? std::string("an empty entry") : quote(entry)));
      } else {
        source.bootstrap_servers.emplace_back(entry);
      }
      if (comma == std::string_view::npos) {
        break;
      }
      start = comma + 1;
    }
    return;
  }
  if (!field.value.IsSequence()) {
    mismatch(reporter, field, expected);
    return;
  }
  if (field.value.size() == 0) {
    reporter.add(field.value_pos, field.path,
                 "must list at least one host:port, got an empty list");
    return;
  }
  if (tooLong(reporter, field, kMaxBootstrapServers, "servers")) {
    return;
  }
  std::size_t index = 0;
  for (const auto& item : field.value) {
    Field entry{indexPath(field.path, index++), item, field.value_pos,
                valuePos(item, field.value_pos)};
    auto text = readScalar(reporter, entry, "host:port with a port from 1 to 65535");
    if (!text) {
      continue;
    }
    if (!validHostPort(*text, 1)) {
      reporter.add(entry.value_pos, entry.path, entry_rule + describe(item));
    } else {
      source.bootstrap_servers.push_back(*text);
    }
  }
}

void readTopics(Reporter& reporter, const Field& field, SourceConfig& source) {
  const std::string topic_rule =
      "must be a Kafka topic name: 1 to 249 letters, digits, '.', '_' or '-', got ";
  std::map<std::string, std::string> seen; // topic -> path of its first entry
  auto add_topic = [&](const Field& entry) {
    auto text = readScalar(reporter, entry, "a Kafka topic name");
    if (!text) {
      return;
    }
    if (!validTopicName(*text)) {
      std::string rule = topic_rule + describe(entry.value);
      if (text->find(',') != std::string::npos) {
        rule += "; list several topics as a YAML list, like [a, b]";
      }
      reporter.add(entry.value_pos, entry.path, rule);
      return;
    }
    auto [first, inserted] = seen.emplace(*text, entry.path);
    if (!inserted) {
      reporter.add(entry.value_pos, entry.path,
                   "topic '" + *text + "' is listed twice (also at " + first->second + ")");
      return;
    }
    source.topics.push_back(*text);
    source.topics_at.push_back(locationOf(entry));
  };
  if (field.value.IsScalar()) {
    add_topic(field);
    return;
  }
  if (!field.value.IsSequence()) {
    mismatch(reporter, field, "a list of topic names");
    return;
  }
  if (field.value.size() == 0) {
    reporter.add(field.value_pos, field.path, "must list at least one topic, got an empty list");
    return;
  }
  if (tooLong(reporter, field, kMaxTopics, "topics")) {
    return;
  }
  std::size_t index = 0;
  for (const auto& item : field.value) {
    add_topic(Field{indexPath(field.path, index++), item, field.value_pos,
                    valuePos(item, field.value_pos)});
  }
}

// One secret given by exactly one of <base> (a literal, where allowed), <base>File or
// <base>Env. `what` names the secret in messages.
SecretSource readSecret(Reporter& reporter, const SectionReader& section, const Field& parent,
                        const std::string& base, bool literal_allowed, bool required) {
  SecretSource secret;
  std::vector<const Field*> given;
  const Field* literal = literal_allowed ? section.optional(base) : nullptr;
  const Field* file = section.optional(base + "File");
  const Field* env = section.optional(base + "Env");
  for (const Field* f : {literal, file, env}) {
    if (f != nullptr) {
      given.push_back(f);
    }
  }
  std::string choices = literal_allowed ? base + ", " + base + "File or " + base + "Env"
                                        : base + "File or " + base + "Env";
  if (given.size() > 1) {
    reporter.add(given[1]->key_pos, given[1]->path,
                 "give the " + base + " once: " + choices + ", not several");
    return secret;
  }
  if (given.empty()) {
    if (required) {
      reporter.add(parent.value_pos, joinPath(parent.path, base + "File"),
                   "required key is missing; give the " + base + " with " + choices);
    }
    return secret;
  }
  const Field& f = *given.front();
  secret.at = locationOf(f);
  if (&f == file) {
    if (auto path = readPath(reporter, f)) {
      secret.kind = SecretSource::Kind::kFile;
      secret.ref = *path;
    }
  } else if (&f == env) {
    auto name = readScalar(reporter, f, "an environment variable name");
    if (name && !validEnvName(*name)) {
      reporter.add(f.value_pos, f.path,
                   "must be an environment variable name (letters, digits and '_', not "
                   "starting with a digit), got " +
                       describe(f.value));
    } else if (name) {
      secret.kind = SecretSource::Kind::kEnv;
      secret.ref = *name;
    }
  } else {
    auto text = readScalar(reporter, f, "a string");
    if (text && text->empty()) {
      reporter.add(f.value_pos, f.path, "must not be empty");
    } else if (text) {
      secret.kind = SecretSource::Kind::kLiteral;
      secret.ref = *text;
      secret.value = *text;
    }
  }
  return secret;
}

void readSasl(Reporter& reporter, const Field& field, SaslConfig& sasl) {
  if (!expectMap(reporter, field,
                 "a map with mechanism, username and passwordFile or passwordEnv")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kSaslSection);
  if (auto f = section.required("mechanism", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")) {
    auto text = readScalar(reporter, *f, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
    if (text && *text == "PLAIN") {
      sasl.mechanism = SaslMechanism::kPlain;
    } else if (text && *text == "SCRAM-SHA-256") {
      sasl.mechanism = SaslMechanism::kScramSha256;
    } else if (text && *text == "SCRAM-SHA-512") {
      sasl.mechanism = SaslMechanism::kScramSha512;
    } else if (text) {
      std::string rule = "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got " + describe(f->value);
      if (*text == "GSSAPI" || *text == "OAUTHBEARER") {
        rule += " (" + *text + " is not supported yet)";
      }
      reporter.add(f->value_pos, f->path, rule);
    }
  }
  sasl.username = readSecret(reporter, section, field, "username", true, true);
  sasl.password = readSecret(reporter, section, field, "password", false, true);
}

void readTls(Reporter& reporter, const Field& field, TlsConfig& tls) {
  if (!expectMap(reporter, field, "a map with caFile, certificateFile and keyFile")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kTlsSection);
  const TlsFileFields files =
      readTlsFiles(reporter, section, tls.ca_file, tls.certificate_file, tls.key_file);
  const std::pair<const Field*, Location*> located[] = {{files.ca, &tls.ca_file_at},
                                                        {files.cert, &tls.certificate_file_at},
                                                        {files.key, &tls.key_file_at}};
  for (auto [f, at] : located) {
    if (f != nullptr) {
      *at = locationOf(*f);
    }
  }
  const Field* key = files.key;
  tls.key_password = readSecret(reporter, section, field, "keyPassword", false, false);
  if (tls.key_password.kind != SecretSource::Kind::kNone && key == nullptr) {
    reporter.add(field.value_pos, field.path, "keyPasswordFile/keyPasswordEnv need keyFile");
  }
  readBool(reporter, section.optional("verifyHostname"), tls.verify_hostname);
}

void readSecurity(Reporter& reporter, const Field& field, SecurityConfig& security) {
  if (!expectMap(reporter, field, "a map with protocol, sasl and tls")) {
    return;
  }
  security.at = locationOf(field);
  SectionReader section(reporter, field.value, field.path, field.value_pos, kSecuritySection);
  const Field* sasl = section.optional("sasl");
  const Field* tls = section.optional("tls");
  if (sasl != nullptr) {
    security.sasl.emplace();
    readSasl(reporter, *sasl, *security.sasl);
  }
  if (tls != nullptr) {
    security.tls.emplace();
    readTls(reporter, *tls, *security.tls);
  }
  // Without protocol, the sections present say it; with it, they must agree.
  security.protocol =
      sasl != nullptr
          ? (tls != nullptr ? SecurityProtocol::kSaslSsl : SecurityProtocol::kSaslPlaintext)
          : (tls != nullptr ? SecurityProtocol::kSsl : SecurityProtocol::kPlaintext);
  if (const Field* f = section.optional("protocol")) {
    const char* expected = "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL";
    auto text = readScalar(reporter, *f, expected);
    std::optional<SecurityProtocol> protocol;
    if (text && *text == "PLAINTEXT") {
      protocol = SecurityProtocol::kPlaintext;
    } else if (text && *text == "SSL") {
      protocol = SecurityProtocol::kSsl;
    } else if (text && *text == "SASL_PLAINTEXT") {
      protocol = SecurityProtocol::kSaslPlaintext;
    } else if (text && *text == "SASL_SSL") {
      protocol = SecurityProtocol::kSaslSsl;
    } else if (text) {
      mismatch(reporter, *f, expected);
    }
    if (protocol) {
      bool wants_sasl =
          *protocol == SecurityProtocol::kSaslPlaintext || *protocol == SecurityProtocol::kSaslSsl;
      bool wants_tls =
          *protocol == SecurityProtocol::kSsl || *protocol == SecurityProtocol::kSaslSsl;
      if (wants_sasl && sasl == nullptr) {
        reporter.add(f->value_pos, f->path, *text + " needs a sasl section with the credentials");
      } else if (!wants_sasl && sasl != nullptr) {
        reporter.add(sasl->key_pos, sasl->path,
                     "protocol " + *text + " does not use SASL; use SASL_PLAINTEXT or SASL_SSL");
      } else if (!wants_tls && tls != nullptr) {
        reporter.add(tls->key_pos, tls->path,
                     "protocol " + *text + " does not use TLS; use SSL or SASL_SSL");
      } else {
        security.protocol = *protocol;
      }
    }
  }
}

void readLibrdkafka(Reporter& reporter, const Field& field,
                    const SettingValidator& validate_setting, SourceConfig& source) {
  if (!expectMap(reporter, field,
                 "a map of librdkafka settings, like {fetch.max.bytes: 1048576}")) {
    return;
  }
  source.librdkafka_at = locationOf(field);
  if (tooLong(reporter, field, kMaxLibrdkafkaSettings, "settings")) {
    return;
  }
  for (const auto& entry : entriesOf(reporter, field.value, field.path, field.value_pos)) {
    std::string key = entry.path.substr(field.path.size() + 1);
    if (auto rule = reservedLibrdkafkaRule(key)) {
      reporter.add(entry.key_pos, entry.path, *rule);
      continue;
    }
    auto text = readScalar(reporter, entry, "a string, number or boolean");
    if (!text) {
      continue;
    }
    // librdkafka itself judges the name and the value (kafka::checkSetting, injected), so the
    // error names the line.
    if (auto refusal = validate_setting(key, *text)) {
      const bool name_refused = refusal->part == SettingRefusal::Part::kName;
      std::string rule = "librdkafka refuses it: " + refusal->reason;
      if (!name_refused && rule.find(*text) == std::string::npos) {
        rule += ", got " + quote(*text); // "Invalid value for configuration property" alone
      }
      reporter.add(name_refused ? entry.key_pos : entry.value_pos, entry.path, rule);
      continue;
    }
    source.librdkafka.emplace_back(key, *text);
  }
}

} // namespace

void readSource(Reporter& reporter, const Field& field, const SettingValidator& validate_setting,
                SourceConfig& source, std::optional<Pos>& group_pos) {
  if (!expectMap(reporter, field, "a map with bootstrapServers and topics")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kSourceSection);
  if (auto f = section.required("bootstrapServers", "list the Kafka brokers, like kafka-0:9092")) {
    readBootstrapServers(reporter, *f, source);
  }
  if (auto f = section.required("topics", "list the topics to read, like [orders]")) {
    readTopics(reporter, *f, source);
  }
  if (auto f = section.optional("consumerGroupId")) {
    group_pos = f->value_pos;
    auto text = readScalar(reporter, *f, "a consumer group id");
    if (text && text->empty()) {
      reporter.add(f->value_pos, f->path,
                   "must be a non-empty consumer group id; leave the key out for kesm-<name>");
    } else if (text) {
      source.consumer_group_id = *text;
    }
  }
  const Field* position = section.optional("startingPosition");
  if (position != nullptr) {
    const char* expected = "TRIM_HORIZON, LATEST or AT_TIMESTAMP";
    auto text = readScalar(reporter, *position, expected);
    if (text && *text == "TRIM_HORIZON") {
      source.starting_position = StartingPosition::kTrimHorizon;
    } else if (text && *text == "LATEST") {
      source.starting_position = StartingPosition::kLatest;
    } else if (text && *text == "AT_TIMESTAMP") {
      source.starting_position = StartingPosition::kAtTimestamp;
    } else if (text) {
      std::string rule =
          "must be TRIM_HORIZON, LATEST or AT_TIMESTAMP, got " + describe(position->value);
      std::string upper = *text;
      for (auto& c : upper) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
      if (upper == "TRIM_HORIZON" || upper == "LATEST" || upper == "AT_TIMESTAMP") {
        rule += " (the values are upper case)";
      }
      reporter.add(position->value_pos, position->path, rule);
    }
  }
  const Field* timestamp = section.optional("startingPositionTimestamp");
  bool at_timestamp = source.starting_position == StartingPosition::kAtTimestamp;
  if (timestamp != nullptr && !at_timestamp) {
    reporter.add(timestamp->key_pos, timestamp->path,
                 "applies only with startingPosition: AT_TIMESTAMP");
  } else if (timestamp != nullptr) {
    const char* expected =
        "a time like 2026-11-20T10:00:00Z (RFC 3339, with a zone) or epoch seconds";
    auto text = readScalar(reporter, *timestamp, expected);
    auto ms = text ? parseTimestampMs(*text) : std::nullopt;
    if (text && !ms) {
      mismatch(reporter, *timestamp, expected);
    } else if (ms) {
      source.starting_position_timestamp_ms = *ms;
    }
  } else if (at_timestamp) {
    reporter.add(position->value_pos, joinPath(field.path, "startingPositionTimestamp"),
                 "AT_TIMESTAMP needs startingPositionTimestamp, like 2026-11-20T10:00:00Z");
  }
  if (auto f = section.optional("security")) {
    readSecurity(reporter, *f, source.security);
  }
  if (auto f = section.optional("partitionAssignor")) {
    const char* expected = "range, roundrobin or cooperative-sticky";
    auto text = readScalar(reporter, *f, expected);
    if (text && (*text == "range" || *text == "roundrobin" || *text == "cooperative-sticky")) {
      source.partition_assignor = *text;
    } else if (text) {
      mismatch(reporter, *f, expected);
    }
  }
  if (auto f = section.optional("librdkafka")) {
    readLibrdkafka(reporter, *f, validate_setting, source);
  }
}

} // namespace kesm::config::detail
