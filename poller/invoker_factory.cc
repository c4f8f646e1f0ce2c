#include "poller/invoker_factory.h"

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

} // namespace

InvokerFactory invokerFactory(const config::Mapping& mapping) {
  switch (mapping.function.protocol) {
  case config::FunctionProtocol::kLambdaEvent:
    return lambdaEventFactory(mapping);
  case config::FunctionProtocol::kAwsLambda:
    throw std::runtime_error("protocol awsLambda is not built yet");
  case config::FunctionProtocol::kCloudEvents:
    throw std::runtime_error("protocol cloudEvents is not built yet");
  }
  throw std::runtime_error("unknown function protocol");
}

} // namespace kesm::poller
