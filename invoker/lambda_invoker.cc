#include "invoker/lambda_invoker.h"

#include "aws/sigv4.h"
#include "net/http.h"

#include <stdexcept>
#include <utility>

namespace kesm::invoker {

std::string lambdaInvokeTarget(const std::string& function_name, const std::string& qualifier) {
  std::string target = "/2015-03-31/functions/" + aws::uriEncode(function_name) + "/invocations";
  if (!qualifier.empty()) {
    target += "?Qualifier=" + aws::uriEncode(qualifier);
  }
  return target;
}

std::string lambdaRegion(const std::string& configured,
                         const std::function<std::optional<std::string>(const std::string&)>& env) {
  if (!configured.empty()) {
    return configured;
  }
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (auto value = env(name); value && !value->empty()) {
      return *value;
    }
  }
  throw std::runtime_error("no AWS region: set function.lambda.region, AWS_REGION or "
                           "AWS_DEFAULT_REGION, or name the function by its ARN");
}

std::string lambdaEndpoint(const std::string& configured, const std::string& region) {
  std::string endpoint =
      configured.empty() ? "https://lambda." + region + ".amazonaws.com" : configured;
  while (!endpoint.empty() && endpoint.back() == '/') {
    endpoint.pop_back();
  }
  return endpoint;
}

std::string hostHeader(const std::string& endpoint) {
  const net::Url url = net::parseUrl(endpoint);
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  const std::uint16_t default_port = url.scheme == net::Scheme::kHttps ? 443 : 80;
  return url.port == default_port ? host : host + ":" + std::to_string(url.port);
}

HttpInvokerOptions lambdaHttpOptions(const LambdaInvokerOptions& options) {
  HttpInvokerOptions http = options.http;
  http.target = lambdaInvokeTarget(options.function_name, options.qualifier);
  // Content-Type is sent as given, so it is signed too.
  http.headers = {{"Content-Type", "application/json"},
                  {"X-Amz-Invocation-Type", "RequestResponse"}};
  if (!options.credentials) {
    throw std::invalid_argument("awsLambda needs a credentials provider");
  }
  auto now = options.now ? options.now : [] { return std::chrono::system_clock::now(); };
  http.sign = [credentials = options.credentials, region = options.region,
               host = hostHeader(options.http.url), now](const OutgoingRequest& request) {
    aws::SigningRequest signing{request.method, request.target, {{"Host", host}}, request.body};
    signing.headers.insert(signing.headers.end(), request.headers.begin(), request.headers.end());
    aws::SigningParams params;
    params.region = region;
    params.service = "lambda";
    params.time = now();
    const aws::SignedHeaders s = aws::sign(signing, credentials->get(), params);
    HeaderList added = {{"X-Amz-Date", s.amz_date}};
    if (!s.security_token.empty()) {
      added.emplace_back("X-Amz-Security-Token", s.security_token);
    }
    added.emplace_back("Authorization", s.authorization);
    return added;
  };
  return http;
}

std::unique_ptr<FunctionInvoker> makeLambdaInvoker(const LambdaInvokerOptions& options) {
  return makeHttpInvoker(lambdaHttpOptions(options));
}

aws::HttpAnswer fetchForCredentials(const aws::HttpCall& call) {
  aws::HttpAnswer answer;
  try {
    net::Url url = net::parseUrl(call.url);
    const std::string target = url.target;
    net::HttpClient client(std::move(url));
    net::HttpResult result =
        client.request(call.method, target, call.body, call.headers, std::chrono::seconds(10));
    if (!result.transportOk()) {
      answer.error = result.error_message;
      return answer;
    }
    answer.status = result.response.status;
    answer.body = std::move(result.response.body);
  } catch (const std::exception& e) {
    answer.error = e.what();
  }
  return answer;
}

} // namespace kesm::invoker
