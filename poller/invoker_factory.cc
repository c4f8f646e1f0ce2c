#include "poller/invoker_factory.h"

#include "invoker/cloudevents.h"
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
  opts.report_batch_item_failures = mapping.report_batch_item_failures;
  return [opts] { return invoker::makeHttpInvoker(opts); };
}

// docs/functions.md, "CloudEvents (cloudEvents)".
InvokerFactory cloudEventsFactory(const config::Mapping& mapping) {
  const config::CloudEventsConfig& ce = mapping.function.cloud_events;
  invoker::CloudEventsInvokerOptions opts;
  opts.url = mapping.function.url;
  // TODO(issue 18): functionTlsOptions(mapping.function) once the https helper's lands.
  opts.timeout = mapping.function.timeout;
  opts.mode = ce.mode == config::CloudEventsMode::kBatch ? invoker::CloudEventsMode::kBatch
                                                         : invoker::CloudEventsMode::kBinary;
  opts.source_prefix = ce.source.empty() ? "/kesm/mappings/" + mapping.name : ce.source;
  opts.type = ce.type;
  invoker::makeCloudEventsInvoker(opts); // a TLS file that cannot be read fails the start
  return [opts] { return invoker::makeCloudEventsInvoker(opts); };
}

} // namespace

InvokerFactory invokerFactory(const config::Mapping& mapping) {
  switch (mapping.function.protocol) {
  case config::FunctionProtocol::kLambdaEvent:
    return lambdaEventFactory(mapping);
  case config::FunctionProtocol::kAwsLambda:
    throw std::runtime_error("protocol awsLambda is not built yet");
  case config::FunctionProtocol::kCloudEvents:
    return cloudEventsFactory(mapping);
  }
  throw std::runtime_error("unknown function protocol");
}

} // namespace kesm::poller
