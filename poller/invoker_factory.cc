#include "poller/invoker_factory.h"

#include "common/log.h"
#include "invoker/cloudevents.h"
#include "invoker/lambda_invoker.h"
#include "kafka/rdkafka_adapter.h"
#include "poller/poller.h"

#include <stdexcept>
#include <string>

namespace kesm::poller {

namespace {

// What lambdaEvent and awsLambda share: the event, its transport and how answers are read.
invoker::HttpInvokerOptions httpOptions(const config::Mapping& mapping) {
  invoker::HttpInvokerOptions opts;
  opts.url = mapping.function.url;
  opts.timeout = mapping.function.timeout;
  opts.bootstrap_servers = kafka::joinServers(mapping.source.bootstrap_servers);
  opts.format = eventFormat(mapping);
  opts.detect_error_body = mapping.function.detect_error_body;
  opts.log_name = mapping.name;
  opts.report_batch_item_failures = mapping.report_batch_item_failures;
  opts.tls = functionTlsOptions(mapping.function);
  return opts;
}

InvokerFactory lambdaEventFactory(const config::Mapping& mapping) {
  return [opts = httpOptions(mapping)] { return invoker::makeHttpInvoker(opts); };
}

// docs/functions.md, "CloudEvents (cloudEvents)".
InvokerFactory cloudEventsFactory(const config::Mapping& mapping) {
  const config::CloudEventsConfig& ce = mapping.function.cloud_events;
  invoker::CloudEventsInvokerOptions opts;
  opts.url = mapping.function.url;
  opts.tls = functionTlsOptions(mapping.function);
  opts.timeout = mapping.function.timeout;
  opts.mode = ce.mode == config::CloudEventsMode::kBatch ? invoker::CloudEventsMode::kBatch
                                                         : invoker::CloudEventsMode::kBinary;
  opts.source_prefix = ce.source.empty() ? "/kesm/mappings/" + mapping.name : ce.source;
  opts.type = ce.type;
  invoker::makeCloudEventsInvoker(opts); // a TLS file that cannot be read fails the start
  return [opts] { return invoker::makeCloudEventsInvoker(opts); };
}

// One credential provider per mapping, shared by its invokers (they sign concurrently). The
// region, endpoint and credential source are resolved here, at start: what is missing is a
// startup error.
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
  opts.http = httpOptions(mapping);
  opts.http.url = invoker::lambdaEndpoint(lambda.endpoint, opts.region);
  opts.credentials = aws::makeDefaultChain(environment, opts.region);
  opts.now = environment.now;
  log(LogLevel::kInfo, "invoker", mapping.name, ": awsLambda ", lambda.function_name, " at ",
      opts.http.url, " (", opts.region, "), AWS credentials from ", opts.credentials->source());
  try {
    invoker::makeLambdaInvoker(opts); // fails now, not in a poller thread
  } catch (const std::exception& e) {
    throw std::runtime_error("mapping " + mapping.name + ": awsLambda endpoint " + opts.http.url +
                             ": " + e.what());
  }
  return [opts] { return invoker::makeLambdaInvoker(opts); };
}

} // namespace

net::TlsOptions functionTlsOptions(const config::FunctionConfig& function) {
  net::TlsOptions tls;
  if (!config::usesHttps(function)) {
    return tls;
  }
  if (function.tls) {
    tls.ca_file = function.tls->ca_file;
    tls.cert_file = function.tls->certificate_file;
    tls.key_file = function.tls->key_file;
    tls.server_name = function.tls->server_name;
  }
  // Once per mapping, not per poller: the system store alone is 144 certificates to parse.
  try {
    tls.context = net::loadTlsContext(tls);
  } catch (const std::exception& e) {
    std::string where;
    if (function.tls && !function.tls->at.key.empty()) {
      where = function.tls->at.key +
              (function.tls->at.line > 0 ? " (line " + std::to_string(function.tls->at.line) + ")"
                                         : "") +
              ": ";
    }
    throw std::runtime_error(where + e.what());
  }
  return tls;
}

InvokerFactory invokerFactory(const config::Mapping& mapping) {
  switch (mapping.function.protocol) {
  case config::FunctionProtocol::kLambdaEvent:
    return lambdaEventFactory(mapping);
  case config::FunctionProtocol::kAwsLambda:
    return awsLambdaFactory(mapping);
  case config::FunctionProtocol::kCloudEvents:
    return cloudEventsFactory(mapping);
  }
  throw std::runtime_error("unknown function protocol");
}

} // namespace kesm::poller
