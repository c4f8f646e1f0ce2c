#include "poller/invoker_factory.h"

#include "common/log.h"
#include "invoker/lambda_invoker.h"
#include "kafka/rdkafka_adapter.h"
#include "poller/poller.h"

#include <stdexcept>

namespace kesm::poller {

namespace {

InvokerFactory lambdaEventFactory(const config::Mapping& mapping) {
  invoker::HttpInvokerOptions opts;
  opts.url = mapping.function.url;
  opts.timeout = mapping.function.timeout;
  opts.bootstrap_servers = kafka::joinServers(mapping.source.bootstrap_servers);
  opts.format = eventFormat(mapping);
  opts.detect_error_body = mapping.function.detect_error_body;
  opts.log_name = mapping.name;
  return [opts] { return invoker::makeHttpInvoker(opts); };
}

// One credential provider per mapping, shared by its invokers (they sign concurrently). The
// region, endpoint and credential source are resolved here, at start: what is missing is a
// startup error. TODO(merge): pass functionTlsOptions(mapping.function) once the https helper's
// TlsOptions plumbing is in main (the HTTP invoker then takes TLS options for the endpoint).
InvokerFactory awsLambdaFactory(const config::Mapping& mapping) {
  const config::AwsLambdaConfig& lambda = mapping.function.lambda;
  const aws::CredentialsEnvironment environment = aws::systemEnvironment(
      invoker::fetchForCredentials, [name = mapping.name](const std::string& message) {
        log(LogLevel::kWarn, "invoker", name, ": ", message);
      });
  invoker::LambdaInvokerOptions opts;
  opts.function_name = lambda.function_name;
  opts.qualifier = lambda.qualifier;
  opts.region = invoker::lambdaRegion(lambda.region, environment.env);
  opts.endpoint = invoker::lambdaEndpoint(lambda.endpoint, opts.region);
  opts.timeout = mapping.function.timeout;
  opts.bootstrap_servers = kafka::joinServers(mapping.source.bootstrap_servers);
  opts.format = eventFormat(mapping);
  opts.detect_error_body = mapping.function.detect_error_body;
  opts.log_name = mapping.name;
  opts.credentials = aws::makeDefaultChain(environment, opts.region);
  opts.now = environment.now;
  log(LogLevel::kInfo, "invoker", mapping.name, ": awsLambda ", lambda.function_name, " at ",
      opts.endpoint, " (", opts.region, "), AWS credentials from ", opts.credentials->source());
  try {
    invoker::makeLambdaInvoker(opts); // fails now, not in a poller thread (an https endpoint
                                      // until the invoker speaks TLS)
  } catch (const std::exception& e) {
    throw std::runtime_error("mapping " + mapping.name + ": awsLambda endpoint " + opts.endpoint +
                             ": " + e.what());
  }
  return [opts] { return invoker::makeLambdaInvoker(opts); };
}

} // namespace

InvokerFactory invokerFactory(const config::Mapping& mapping) {
  switch (mapping.function.protocol) {
  case config::FunctionProtocol::kLambdaEvent:
    return lambdaEventFactory(mapping);
  case config::FunctionProtocol::kAwsLambda:
    return awsLambdaFactory(mapping);
  case config::FunctionProtocol::kCloudEvents:
    throw std::runtime_error("protocol cloudEvents is not built yet");
  }
  throw std::runtime_error("unknown function protocol");
}

} // namespace kesm::poller
