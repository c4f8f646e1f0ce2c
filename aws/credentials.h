#pragma once

// AWS credentials found as the AWS SDKs find them, in this order (docs/functions.md):
//  1. environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+ AWS_SESSION_TOKEN];
//  2. the shared credentials file, then the config file, profile AWS_PROFILE (else "default"):
//     AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials), AWS_CONFIG_FILE (~/.aws/config);
//  3. web identity (IRSA): AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN [+ AWS_ROLE_SESSION_NAME]
//     through STS AssumeRoleWithWebIdentity (unsigned); STS at AWS_ENDPOINT_URL_STS, else
//     AWS_ENDPOINT_URL, else https://sts.REGION.amazonaws.com;
//  4. container credentials (EKS Pod Identity, ECS): AWS_CONTAINER_CREDENTIALS_FULL_URI with
//     AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or AWS_CONTAINER_AUTHORIZATION_TOKEN, or
//     AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (http://169.254.170.2).
// The source is chosen once, at start, from the environment and the files (no network then);
// temporary credentials (3, 4, and files/env with no expiry are never refreshed) are fetched on
// first use and again before they expire. Everything the chain reads is injected
// (CredentialsEnvironment), so the tests need no network and no real clock.
//
// Secrets (secret keys, session tokens, web identity tokens, authorization tokens) are never
// logged nor put into an exception's what(); errors name sources, files, URLs and statuses.

#include "aws/sigv4.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kesm::aws {

using TimePoint = std::chrono::system_clock::time_point;

struct HttpCall {
  std::string method; // "GET", "POST"
  std::string url;    // http[s]://host[:port]/path?query
  Headers headers;
  std::string body;
};

struct HttpAnswer {
  int status = 0; // 0: no answer (see error)
  std::string body;
  std::string error; // the transport error when status == 0; never a secret
};

struct CredentialsEnvironment {
  // An environment variable; nullopt when unset. Empty values count as unset.
  std::function<std::optional<std::string>(const std::string& name)> env;
  // A whole file; nullopt when it does not exist or cannot be read.
  std::function<std::optional<std::string>(const std::string& path)> read_file;
  // One HTTP exchange (STS, the container endpoint), within a few seconds.
  std::function<HttpAnswer(const HttpCall& call)> http;
  std::function<TimePoint()> now;
  // Told about a failed refresh while the current credentials still work (may be empty).
  std::function<void(const std::string& message)> warn;
};

// getenv, whole-file reads and the system clock; `http` is the caller's (aws/ has no HTTP),
// so is `warn` (aws/ does not log).
CredentialsEnvironment systemEnvironment(std::function<HttpAnswer(const HttpCall&)> http,
                                         std::function<void(const std::string&)> warn = {});

// Credentials and when they stop working (nullopt: long-term keys).
struct TimedCredentials {
  Credentials credentials;
  std::optional<TimePoint> expiration;
};

// Thread-safe: the pollers of a mapping sign concurrently through one provider.
class CredentialsProvider {
public:
  virtual ~CredentialsProvider() = default;
  // Current credentials; fetches or refreshes when needed (blocking; concurrent callers wait
  // for one fetch). Throws std::runtime_error (no secret in it) when none can be had.
  virtual Credentials get() = 0;
  // "environment", "profile default (/root/.aws/credentials)", "web identity (role ARN)", ...
  virtual std::string source() const = 0;
};

// Refreshes at expiration - min(5 min, half the lifetime): long-lived credentials 5 minutes
// before they expire, short ones halfway. A failed refresh keeps the current credentials
// while they are still valid (logged; tried again 10 s later) and throws after.
TimePoint refreshTime(TimePoint obtained, TimePoint expiration);

// A provider over a fetch function, with the caching and refresh above. `fetch` throws
// std::runtime_error on failure.
std::shared_ptr<CredentialsProvider>
makeRefreshingProvider(std::string source, std::function<TimedCredentials()> fetch,
                       std::function<TimePoint()> now,
                       std::function<void(const std::string&)> warn = {});

// The chain above. `region` locates STS when no endpoint is set (empty: the global endpoint).
// Throws std::runtime_error at start when no source is configured, or when the chosen one is
// malformed (an AWS_PROFILE that no file has, a container URI that is not allowed).
std::shared_ptr<CredentialsProvider> makeDefaultChain(const CredentialsEnvironment& environment,
                                                      const std::string& region);

// Building blocks, exposed for the tests.

// INI as the AWS CLI/SDKs write it: "[section]", "key = value", '#'/';' comment lines;
// indented lines continue the previous key (nested settings like "s3 =") and are skipped.
// Keys are lower-cased, values trimmed; a later duplicate wins. Throws std::runtime_error
// naming the line number (not its text: it may hold a secret) on any other line.
using IniSections = std::map<std::string, std::map<std::string, std::string>>;
IniSections parseIni(std::string_view text);

// The Credentials of an STS AssumeRole* XML answer (Boost.PropertyTree). Throws
// std::runtime_error on an error answer (its Code and Message) or a malformed one.
TimedCredentials parseStsCredentials(std::string_view xml, std::string_view action);

// The container endpoint's JSON answer (AccessKeyId, SecretAccessKey, Token, Expiration).
TimedCredentials parseContainerCredentials(std::string_view json);

// "2026-12-02T03:40:00Z" (fractional seconds and a numeric offset accepted). Throws.
TimePoint parseIso8601(std::string_view text);

} // namespace kesm::aws
