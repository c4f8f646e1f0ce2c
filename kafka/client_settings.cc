#include "kafka/kafka.h"

namespace kesm::kafka {

using config::SaslMechanism;
using config::SecretSource;
using config::SecurityProtocol;

std::vector<std::pair<std::string, std::string>>
clientSettings(const config::SourceConfig& source) {
  std::string servers;
  for (const auto& s : source.bootstrap_servers) {
    servers += (servers.empty() ? "" : ",") + s;
  }
  std::vector<std::pair<std::string, std::string>> out{{"bootstrap.servers", servers}};
  const auto& security = source.security;
  switch (security.protocol) {
  case SecurityProtocol::kPlaintext:
    out.emplace_back("security.protocol", "plaintext");
    break;
  case SecurityProtocol::kSsl:
    out.emplace_back("security.protocol", "ssl");
    break;
  case SecurityProtocol::kSaslPlaintext:
    out.emplace_back("security.protocol", "sasl_plaintext");
    break;
  case SecurityProtocol::kSaslSsl:
    out.emplace_back("security.protocol", "sasl_ssl");
    break;
  }
  if (security.sasl) {
    const char* mechanism = security.sasl->mechanism == SaslMechanism::kPlain ? "PLAIN"
                            : security.sasl->mechanism == SaslMechanism::kScramSha256
                                ? "SCRAM-SHA-256"
                                : "SCRAM-SHA-512";
    out.emplace_back("sasl.mechanisms", mechanism);
    out.emplace_back("sasl.username", security.sasl->username.value);
    out.emplace_back("sasl.password", security.sasl->password.value);
  }
  if (security.tls) {
    const auto& tls = *security.tls;
    if (!tls.ca_file.empty()) {
      out.emplace_back("ssl.ca.location", tls.ca_file);
    }
    if (!tls.certificate_file.empty()) {
      out.emplace_back("ssl.certificate.location", tls.certificate_file);
      out.emplace_back("ssl.key.location", tls.key_file);
    }
    if (tls.key_password.kind != SecretSource::Kind::kNone) {
      out.emplace_back("ssl.key.password", tls.key_password.value);
    }
    out.emplace_back("ssl.endpoint.identification.algorithm",
                     tls.verify_hostname ? "https" : "none");
  }
  for (const auto& kv : source.librdkafka) {
    out.push_back(kv);
  }
  return out;
}

} // namespace kesm::kafka
