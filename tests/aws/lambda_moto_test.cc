// kesm's awsLambda protocol against moto's server (tests/aws/moto.sh starts and provisions it,
// with signature checking on): the mock Kafka cluster feeds a mapping whose function is a moto
// Lambda function, with each kind of credentials; moto's request recording shows what arrived.

#include "app/runtime.h"
#include "harness.h"
#include "kafka/kafka.h"
#include "net/http.h"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

using namespace kesm;
using namespace kesm::test;

namespace {

boost::json::object motoState() {
  std::ifstream in(std::string(KESM_MOTO_DIR) + "/run/state.json");
  if (!in) {
    throw std::runtime_error("no " KESM_MOTO_DIR "/run/state.json: run tests/aws/moto.sh start");
  }
  std::stringstream text;
  text << in.rdbuf();
  return boost::json::parse(text.str()).as_object();
}

std::string str(const boost::json::object& o, const char* a, const char* b = nullptr) {
  const boost::json::value& v = b == nullptr ? o.at(a) : o.at(a).as_object().at(b);
  return std::string(v.as_string());
}

// Only what the scenario sets: no credential source leaks in from the test's environment.
void clearAwsEnvironment(const std::string& home) {
  for (const char* name :
       {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_REGION",
        "AWS_DEFAULT_REGION"}) {
    unsetenv(name);
  }
  setenv("HOME", home.c_str(), 1); // no ~/.aws of whoever runs the tests
}

std::string motoGet(const std::string& endpoint, const std::string& target) {
  net::HttpClient client(net::parseHttpUrl(endpoint + "/"));
  net::HttpResult r = client.request("GET", target, "", {}, std::chrono::seconds(10));
  if (!r.transportOk()) {
    throw std::runtime_error("moto " + target + ": " + r.error_message);
  }
  return r.response.body;
}

void motoPost(const std::string& endpoint, const std::string& target,
              const std::string& body = "") {
  net::HttpClient client(net::parseHttpUrl(endpoint + "/"));
  net::HttpResult r = client.request("POST", target, body, {}, std::chrono::seconds(10));
  if (!r.transportOk() || r.response.status != 200) {
    throw std::runtime_error("moto " + target + " failed: " + r.error_message + r.response.body);
  }
}

// The Invoke requests moto recorded (MOTO_ENABLE_RECORDING): one JSON document per line, with
// the method, the URL and the body (base64 when body_encoded).
struct Invocation {
  std::string url;
  std::string body;
  std::string authorization;  // as received
  std::string security_token; // X-Amz-Security-Token, "" when none
};

std::string unbase64(const std::string& s) {
  std::string out;
  unsigned bits = 0;
  int count = 0;
  for (char c : s) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    }
    if (v < 0) {
      continue; // '=' padding
    }
    bits = (bits << 6) | static_cast<unsigned>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xFF);
    }
  }
  return out;
}

std::vector<Invocation> recordedInvocations(const std::string& endpoint) {
  std::vector<Invocation> out;
  std::istringstream lines(motoGet(endpoint, "/moto-api/recorder/download-recording"));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) {
      continue;
    }
    boost::json::object entry = boost::json::parse(line).as_object();
    const std::string url(entry.at("url").as_string());
    if (url.find("/invocations") == std::string::npos) {
      continue;
    }
    Invocation inv{url, "", "", ""};
    if (const auto* headers = entry.if_contains("headers"); headers != nullptr) {
      for (const auto& [name, value] : headers->as_object()) {
        if (value.is_string() && name == "Authorization") {
          inv.authorization = std::string(value.as_string());
        } else if (value.is_string() && name == "X-Amz-Security-Token") {
          inv.security_token = std::string(value.as_string());
        }
      }
    }
    if (const auto* body = entry.if_contains("body"); body != nullptr && body->is_string()) {
      inv.body = std::string(body->as_string());
      const auto* encoded = entry.if_contains("body_encoded");
      if (encoded != nullptr && encoded->is_bool() && encoded->as_bool()) {
        inv.body = unbase64(inv.body);
      }
    }
    out.push_back(std::move(inv));
  }
  return out;
}

std::string base64(const std::string& s) {
  static const char* kTable = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(s[i]) << 16) |
                       (static_cast<unsigned char>(s[i + 1]) << 8) |
                       static_cast<unsigned char>(s[i + 2]);
    out += {kTable[n >> 18], kTable[(n >> 12) & 63], kTable[(n >> 6) & 63], kTable[n & 63]};
  }
  if (i + 1 == s.size()) {
    const unsigned n = static_cast<unsigned char>(s[i]) << 16;
    out += {kTable[n >> 18], kTable[(n >> 12) & 63], '=', '='};
  } else if (i + 2 == s.size()) {
    const unsigned n =
        (static_cast<unsigned char>(s[i]) << 16) | (static_cast<unsigned char>(s[i + 1]) << 8);
    out += {kTable[n >> 18], kTable[(n >> 12) & 63], kTable[(n >> 6) & 63], '='};
  }
  return out;
}

std::string lambdaMappingYaml(const std::string& name, const std::string& bootstrap,
                              const std::string& topic, const std::string& lambda_lines) {
  MappingYaml m = testMapping(name, bootstrap, topic, "UNUSED", 1, 1);
  m.retry.set("maximumRetryAttempts", 2);
  std::string yaml = configYaml(m);
  const std::string url_line = "      url: UNUSED\n";
  const auto at = yaml.find(url_line);
  REQUIRE(at != std::string::npos);
  yaml.replace(at, url_line.size(), "      protocol: awsLambda\n      lambda:\n" + lambda_lines);
  return yaml;
}

// Runs a mapping over 2 x 10 numbered records and waits until they are all committed; returns
// the Invoke requests moto recorded meanwhile. `unauthenticated`: how many of kesm's first
// actions moto lets through unchecked (then every action is checked again).
std::vector<Invocation> deliverThrough(const boost::json::object& state,
                                       const std::string& lambda_lines, const std::string& topic,
                                       int unauthenticated = 0) {
  const std::string endpoint = str(state, "endpoint");
  app::MockKafkaCluster cluster(1);
  cluster.createTopic(topic, 2);
  produceNumbered(cluster.bootstrapServers(), topic, 2, 10);
  motoPost(endpoint, "/moto-api/recorder/reset-recording");
  motoPost(endpoint, "/moto-api/recorder/start-recording");
  motoPost(endpoint, "/moto-api/reset-auth", std::to_string(unauthenticated));
  auto config =
      config::parseConfig(lambdaMappingYaml(topic, cluster.bootstrapServers(), topic, lambda_lines),
                          "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  const bool committed = waitUntil(60s, [&] {
    auto c = committedOffsets(config.mappings[0]);
    return c.count(0) && c.at(0) == 10 && c.count(1) && c.at(1) == 10;
  });
  const std::string status = scrape(runtime, "/status");
  const std::string metrics = scrape(runtime, "/metrics");
  REQUIRE(runtime.stop());
  motoPost(endpoint, "/moto-api/recorder/stop-recording");
  INFO(status);
  INFO(metrics);
  REQUIRE(committed);
  return recordedInvocations(endpoint);
}

// Every Invoke went to `url_part`, signed with `key_id` (a prefix, for keys STS made during
// the test) and `token`, and together they carried the 20 records.
void checkAllRecordsArrived(const std::vector<Invocation>& invocations, const std::string& topic,
                            const std::string& url_part, const std::string& key_id,
                            const std::string& token) {
  REQUIRE(!invocations.empty());
  std::string bodies;
  for (const auto& inv : invocations) {
    CAPTURE(inv.url);
    CHECK(inv.url.find(url_part) != std::string::npos);
    CHECK(inv.authorization.rfind("AWS4-HMAC-SHA256 Credential=" + key_id, 0) == 0);
    if (token == "*") {
      CHECK(!inv.security_token.empty());
    } else {
      CHECK(inv.security_token == token);
    }
    bodies += inv.body;
  }
  CHECK(bodies.find("\"eventSource\":\"SelfManagedKafka\"") != std::string::npos);
  for (int p = 0; p < 2; ++p) {
    CHECK(bodies.find("\"" + topic + "-" + std::to_string(p) + "\"") != std::string::npos);
    for (int o = 0; o < 10; ++o) {
      const std::string value = "p" + std::to_string(p) + "-" + std::to_string(o);
      CAPTURE(value);
      CHECK(bodies.find("\"value\":\"" + base64(value) + "\"") != std::string::npos);
    }
  }
}

} // namespace

TEST_CASE("awsLambda with static credentials from the environment invokes the moto function",
          "[aws]") {
  const auto state = motoState();
  clearAwsEnvironment(writeTempFile("moto-home", "") + ".d");
  setenv("AWS_ACCESS_KEY_ID", str(state, "static", "id").c_str(), 1);
  setenv("AWS_SECRET_ACCESS_KEY", str(state, "static", "secret").c_str(), 1);
  const std::string lines = "        functionName: " + str(state, "function_name") +
                            "\n        region: " + str(state, "region") +
                            "\n        endpoint: " + str(state, "endpoint") + "\n";
  auto invocations = deliverThrough(state, lines, "static");
  checkAllRecordsArrived(invocations, "static", "/2015-03-31/functions/kesm-fn/invocations",
                         str(state, "static", "id") + "/", "");
}

TEST_CASE("awsLambda with session-token credentials reaches a function ARN with a qualifier",
          "[aws]") {
  const auto state = motoState();
  clearAwsEnvironment(writeTempFile("moto-home", "") + ".d");
  setenv("AWS_ACCESS_KEY_ID", str(state, "session", "id").c_str(), 1);
  setenv("AWS_SECRET_ACCESS_KEY", str(state, "session", "secret").c_str(), 1);
  setenv("AWS_SESSION_TOKEN", str(state, "session", "token").c_str(), 1);
  // The region comes from the ARN; ':' in the path is signed as %253A (double encoding).
  const std::string lines = "        functionName: " + str(state, "function_arn") + ":" +
                            str(state, "alias") + "\n        endpoint: " + str(state, "endpoint") +
                            "\n";
  auto invocations = deliverThrough(state, lines, "session");
  checkAllRecordsArrived(invocations, "session", "function%3Akesm-fn%3Alive/invocations",
                         str(state, "session", "id") + "/", str(state, "session", "token"));
}

TEST_CASE("awsLambda with web identity credentials from moto's STS invokes the function", "[aws]") {
  const auto state = motoState();
  clearAwsEnvironment(writeTempFile("moto-home", "") + ".d");
  // moto does not verify the token's signature. With signature checking on, moto checks every
  // action, even AssumeRoleWithWebIdentity, which AWS takes unsigned (moto reads the
  // Authorization header that is not there): moto lets exactly kesm's first action, that STS
  // call, through; the Invoke requests signed with its credentials are checked.
  const std::string token_file =
      writeTempFile("web-identity-token",
                    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a2VzbSJ9.c2ln");
  setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.c_str(), 1);
  setenv("AWS_ROLE_ARN", str(state, "role_arn").c_str(), 1);
  setenv("AWS_ENDPOINT_URL_STS", str(state, "endpoint").c_str(), 1);
  setenv("AWS_REGION", str(state, "region").c_str(), 1);
  const std::string lines = "        functionName: " + str(state, "function_name") +
                            "\n        qualifier: " + str(state, "alias") +
                            "\n        endpoint: " + str(state, "endpoint") + "\n";
  auto invocations = deliverThrough(state, lines, "webid", 1);
  // Keys STS issued to kesm: neither the user's nor the provisioning session's.
  checkAllRecordsArrived(invocations, "webid", "/functions/kesm-fn/invocations?Qualifier=live",
                         "ASIA", "*");
  for (const auto& inv : invocations) {
    CHECK(inv.authorization.find(str(state, "session", "id")) == std::string::npos);
  }
}

TEST_CASE("awsLambda with a wrong secret is refused by moto and disables the mapping with the "
          "reason",
          "[aws]") {
  const auto state = motoState();
  clearAwsEnvironment(writeTempFile("moto-home", "") + ".d");
  setenv("AWS_ACCESS_KEY_ID", str(state, "static", "id").c_str(), 1);
  setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret", 1);
  app::MockKafkaCluster cluster(1);
  cluster.createTopic("wrong", 1);
  produceNumbered(cluster.bootstrapServers(), "wrong", 1, 5);
  const std::string lines = "        functionName: " + str(state, "function_name") +
                            "\n        region: " + str(state, "region") +
                            "\n        endpoint: " + str(state, "endpoint") + "\n";
  auto config =
      config::parseConfig(lambdaMappingYaml("wrong", cluster.bootstrapServers(), "wrong", lines),
                          "test.yaml", kafka::checkSetting);
  app::Runtime runtime(config, {});
  runtime.start();
  const bool disabled = waitUntil(30s, [&] {
    return scrape(runtime, "/status").find("\"name\":\"wrong\",\"state\":\"Disabled\"") !=
           std::string::npos;
  });
  const std::string status = scrape(runtime, "/status");
  REQUIRE(runtime.stop());
  INFO(status);
  CHECK(disabled);
  CHECK(status.find("HTTP 403") != std::string::npos);
  CHECK(status.find("not-the-secret") == std::string::npos);
  for (const auto& [partition, offset] : committedOffsets(config.mappings[0])) {
    CHECK(offset == -1);
  }
}
