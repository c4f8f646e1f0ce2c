// What a 2xx answer's body says: the Lambda Runtime Interface Emulator answers a raising or
// timed-out handler with 200 and no X-Amz-Function-Error.

#include "invoker/invoker.h"
#include "net/http.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

using namespace kesm;
using namespace kesm::invoker;
using namespace std::chrono_literals;

TEST_CASE("success body: what counts as a Lambda error document", "[unit]") {
  struct Case {
    const char* name;
    std::string body;
    SuccessBody expected;
  };
  auto c = GENERATE(
      Case{"the emulator's raising Python handler",
           R"({"errorMessage": "boom", "errorType": "ValueError", "requestId": "", )"
           R"("stackTrace": ["  File \"/var/task/h.py\", line 3\n"]})",
           SuccessBody::kLambdaError},
      Case{"AWS's timeout document",
           R"({"errorType":"Sandbox.Timedout","errorMessage":)"
           R"("RequestId: 1 Error: Task timed out after 3.00 seconds"})",
           SuccessBody::kLambdaError},
      Case{"the emulator's plain-text timeout", "Task timed out after 1.00 seconds",
           SuccessBody::kLambdaError},
      Case{"a JSON string timeout", R"("Task timed out after 1.00 seconds")",
           SuccessBody::kLambdaError},
      Case{"leading whitespace", "\n  {\"errorMessage\":\"x\",\"errorType\":\"E\"}",
           SuccessBody::kLambdaError},
      Case{"empty body", "", SuccessBody::kSuccess}, Case{"null", "null", SuccessBody::kSuccess},
      Case{"a result object", R"({"statusCode":200,"body":"ok"})", SuccessBody::kSuccess},
      Case{"errorMessage alone", R"({"errorMessage":"only a message"})", SuccessBody::kSuccess},
      Case{"errorType not a string", R"({"errorMessage":"m","errorType":3})",
           SuccessBody::kSuccess},
      Case{"nested error document", R"({"result":{"errorMessage":"m","errorType":"E"}})",
           SuccessBody::kSuccess},
      Case{"not JSON", "{errorMessage: m, errorType: E}", SuccessBody::kSuccess},
      Case{"timeout text not at the start", "ok. Task timed out after 1 s", SuccessBody::kSuccess},
      Case{"a partial batch response", R"({"batchItemFailures":[{"itemIdentifier":"t-0@5"}]})",
           SuccessBody::kBatchFailures},
      Case{"an empty partial batch response", R"({"batchItemFailures":[]})",
           SuccessBody::kBatchFailures});
  CAPTURE(c.name);
  CHECK(classifySuccessBody(c.body) == c.expected);
}

TEST_CASE("success body: a 200 error document is a function error, unless switched off",
          "[unit][http]") {
  net::HttpServerOptions server_options;
  server_options.body_limit_bytes = 1024 * 1024; // it takes POSTed events
  net::HttpServer server(
      "127.0.0.1:0",
      [](const net::HttpRequest&) {
        net::HttpResponse r;
        r.status = 200;
        r.headers = {{"Content-Type", "application/json"}};
        r.body = R"({"errorMessage":"boom","errorType":"ValueError","stackTrace":[]})";
        return r;
      },
      server_options);
  HttpInvokerOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/invoke";
  options.timeout = 5s;
  Batch batch;
  Record r;
  r.topic = "t";
  r.value = "v";
  batch.records.push_back(r);

  auto result = makeHttpInvoker(options)->invoke(batch);
  CHECK(result.outcome == InvokeOutcome::kFunctionError);
  CHECK(result.http_status == 200);
  CHECK_THAT(result.detail, Catch::Contains("Lambda error document") && Catch::Contains("boom"));

  options.detect_error_body = false;
  CHECK(makeHttpInvoker(options)->invoke(batch).outcome == InvokeOutcome::kSuccess);
}
