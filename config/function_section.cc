// A mapping's function: the protocol, where the function is (a URL, or a Lambda function),
// TLS for https, and what the function may answer (functionResponseTypes).

#include "config/schema.h"
#include "config/sections.h"
#include "config/values.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>
#include <vector>

namespace kesm::config::detail {

namespace {

bool isHttps(std::string_view url) { return url.substr(0, 8) == "https://"; }

std::optional<std::string> readUrl(Reporter& reporter, const Field& field) {
  auto text = readScalar(reporter, field, "an http:// or https:// URL like https://host:8443/path");
  if (!text) {
    return std::nullopt;
  }
  if (auto error = httpUrlError(*text)) {
    reporter.add(field.value_pos, field.path, *error);
    return std::nullopt;
  }
  return text;
}

void readFunctionTls(Reporter& reporter, const Field& field, FunctionTlsConfig& tls) {
  tls.at = locationOf(field);
  if (!expectMap(reporter, field, "a map with caFile, certificateFile, keyFile and serverName")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kFunctionTlsSection);
  readTlsFiles(reporter, section, tls.ca_file, tls.certificate_file, tls.key_file);
  if (const Field* f = section.optional("serverName")) {
    const char* rule = "a host name or IP address, like fn.example.com";
    auto text = readScalar(reporter, *f, rule);
    if (text && !validHostPort(*text + ":1", 1)) {
      mismatch(reporter, *f, rule);
    } else if (text) {
      tls.server_name = *text;
    }
  }
}

bool isNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

bool validName(std::string_view s, std::size_t max) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), isNameChar);
}

bool validQualifier(std::string_view s) { return s == "$LATEST" || validName(s, 128); }

bool validRegion(std::string_view s) {
  return s.size() >= 4 && s.size() <= 32 && std::islower(static_cast<unsigned char>(s[0])) &&
         std::islower(static_cast<unsigned char>(s[1])) && s[2] == '-' && s.back() != '-' &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return std::islower(static_cast<unsigned char>(c)) ||
                  std::isdigit(static_cast<unsigned char>(c)) || c == '-';
         });
}

bool validAccount(std::string_view s) {
  return s.size() == 12 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isdigit(static_cast<unsigned char>(c));
         });
}

// The Invoke API's FunctionName: NAME, ACCOUNT:function:NAME or
// arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME, each optionally ending :QUALIFIER.
struct FunctionName {
  std::string region;     // from an ARN
  bool qualified = false; // ends with :QUALIFIER
};

std::optional<FunctionName> parseFunctionName(std::string_view text) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    auto colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string_view::npos ? colon : colon - start));
    if (colon == std::string_view::npos) {
      break;
    }
    start = colon + 1;
  }
  FunctionName out;
  std::size_t name_at = 0;
  if (parts.size() >= 7 && parts[0] == "arn") {
    if (parts[1].substr(0, 3) != "aws" || parts[2] != "lambda" || !validRegion(parts[3])) {
      return std::nullopt;
    }
    out.region = std::string(parts[3]);
    name_at = 4;
  }
  if (parts.size() >= name_at + 3 && parts[name_at + 1] == "function") {
    if (!validAccount(parts[name_at])) {
      return std::nullopt;
    }
    name_at += 2;
  } else if (name_at != 0) {
    return std::nullopt;
  }
  if (parts.size() > name_at + 2 || !validName(parts[name_at], 64)) {
    return std::nullopt;
  }
  out.qualified = parts.size() == name_at + 2;
  if (out.qualified && !validQualifier(parts[name_at + 1])) {
    return std::nullopt;
  }
  return out;
}

void readLambda(Reporter& reporter, const Field& field, AwsLambdaConfig& lambda) {
  lambda.at = locationOf(field);
  if (!expectMap(reporter, field, "a map with functionName, qualifier, region and endpoint")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kLambdaSection);
  bool arn_has_qualifier = false;
  if (const Field* f =
          section.required("functionName", "name the Lambda function: my-fn, or its ARN "
                                           "arn:aws:lambda:REGION:ACCOUNT:function:my-fn")) {
    const char* rule = "a Lambda function name (1 to 64 letters, digits, '-' or '_'), "
                       "ACCOUNT:function:NAME or arn:aws:lambda:REGION:ACCOUNT:function:NAME, "
                       "each optionally followed by :QUALIFIER";
    auto text = readScalar(reporter, *f, rule);
    auto parsed = text ? parseFunctionName(*text) : std::nullopt;
    if (text && (text->size() > 170 || !parsed)) {
      mismatch(reporter, *f, rule);
    } else if (text) {
      lambda.function_name = *text;
      arn_has_qualifier = parsed->qualified;
      lambda.region = parsed->region;
    }
  }
  if (const Field* f = section.optional("qualifier")) {
    const char* rule = "a version or alias: $LATEST, or 1 to 128 letters, digits, '-' or '_'";
    auto text = readScalar(reporter, *f, rule);
    if (text && !validQualifier(*text)) {
      mismatch(reporter, *f, rule);
    } else if (text && arn_has_qualifier) {
      reporter.add(f->key_pos, f->path,
                   "functionName already ends with a qualifier; give it once, in one place");
    } else if (text) {
      lambda.qualifier = *text;
    }
  }
  if (const Field* f = section.optional("region")) {
    const char* rule = "an AWS region like eu-west-1";
    auto text = readScalar(reporter, *f, rule);
    if (text && !validRegion(*text)) {
      mismatch(reporter, *f, rule);
    } else if (text && !lambda.region.empty() && *text != lambda.region) {
      reporter.add(f->value_pos, f->path,
                   "the function's ARN names region " + lambda.region + ", not " + *text);
    } else if (text) {
      lambda.region = *text;
    }
  }
  if (const Field* f = section.optional("endpoint")) {
    if (auto url = readUrl(reporter, *f)) {
      lambda.endpoint = *url;
    }
  }
}

void readCloudEvents(Reporter& reporter, const Field& field, CloudEventsConfig& cloud_events) {
  if (!expectMap(reporter, field, "a map with mode, source and type")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kCloudEventsSection);
  if (const Field* f = section.optional("mode")) {
    auto text = readScalar(reporter, *f, "binary or batch");
    if (text && *text == "binary") {
      cloud_events.mode = CloudEventsMode::kBinary;
    } else if (text && *text == "batch") {
      cloud_events.mode = CloudEventsMode::kBatch;
    } else if (text) {
      reporter.add(f->value_pos, f->path, "must be binary or batch, got " + describe(f->value));
    }
  }
  // CloudEvents: source is a non-empty URI-reference, type a non-empty string.
  auto attribute = [&](const char* key, const char* rule, std::string& out) {
    if (const Field* f = section.optional(key)) {
      auto text = readScalar(reporter, *f, rule);
      bool printable = text && !text->empty() && text->size() <= 1024 &&
                       std::all_of(text->begin(), text->end(), [](char c) {
                         auto u = static_cast<unsigned char>(c);
                         return u > 0x20 && u != 0x7f;
                       });
      if (text && !printable) {
        mismatch(reporter, *f, rule);
      } else if (text) {
        out = *text;
      }
    }
  };
  attribute("source", "a URI-reference of 1 to 1024 characters without spaces, like /orders",
            cloud_events.source);
  attribute("type", "1 to 1024 characters without spaces, like dev.knative.kafka.event",
            cloud_events.type);
}

} // namespace

void readFunction(Reporter& reporter, const Field& field, FunctionConfig& function) {
  if (!expectMap(reporter, field, "a map with url and optionally timeout")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kFunctionSection);
  const Field* protocol = section.optional("protocol");
  if (protocol != nullptr) {
    const char* rule = "lambdaEvent, awsLambda or cloudEvents";
    auto text = readScalar(reporter, *protocol, rule);
    if (text && *text == "lambdaEvent") {
      function.protocol = FunctionProtocol::kLambdaEvent;
    } else if (text && *text == "awsLambda") {
      function.protocol = FunctionProtocol::kAwsLambda;
    } else if (text && *text == "cloudEvents") {
      function.protocol = FunctionProtocol::kCloudEvents;
    } else if (text) {
      reporter.add(protocol->value_pos, protocol->path,
                   std::string("must be ") + rule + ", got " + describe(protocol->value));
    }
  }
  const bool aws = function.protocol == FunctionProtocol::kAwsLambda;
  if (aws) {
    if (const Field* f = section.optional("url")) {
      reporter.add(f->key_pos, f->path,
                   "protocol awsLambda takes no url: name the function in lambda.functionName "
                   "(and set lambda.endpoint for an endpoint other than AWS's)");
    }
    if (const Field* f = section.required("lambda", "name the Lambda function, with "
                                                    "lambda.functionName")) {
      readLambda(reporter, *f, function.lambda);
    }
  } else {
    if (auto f =
            section.required("url", "give the function's URL, like http://my-fn:8080/invoke")) {
      if (auto url = readUrl(reporter, *f)) {
        function.url = *url;
      }
    }
    if (const Field* f = section.optional("lambda")) {
      reporter.add(f->key_pos, f->path, "lambda applies to protocol awsLambda only");
    }
  }
  const Field* cloud_events = section.optional("cloudEvents");
  if (cloud_events != nullptr && function.protocol != FunctionProtocol::kCloudEvents) {
    reporter.add(cloud_events->key_pos, cloud_events->path,
                 "cloudEvents applies to protocol cloudEvents only");
  } else if (cloud_events != nullptr) {
    readCloudEvents(reporter, *cloud_events, function.cloud_events);
  }
  readDuration(reporter, section.optional("timeout"), kTimeoutRange, function.timeout);
  if (const Field* f = section.optional("nullValues")) {
    auto text = readScalar(reporter, *f, "empty or omit");
    if (text && *text == "empty") {
      function.null_values = NullValues::kEmpty;
    } else if (text && *text == "omit") {
      function.null_values = NullValues::kOmit;
    } else if (text) {
      reporter.add(f->value_pos, f->path, "must be empty or omit, got " + describe(f->value));
    }
  }
  readBool(reporter, section.optional("detectErrorBody"), function.detect_error_body);
  if (const Field* f = section.optional("tls")) {
    bool known = aws || !function.url.empty();
    if (known && !usesHttps(function)) {
      reporter.add(f->key_pos, f->path,
                   aws ? "tls applies to an https endpoint; lambda.endpoint is http://"
                       : "tls applies to an https URL; url is http://");
    } else {
      function.tls.emplace();
      readFunctionTls(reporter, *f, *function.tls);
    }
  }
}

void readFunctionResponseTypes(Reporter& reporter, const Field& field, Mapping& mapping) {
  const char* expected = "a list holding ReportBatchItemFailures, or an empty list";
  if (!field.value.IsSequence()) {
    mismatch(reporter, field, expected);
    return;
  }
  std::size_t index = 0;
  for (const auto& item : field.value) {
    Field entry{indexPath(field.path, index++), item, field.value_pos,
                valuePos(item, field.value_pos)};
    auto text = readScalar(reporter, entry, "ReportBatchItemFailures");
    if (text && *text != "ReportBatchItemFailures") {
      reporter.add(entry.value_pos, entry.path,
                   "must be ReportBatchItemFailures (the only response type), got " +
                       describe(item));
    } else if (text && mapping.function.protocol == FunctionProtocol::kCloudEvents) {
      reporter.add(entry.value_pos, entry.path,
                   "ReportBatchItemFailures needs protocol lambdaEvent or awsLambda: a "
                   "CloudEvents answer has no way to name the records that failed");
    } else if (text) {
      mapping.report_batch_item_failures = true;
    }
  }
}

} // namespace kesm::config::detail

namespace kesm::config {

bool usesHttps(const FunctionConfig& function) {
  if (function.protocol == FunctionProtocol::kAwsLambda) {
    // AWS's own endpoint is https; any other is as written.
    return function.lambda.endpoint.empty() || detail::isHttps(function.lambda.endpoint);
  }
  return detail::isHttps(function.url);
}

} // namespace kesm::config
