// The awsLambda invoker against a loopback server playing Lambda: the request (path, query,
// headers, body) and its SigV4 signature recomputed from what arrived, and the answers Lambda
// documents mapped to outcomes.

#include "aws/credentials.h"
#include "aws/sigv4.h"
#include "invoker/invoker.h"
#include "invoker/lambda_invoker.h"
#include "invoker/payload.h"
#include "net/http.h"

#include <catch2/catch.hpp>
#include <cctype>
#include <map>
#include <mutex>
#include <stdexcept>

using namespace kesm;
using namespace std::chrono_literals;

namespace {

const auto kTime = std::chrono::system_clock::from_time_t(1764644400); // 2025-12-02T03:00:00Z

Batch oneRecordBatch() {
  Batch batch;
  Record r;
  r.topic = "orders";
  r.partition = Partition{0};
  r.offset = Offset{7};
  r.value = "hello";
  batch.records.push_back(std::move(r));
  return batch;
}

struct FakeLambda {
  std::mutex mutex;
  std::vector<net::HttpRequest> requests;
  net::HttpResponse response;
  net::HttpServer server;

  FakeLambda()
      : server(
            "127.0.0.1:0",
            [this](const net::HttpRequest& request) {
              std::lock_guard lock(mutex);
              requests.push_back(request);
              return response;
            },
            [] {
              net::HttpServerOptions o;
              o.body_limit_bytes = 1 << 20;
              return o;
            }()) {
    response.status = 200;
    response.body = "null";
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(server.port()); }
};

invoker::LambdaInvokerOptions options(const std::string& endpoint,
                                      std::shared_ptr<aws::CredentialsProvider> credentials) {
  invoker::LambdaInvokerOptions o;
  o.function_name = "arn:aws:lambda:eu-west-1:123456789012:function:my-fn";
  o.qualifier = "live";
  o.region = "eu-west-1";
  o.http.url = endpoint;
  o.http.timeout = 5s;
  o.http.bootstrap_servers = "b1:9092";
  o.http.log_name = "orders";
  o.credentials = std::move(credentials);
  o.now = [] { return kTime; };
  return o;
}

std::shared_ptr<aws::CredentialsProvider> staticCredentials(std::string token = "") {
  aws::TimedCredentials c{{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token}, {}};
  return aws::makeRefreshingProvider(
      "test", [c] { return c; }, [] { return kTime; });
}

} // namespace

TEST_CASE("lambda: invoke target, region and endpoint", "[unit]") {
  CHECK(invoker::lambdaInvokeTarget("my-fn", "") == "/2015-03-31/functions/my-fn/invocations");
  CHECK(invoker::lambdaInvokeTarget("arn:aws:lambda:us-east-1:1:function:f:$LATEST", "") ==
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af%3A%24LATEST/"
        "invocations");
  CHECK(invoker::lambdaInvokeTarget("f", "v 1") ==
        "/2015-03-31/functions/f/invocations?Qualifier=v%201");
  std::map<std::string, std::string> env;
  auto lookup = [&](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  CHECK_THROWS_WITH(invoker::lambdaRegion("", lookup), Catch::Contains("no AWS region"));
  env["AWS_DEFAULT_REGION"] = "us-west-2";
  CHECK(invoker::lambdaRegion("", lookup) == "us-west-2");
  env["AWS_REGION"] = "eu-central-1";
  CHECK(invoker::lambdaRegion("", lookup) == "eu-central-1");
  CHECK(invoker::lambdaRegion("eu-west-1", lookup) == "eu-west-1");
  CHECK(invoker::lambdaEndpoint("", "eu-west-1") == "https://lambda.eu-west-1.amazonaws.com");
  CHECK(invoker::lambdaEndpoint("http://127.0.0.1:5000/", "x") == "http://127.0.0.1:5000");
  CHECK(invoker::hostHeader("http://127.0.0.1:5000") == "127.0.0.1:5000");
  CHECK(invoker::hostHeader("https://lambda.eu-west-1.amazonaws.com") ==
        "lambda.eu-west-1.amazonaws.com");
}

TEST_CASE("lambda: the request is the Invoke API, signed as sent", "[unit][http]") {
  FakeLambda fake;
  const std::string token = GENERATE(as<std::string>{}, "", "session-token/+=");
  CAPTURE(token);
  auto invoker = invoker::makeLambdaInvoker(options(fake.endpoint(), staticCredentials(token)));
  const Batch batch = oneRecordBatch();
  REQUIRE(invoker->invoke(batch).ok());
  REQUIRE(fake.requests.size() == 1);
  const net::HttpRequest& got = fake.requests[0];
  CHECK(got.method == "POST");
  CHECK(got.target == "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3A"
                      "function%3Amy-fn/invocations?Qualifier=live");
  CHECK(got.header("X-Amz-Invocation-Type") == "RequestResponse");
  CHECK(got.header("Content-Type") == "application/json");
  CHECK(got.header("X-Amz-Date") == "20251202T030000Z");
  CHECK(got.header("X-Amz-Security-Token") == token);
  CHECK(got.body == invoker::encodeLambdaKafkaEvent(batch, "b1:9092"));
  const std::string authorization = got.header("Authorization");
  CHECK(authorization.rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20251202/eu-west-1/lambda/"
                            "aws4_request, SignedHeaders=content-type;host;x-amz-date;",
                            0) == 0);
  const std::string names = token.empty() ? "content-type;host;x-amz-date;x-amz-invocation-type"
                                          : "content-type;host;x-amz-date;x-amz-invocation-type;"
                                            "x-amz-security-token";
  CHECK(authorization.find("SignedHeaders=" + names + ", Signature=") != std::string::npos);
  // Recompute the signature from what the server received (the signed headers, as they arrived;
  // the client adds Content-Length and User-Agent, which are not signed).
  aws::SigningRequest received{got.method, got.target, {}, got.body};
  for (const auto& [name, value] : got.headers) {
    std::string lower = name;
    for (char& c : lower) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (lower == "host" || lower == "content-type" || lower == "x-amz-invocation-type") {
      received.headers.emplace_back(name, value);
    }
  }
  aws::SigningParams params;
  params.region = "eu-west-1";
  params.service = "lambda";
  params.time = kTime;
  const aws::SignedHeaders expected = aws::sign(
      received, {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token}, params);
  CHECK(authorization == expected.authorization);
  // The canonical request encodes the path twice (every service but S3).
  CHECK(aws::canonicalUri(got.target, params).find("arn%253Aaws%253Alambda") != std::string::npos);
}

TEST_CASE("lambda: answers mapped as Lambda documents them", "[unit][http]") {
  FakeLambda fake;
  auto invoker = invoker::makeLambdaInvoker(options(fake.endpoint(), staticCredentials()));
  const Batch batch = oneRecordBatch();
  auto answer = [&](int status, net::Headers headers, std::string body) {
    std::lock_guard lock(fake.mutex);
    fake.response.status = status;
    fake.response.headers = std::move(headers);
    fake.response.body = std::move(body);
  };
  SECTION("429 TooManyRequestsException with Retry-After") {
    answer(429, {{"x-amzn-ErrorType", "TooManyRequestsException"}, {"Retry-After", "3"}},
           R"({"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User",)"
           R"("message":"Rate Exceeded."})");
    const auto r = invoker->invoke(batch);
    CHECK(r.outcome == invoker::InvokeOutcome::kHttpError);
    CHECK(r.http_status == 429);
    CHECK(r.retry_after == std::chrono::milliseconds(3000));
    CHECK(r.detail.find("TooManyRequestsException") != std::string::npos);
    CHECK(r.detail.find("Rate Exceeded.") != std::string::npos);
  }
  SECTION("403 InvalidSignatureException names the error, never the secret") {
    answer(403, {{"x-amzn-ErrorType", "InvalidSignatureException"}},
           R"({"message":"The request signature we calculated does not match"})");
    const auto r = invoker->invoke(batch);
    CHECK(r.outcome == invoker::InvokeOutcome::kHttpError);
    CHECK(r.http_status == 403);
    CHECK(!r.retry_after);
    CHECK(r.detail.find("HTTP 403 InvalidSignatureException") != std::string::npos);
    CHECK(r.detail.find("wJalrXUtnFEMI") == std::string::npos);
  }
  SECTION("413 RequestTooLargeException") {
    answer(413, {{"x-amzn-ErrorType", "RequestTooLargeException"}}, R"({"message":"too big"})");
    CHECK(invoker->invoke(batch).outcome == invoker::InvokeOutcome::kPayloadTooLarge);
  }
  SECTION("404 ResourceNotFoundException") {
    answer(404, {{"x-amzn-ErrorType", "ResourceNotFoundException"}}, R"({"message":"no"})");
    const auto r = invoker->invoke(batch);
    CHECK(r.http_status == 404);
    CHECK(r.detail.find("ResourceNotFoundException") != std::string::npos);
  }
  SECTION("200 with X-Amz-Function-Error") {
    answer(200, {{"X-Amz-Function-Error", "Unhandled"}},
           R"({"errorMessage":"boom","errorType":"Exception"})");
    const auto r = invoker->invoke(batch);
    CHECK(r.outcome == invoker::InvokeOutcome::kFunctionError);
    CHECK(r.detail.find("Unhandled") != std::string::npos);
  }
}

TEST_CASE("lambda: no credentials fails the attempt as unreachable, without a secret",
          "[unit][http]") {
  FakeLambda fake;
  auto failing = aws::makeRefreshingProvider(
      "web identity (role r)",
      []() -> aws::TimedCredentials { throw std::runtime_error("STS at http://sts: refused"); },
      [] { return kTime; });
  auto invoker = invoker::makeLambdaInvoker(options(fake.endpoint(), failing));
  const auto r = invoker->invoke(oneRecordBatch());
  CHECK(r.outcome == invoker::InvokeOutcome::kConnectionError);
  CHECK(r.detail.find("web identity (role r)") != std::string::npos);
  CHECK(fake.requests.empty());
}

TEST_CASE("lambda: Retry-After parsing", "[unit]") {
  CHECK(invoker::parseRetryAfter("0") == std::chrono::milliseconds(0));
  CHECK(invoker::parseRetryAfter(" 12 ") == std::chrono::milliseconds(12000));
  CHECK(invoker::parseRetryAfter("999999999") == std::chrono::milliseconds(86400000));
  CHECK(!invoker::parseRetryAfter(""));
  CHECK(!invoker::parseRetryAfter("-1"));
  CHECK(!invoker::parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"));
}
