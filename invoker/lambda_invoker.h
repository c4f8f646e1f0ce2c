#pragma once

// The AWS Lambda Invoke API (protocol awsLambda, docs/functions.md): POST
// /2015-03-31/functions/NAME/invocations[?Qualifier=Q] with X-Amz-Invocation-Type:
// RequestResponse, the same Kafka event as lambdaEvent, SigV4-signed per request (service
// "lambda"). Transport and the classification of answers are the HTTP invoker's (one code path
// for both protocols); this file adds the request side. Each invoker is owned by one thread
// (as every FunctionInvoker); the credentials provider is shared by a mapping's invokers.

#include "aws/credentials.h"
#include "invoker/invoker.h"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace kesm::invoker {

struct LambdaInvokerOptions {
  std::string function_name; // name, ACCOUNT:function:NAME or ARN, as configured
  std::string qualifier;     // empty: none
  std::string region;        // resolved (lambdaRegion)
  // The event, transport and answer handling, as for lambdaEvent; `http.url` is the endpoint,
  // scheme://host[:port], resolved (lambdaEndpoint). target, headers and sign are set here.
  HttpInvokerOptions http;
  // Shared by the invokers of one mapping; thread-safe.
  std::shared_ptr<aws::CredentialsProvider> credentials;
  // The signing time; the system clock unless a test sets it.
  std::function<std::chrono::system_clock::time_point()> now;
};

// "/2015-03-31/functions/arn%3Aaws%3Alambda%3A...%3Amy-fn/invocations?Qualifier=live": the
// name percent-encoded once as botocore does (all but RFC 3986 unreserved characters).
std::string lambdaInvokeTarget(const std::string& function_name, const std::string& qualifier);

// The configured region, else AWS_REGION, else AWS_DEFAULT_REGION (looked up by `env`).
// Throws std::runtime_error when none is set.
std::string lambdaRegion(const std::string& configured,
                         const std::function<std::optional<std::string>(const std::string&)>& env);

// The configured endpoint without a trailing '/', else https://lambda.REGION.amazonaws.com.
std::string lambdaEndpoint(const std::string& configured, const std::string& region);

// The Host header a client sends for this endpoint (the port unless the scheme's default).
std::string hostHeader(const std::string& endpoint);

// The HTTP invoker's options for these: target, fixed headers and the SigV4 hook.
HttpInvokerOptions lambdaHttpOptions(const LambdaInvokerOptions& options);

std::unique_ptr<FunctionInvoker> makeLambdaInvoker(const LambdaInvokerOptions& options);

// One HTTP exchange for the credential chain (STS, the container endpoint) over net::HttpClient,
// with a 10 s timeout and TLS verified against the system store.
aws::HttpAnswer fetchForCredentials(const aws::HttpCall& call);

} // namespace kesm::invoker
