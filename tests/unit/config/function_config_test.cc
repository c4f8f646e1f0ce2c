// function.protocol, tls, lambda, cloudEvents and functionResponseTypes: read as written, and
// every rule broken named at its place.

#include "config/config.h"
#include "kafka/kafka.h"
#include "rule_case.h"

#include <catch2/catch.hpp>

using namespace kesm::config;
using namespace kesm::config::test;

namespace {

std::string mappingWith(const std::string& function_lines, const std::string& tail = "") {
  return "mappings:\n"                      // 1
         "  - name: orders\n"               // 2
         "    source:\n"                    // 3
         "      bootstrapServers: k:9092\n" // 4
         "      topics: [orders]\n"         // 5
         "    function:\n" +                // 6
         function_lines +
         tail;
}

Config parse(const std::string& yaml) {
  return parseConfig(yaml, "kesm.yaml", kesm::kafka::checkSetting);
}

} // namespace

TEST_CASE("function config: each protocol is read as written", "[unit]") {
  SECTION("the default is lambdaEvent, with no tls") {
    auto m = parse(mappingWith("      url: http://fn:8080/\n")).mappings.at(0);
    CHECK(m.function.protocol == FunctionProtocol::kLambdaEvent);
    CHECK_FALSE(m.function.tls.has_value());
    CHECK_FALSE(m.report_batch_item_failures);
  }
  SECTION("https with tls and ReportBatchItemFailures") {
    auto m = parse(mappingWith("      url: https://fn.internal:8443/invoke\n"
                               "      tls:\n"
                               "        caFile: /etc/kesm/ca.pem\n"
                               "        certificateFile: /etc/kesm/client.pem\n"
                               "        keyFile: /etc/kesm/client.key\n"
                               "        serverName: fn.example.com\n",
                               "    functionResponseTypes: [ReportBatchItemFailures]\n"))
                 .mappings.at(0);
    CHECK(m.function.url == "https://fn.internal:8443/invoke");
    REQUIRE(m.function.tls.has_value());
    CHECK(m.function.tls->ca_file == "/etc/kesm/ca.pem");
    CHECK(m.function.tls->certificate_file == "/etc/kesm/client.pem");
    CHECK(m.function.tls->key_file == "/etc/kesm/client.key");
    CHECK(m.function.tls->server_name == "fn.example.com");
    CHECK(m.function.tls->at.line == 9);
    CHECK(m.report_batch_item_failures);
  }
  SECTION("awsLambda: the region comes from the ARN") {
    auto m = parse(mappingWith("      protocol: awsLambda\n"
                               "      lambda:\n"
                               "        functionName: "
                               "arn:aws:lambda:eu-west-1:123456789012:function:my-fn\n"
                               "        qualifier: live\n"
                               "        endpoint: http://127.0.0.1:5000\n"))
                 .mappings.at(0);
    CHECK(m.function.protocol == FunctionProtocol::kAwsLambda);
    CHECK(m.function.url.empty());
    CHECK(m.function.lambda.function_name ==
          "arn:aws:lambda:eu-west-1:123456789012:function:my-fn");
    CHECK(m.function.lambda.qualifier == "live");
    CHECK(m.function.lambda.region == "eu-west-1");
    CHECK(m.function.lambda.endpoint == "http://127.0.0.1:5000");
  }
  SECTION("awsLambda: every shape of function name AWS accepts") {
    for (const char* name : {"my-fn", "my_fn:$LATEST", "my-fn:7", "123456789012:function:my-fn",
                             "123456789012:function:my-fn:prod",
                             "arn:aws-cn:lambda:cn-north-1:123456789012:function:f:2"}) {
      INFO(name);
      auto m = parse(mappingWith(std::string("      protocol: awsLambda\n"
                                             "      lambda: {functionName: '") +
                                 name + "'}\n"))
                   .mappings.at(0);
      CHECK(m.function.lambda.function_name == name);
    }
  }
  SECTION("cloudEvents batch with its attributes") {
    auto m =
        parse(mappingWith("      protocol: cloudEvents\n"
                          "      url: http://broker-ingress/ns/default\n"
                          "      cloudEvents: {mode: batch, source: /orders, type: com.x.order}\n"))
            .mappings.at(0);
    CHECK(m.function.protocol == FunctionProtocol::kCloudEvents);
    CHECK(m.function.cloud_events.mode == CloudEventsMode::kBatch);
    CHECK(m.function.cloud_events.source == "/orders");
    CHECK(m.function.cloud_events.type == "com.x.order");
  }
  SECTION("cloudEvents defaults: binary, Knative's type") {
    auto m =
        parse(mappingWith("      protocol: cloudEvents\n      url: http://sink/\n")).mappings.at(0);
    CHECK(m.function.cloud_events.mode == CloudEventsMode::kBinary);
    CHECK(m.function.cloud_events.source.empty());
    CHECK(m.function.cloud_events.type == "dev.knative.kafka.event");
  }
}

TEST_CASE("function config: rules of protocols, tls, lambda and cloudEvents", "[unit]") {
  auto c = GENERATE_COPY(from_range(std::vector<RuleCase>{
      {.rule = "unknown protocol",
       .yaml = mappingWith("      protocol: grpc\n      url: http://fn/\n"),
       .key = "mappings[0].function.protocol",
       .line = 7,
       .column = 17,
       .message = "must be lambdaEvent, awsLambda or cloudEvents, got 'grpc'"},
      {.rule = "awsLambda with a url",
       .yaml = mappingWith("      protocol: awsLambda\n      url: http://fn/\n"
                           "      lambda: {functionName: f, region: us-east-1}\n"),
       .key = "mappings[0].function.url",
       .line = 8,
       .column = 7,
       .message = "protocol awsLambda takes no url: name the function in lambda.functionName "
                  "(and set lambda.endpoint for an endpoint other than AWS's)"},
      {.rule = "awsLambda without lambda",
       .yaml = mappingWith("      protocol: awsLambda\n"),
       .key = "mappings[0].function.lambda",
       .line = 7,
       .column = 7,
       .message = "required key is missing; name the Lambda function, with lambda.functionName"},
      {.rule = "an account that is not 12 digits",
       .yaml = mappingWith(
           "      protocol: awsLambda\n"
           "      lambda: {functionName: 'arn:aws:lambda:us-east-1:1234:function:f'}\n"),
       .key = "mappings[0].function.lambda.functionName",
       .line = 8,
       .column = 30,
       .message =
           "must be a Lambda function name (1 to 64 letters, digits, '-' or '_'), "
           "ACCOUNT:function:NAME or arn:aws:lambda:REGION:ACCOUNT:function:NAME, each "
           "optionally followed by :QUALIFIER, got 'arn:aws:lambda:us-east-1:1234:function:f'"},
      {.rule = "a name with a slash",
       .yaml = mappingWith("      protocol: awsLambda\n      lambda: {functionName: 'a/b'}\n"),
       .key = "mappings[0].function.lambda.functionName",
       .line = 8,
       .column = 30,
       .message = "must be a Lambda function name (1 to 64 letters, digits, '-' or '_'), "
                  "ACCOUNT:function:NAME or arn:aws:lambda:REGION:ACCOUNT:function:NAME, each "
                  "optionally followed by :QUALIFIER, got 'a/b'"},
      {.rule = "a qualifier twice",
       .yaml = mappingWith("      protocol: awsLambda\n"
                           "      lambda: {functionName: 'f:live', qualifier: prod}\n"),
       .key = "mappings[0].function.lambda.qualifier",
       .line = 8,
       .column = 40,
       .message = "functionName already ends with a qualifier; give it once, in one place"},
      {.rule = "a region other than the ARN's",
       .yaml =
           mappingWith("      protocol: awsLambda\n"
                       "      lambda:\n"
                       "        functionName: arn:aws:lambda:us-east-1:123456789012:function:f\n"
                       "        region: eu-west-1\n"),
       .key = "mappings[0].function.lambda.region",
       .line = 10,
       .column = 17,
       .message = "the function's ARN names region us-east-1, not eu-west-1"},
      {.rule = "lambda with protocol lambdaEvent",
       .yaml = mappingWith("      url: http://fn/\n      lambda: {functionName: f}\n"),
       .key = "mappings[0].function.lambda",
       .line = 8,
       .column = 7,
       .message = "lambda applies to protocol awsLambda only"},
      {.rule = "cloudEvents with protocol lambdaEvent",
       .yaml = mappingWith("      url: http://fn/\n      cloudEvents: {mode: batch}\n"),
       .key = "mappings[0].function.cloudEvents",
       .line = 8,
       .column = 7,
       .message = "cloudEvents applies to protocol cloudEvents only"},
      {.rule = "an unknown cloudEvents mode",
       .yaml = mappingWith("      protocol: cloudEvents\n      url: http://fn/\n"
                           "      cloudEvents: {mode: structured}\n"),
       .key = "mappings[0].function.cloudEvents.mode",
       .line = 9,
       .column = 27,
       .message = "must be binary or batch, got 'structured'"},
      {.rule = "tls with an http url",
       .yaml = mappingWith("      url: http://fn/\n      tls: {caFile: /ca.pem}\n"),
       .key = "mappings[0].function.tls",
       .line = 8,
       .column = 7,
       .message = "tls applies to an https URL; url is http://"},
      {.rule = "a client certificate without its key",
       .yaml = mappingWith("      url: https://fn/\n      tls: {certificateFile: /c.pem}\n"),
       .key = "mappings[0].function.tls.certificateFile",
       .line = 8,
       .column = 13,
       .message = "a client certificate needs both certificateFile and keyFile (mutual TLS), "
                  "or neither"},
      {.rule = "an unknown response type",
       .yaml = mappingWith("      url: http://fn/\n", "    functionResponseTypes: [Partial]\n"),
       .key = "mappings[0].functionResponseTypes[0]",
       .line = 8,
       .column = 29,
       .message = "must be ReportBatchItemFailures (the only response type), got 'Partial'"},
      {.rule = "ReportBatchItemFailures with cloudEvents",
       .yaml = mappingWith("      protocol: cloudEvents\n      url: http://fn/\n",
                           "    functionResponseTypes: [ReportBatchItemFailures]\n"),
       .key = "mappings[0].functionResponseTypes[0]",
       .line = 9,
       .column = 29,
       .message = "ReportBatchItemFailures needs protocol lambdaEvent or awsLambda: a "
                  "CloudEvents answer has no way to name the records that failed"},
  }));
  checkRule(c);
}
