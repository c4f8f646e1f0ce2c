// The awsLambda case of invokerFactory: what it resolves at start (region, credential source)
// and the startup errors when something is missing. The process environment is the input here.

#include "poller/invoker_factory.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <stdexcept>

using namespace kesm;

namespace {

void clearAws() {
  for (const char* name :
       {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_REGION", "AWS_DEFAULT_REGION"}) {
    unsetenv(name);
  }
  setenv("HOME", "/nonexistent-kesm-home", 1);
}

config::Mapping lambdaMapping(std::string region) {
  config::Mapping m;
  m.name = "orders";
  m.source.bootstrap_servers = {"127.0.0.1:9092"};
  m.function.protocol = config::FunctionProtocol::kAwsLambda;
  m.function.lambda.function_name = "my-fn";
  m.function.lambda.region = std::move(region);
  m.function.lambda.endpoint = "http://127.0.0.1:9";
  return m;
}

} // namespace

TEST_CASE("awsLambda factory: region and credentials are startup errors, resolved once", "[unit]") {
  const char* home = std::getenv("HOME");
  const std::string saved_home = home == nullptr ? "" : home;
  clearAws();
  CHECK_THROWS_WITH(poller::invokerFactory(lambdaMapping("")), Catch::Contains("no AWS region"));
  setenv("AWS_DEFAULT_REGION", "eu-west-1", 1);
  CHECK_THROWS_WITH(poller::invokerFactory(lambdaMapping("")),
                    Catch::Contains("no AWS credentials"));
  setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "factory-secret", 1);
  poller::InvokerFactory factory = poller::invokerFactory(lambdaMapping(""));
  REQUIRE(factory);
  CHECK(factory() != nullptr);
  CHECK(factory() != nullptr); // one per poller, from the one provider
  clearAws();
  setenv("HOME", saved_home.c_str(), 1);
}
