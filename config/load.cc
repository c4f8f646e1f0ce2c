#include "config/bounds.h"
#include "config/config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

// The I/O of the config component: the file itself, the secrets it names and the TLS files.

namespace kesm::config {

Config loadConfigFile(const std::string& path, const SettingValidator& validate_setting) {
  std::string text = detail::readCapped(path);
  Config config = parseConfig(text, path, validate_setting);
  loadSecrets(config);
  return config;
}

namespace {

// The whole file, or the reason it cannot be read.
std::optional<std::string> readWholeFile(const std::string& path, std::string& error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      error = std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) {
      break;
    }
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > 1024 * 1024) {
      error = "larger than 1 MiB";
      ::close(fd);
      return std::nullopt;
    }
  }
  ::close(fd);
  return text;
}

Diagnostic at(const Config& config, const Location& where, std::string rule) {
  return Diagnostic{config.file, where.line, where.column, where.key, std::move(rule)};
}

void loadSecret(const Config& config, SecretSource& secret, std::vector<Diagnostic>& errors) {
  std::string error;
  switch (secret.kind) {
  case SecretSource::Kind::kNone:
  case SecretSource::Kind::kLiteral:
    return;
  case SecretSource::Kind::kFile: {
    auto text = readWholeFile(secret.ref, error);
    if (!text) {
      errors.push_back(at(config, secret.at, "cannot read " + secret.ref + ": " + error));
      return;
    }
    // Files written by `echo` end in a newline that is not part of the secret.
    while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) {
      text->pop_back();
    }
    secret.value = std::move(*text);
    break;
  }
  case SecretSource::Kind::kEnv: {
    const char* value = std::getenv(secret.ref.c_str());
    if (value == nullptr) {
      errors.push_back(at(config, secret.at, "environment variable " + secret.ref + " is not set"));
      return;
    }
    secret.value = value;
    break;
  }
  }
  if (secret.value.empty()) {
    errors.push_back(at(config, secret.at,
                        (secret.kind == SecretSource::Kind::kFile ? "file " : "variable ") +
                            secret.ref + " is empty"));
  }
}

void checkReadable(const Config& config, const std::string& path, const Location& where,
                   std::vector<Diagnostic>& errors) {
  std::string error;
  if (!path.empty() && !readWholeFile(path, error)) {
    errors.push_back(at(config, where, "cannot read " + path + ": " + error));
  }
}

} // namespace

void loadSecrets(Config& config) {
  std::vector<Diagnostic> errors;
  for (auto& mapping : config.mappings) {
    auto& security = mapping.source.security;
    if (security.sasl) {
      loadSecret(config, security.sasl->username, errors);
      loadSecret(config, security.sasl->password, errors);
    }
    if (security.tls) {
      auto& tls = *security.tls;
      loadSecret(config, tls.key_password, errors);
      checkReadable(config, tls.ca_file, tls.ca_file_at, errors);
      checkReadable(config, tls.certificate_file, tls.certificate_file_at, errors);
      checkReadable(config, tls.key_file, tls.key_file_at, errors);
    }
    if (const auto& fn_tls = mapping.function.tls) { // their PEM is checked when kesm starts
      checkReadable(config, fn_tls->ca_file, fn_tls->at, errors);
      checkReadable(config, fn_tls->certificate_file, fn_tls->at, errors);
      checkReadable(config, fn_tls->key_file, fn_tls->at, errors);
    }
  }
  if (!errors.empty()) {
    throw ConfigError(std::move(errors));
  }
}

} // namespace kesm::config
