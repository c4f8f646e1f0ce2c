// The SigV4 signer against the AWS SigV4 test suite (aws-c-auth's v4 vectors, vendored in
// tests/unit/sigv4_vectors), byte for byte at each step, plus the properties kesm relies on for
// the Lambda Invoke API (double-encoded ARN path, query re-encoding, headers left unsigned).

#include "aws/sigv4.h"

#include <algorithm>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace kesm::aws;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The expected-output files end with or without a newline; the signed texts never do.
std::string trimNewline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
    s.pop_back();
  }
  return s;
}

// "2015-08-30T12:36:00Z"
std::chrono::system_clock::time_point parseTime(std::string_view iso) {
  std::tm tm{};
  std::istringstream in{std::string(iso)};
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  REQUIRE(!in.fail());
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

// request.txt: "METHOD TARGET HTTP/1.1", "Name:value" lines (a line starting with whitespace
// continues the previous value), a blank line, the body. The target is as the suite writes it
// (raw spaces and UTF-8 in some): sign() takes it as sent and encodes it once more.
SigningRequest parseRequest(const std::string& text) {
  SigningRequest request;
  std::size_t pos = text.find('\n');
  const std::string first = text.substr(0, pos);
  const std::size_t sp = first.find(' ');
  const std::size_t version = first.rfind(" HTTP/");
  REQUIRE(sp != std::string::npos);
  REQUIRE(version != std::string::npos);
  request.method = first.substr(0, sp);
  request.target = first.substr(sp + 1, version - sp - 1);
  while (pos != std::string::npos && pos + 1 <= text.size()) {
    const std::size_t start = pos + 1;
    pos = text.find('\n', start);
    const std::string line =
        text.substr(start, pos == std::string::npos ? std::string::npos : pos - start);
    if (line.empty()) {
      if (pos != std::string::npos) {
        request.body = text.substr(pos + 1);
      }
      break;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      REQUIRE(!request.headers.empty());
      request.headers.back().second += "\n" + line;
      continue;
    }
    const std::size_t colon = line.find(':');
    REQUIRE(colon != std::string::npos);
    request.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  return request;
}

// The value of header `name` (case-insensitive) in a signed request, "" when absent.
std::string headerOf(const std::string& signed_request, std::string_view name) {
  std::istringstream in(signed_request);
  std::string line;
  while (std::getline(in, line) && !line.empty()) {
    if (line.size() > name.size() && line[name.size()] == ':' &&
        std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return line.substr(name.size() + 1);
    }
  }
  return "";
}

std::string str(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v ? std::string(v->as_string()) : std::string();
}

bool flag(const boost::json::object& o, std::string_view key, bool otherwise) {
  const auto* v = o.if_contains(key);
  return v ? v->as_bool() : otherwise;
}

} // namespace

TEST_CASE("sigv4 AWS test suite vectors, header signing (aws-c-auth v4)", "[unit]") {
  // Every v4 case runs: all 38 are header-signing cases. Not run: their query-*.txt files
  // (presigned URLs: kesm never presigns, so they are not vendored) and the v4a suite (SigV4a,
  // ECDSA: the Lambda Invoke API takes SigV4).
  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(KESM_SIGV4_VECTORS_DIR)) {
    if (entry.is_directory()) {
      cases.push_back(entry.path());
    }
  }
  std::sort(cases.begin(), cases.end());
  REQUIRE(cases.size() == 38);
  for (const auto& dir : cases) {
    INFO("vector " << dir.filename().string());
    const auto context = boost::json::parse(slurp(dir / "context.json")).as_object();
    const auto& creds = context.at("credentials").as_object();
    const Credentials credentials{str(creds, "access_key_id"), str(creds, "secret_access_key"),
                                  str(creds, "token")};
    SigningParams params;
    params.region = str(context, "region");
    params.service = str(context, "service");
    params.time = parseTime(str(context, "timestamp"));
    params.normalize_path = flag(context, "normalize", true);
    // The suite's sign_body adds X-Amz-Content-Sha256; its payload hash is always the body's.
    params.content_sha256_header = flag(context, "sign_body", false);
    params.sign_security_token = !flag(context, "omit_session_token", false);
    const SigningRequest request = parseRequest(slurp(dir / "request.txt"));

    const std::string canonical =
        canonicalRequest(request, headersToSign(request, credentials, params), params);
    CHECK(canonical == trimNewline(slurp(dir / "header-canonical-request.txt")));
    const std::string to_sign = stringToSign(canonical, params);
    CHECK(to_sign == trimNewline(slurp(dir / "header-string-to-sign.txt")));
    const auto key = signingKey(credentials.secret_access_key, amzDate(params.time).substr(0, 8),
                                params.region, params.service);
    CHECK(signature(key, to_sign) == trimNewline(slurp(dir / "header-signature.txt")));

    const SignedHeaders out = sign(request, credentials, params);
    const std::string signed_request = slurp(dir / "header-signed-request.txt");
    CHECK(out.authorization == headerOf(signed_request, "Authorization"));
    CHECK(out.amz_date == headerOf(signed_request, "X-Amz-Date"));
    CHECK(out.security_token == headerOf(signed_request, "X-Amz-Security-Token"));
    CHECK(out.content_sha256 == headerOf(signed_request, "X-Amz-Content-Sha256"));
  }
}

TEST_CASE("sigv4 signing key and date: the AWS documentation's example", "[unit]") {
  // docs.aws.amazon.com, "Examples of how to derive a signing key for Signature Version 4".
  const auto key =
      signingKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (const auto b : key) {
    hex += kHex[b >> 4];
    hex += kHex[b & 0xF];
  }
  CHECK(hex == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
  // Sub-second parts are dropped, never rounded up into the next second.
  CHECK(amzDate(parseTime("2026-12-02T03:04:05Z") + std::chrono::milliseconds(999)) ==
        "20261202T030405Z");
}

TEST_CASE("sigv4 Lambda Invoke path: the ARN's percent-encoding is encoded again", "[unit]") {
  SigningParams params{.region = "us-east-1", .service = "lambda"};
  const std::string arn_target = "/2015-03-31/functions/"
                                 "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/"
                                 "invocations?Qualifier=live";
  CHECK(canonicalUri(arn_target, params) ==
        "/2015-03-31/functions/"
        "arn%253Aaws%253Alambda%253Aus-east-1%253A123456789012%253Afunction%253Amy-fn/invocations");
  CHECK(canonicalQuery(arn_target) == "Qualifier=live");
  // Raw colons on the wire are encoded once.
  CHECK(canonicalUri("/f/arn:aws:lambda/x", params) == "/f/arn%3Aaws%3Alambda/x");
  // S3 style: the path as sent, dot segments kept.
  params.double_encode_path = false;
  params.normalize_path = false;
  CHECK(canonicalUri("/a%3Ab/./c//d", params) == "/a%3Ab/./c//d");
  CHECK(canonicalUri("", params) == "/");
}

TEST_CASE("sigv4 query: decoded, re-encoded in upper-case hex, sorted by name then value",
          "[unit]") {
  CHECK(canonicalQuery("/") == "");
  CHECK(canonicalQuery("/?") == "");
  CHECK(canonicalQuery("/?b=2&a=3&a=1&c") == "a=1&a=3&b=2&c=");
  CHECK(canonicalQuery("/?Qualifier=%24LATEST") == "Qualifier=%24LATEST");
  CHECK(canonicalQuery("/?q=%2a%7e&x=a%20b") == "q=%2A~&x=a%20b");
  CHECK(canonicalQuery("/?q=$LATEST&p=a+b") == "p=a%2Bb&q=%24LATEST");
  CHECK(canonicalQuery("/?bad=%zz%4") == "bad=%25zz%254");
}

TEST_CASE("sigv4 sign(): headers left out or replaced, token signed, secret never shown",
          "[unit]") {
  const Credentials credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                "SESSIONTOKEN"};
  SigningParams params{.region = "us-east-1", .service = "lambda"};
  params.time = parseTime("2026-12-02T03:04:05Z");
  SigningRequest request{.method = "POST",
                         .target = "/2015-03-31/functions/my-fn/invocations",
                         .headers = {{"Host", "lambda.us-east-1.amazonaws.com"},
                                     {"User-Agent", "kesm/1"},
                                     {"X-Amz-Date", "19990101T000000Z"},
                                     {"Authorization", "stale"},
                                     {"Content-Type", "application/json"},
                                     {"X-Amz-Invocation-Type", "RequestResponse"}},
                         .body = R"({"records":{}})"};
  const SignedHeaders out = sign(request, credentials, params);
  CHECK(out.amz_date == "20261202T030405Z");
  CHECK(out.security_token == "SESSIONTOKEN");
  CHECK(out.content_sha256.empty());
  CHECK(out.authorization.rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/us-east-1/"
                                "lambda/aws4_request, SignedHeaders=content-type;host;x-amz-"
                                "date;x-amz-invocation-type;x-amz-security-token, Signature=",
                                0) == 0);
  CHECK(out.authorization.find(credentials.secret_access_key) == std::string::npos);
  CHECK(out.authorization.find("SESSIONTOKEN") == std::string::npos);

  // User-Agent is not signed: a client may change it without breaking the signature.
  SigningRequest other_agent = request;
  other_agent.headers[1].second = "something-else/2";
  CHECK(sign(other_agent, credentials, params).authorization == out.authorization);
  // The body is signed.
  SigningRequest other_body = request;
  other_body.body += " ";
  CHECK(sign(other_body, credentials, params).authorization != out.authorization);

  const Headers headers = headersToSign(request, credentials, params);
  const std::string canonical = canonicalRequest(request, headers, params);
  CHECK(canonical.find("x-amz-date:20261202T030405Z\n") != std::string::npos);
  CHECK(canonical.find("19990101") == std::string::npos);
  CHECK(canonical.find("stale") == std::string::npos);
  CHECK(canonical.find("user-agent") == std::string::npos);
  // sha256 of {"records":{}}
  CHECK(payloadHash(request, params) == canonical.substr(canonical.rfind('\n') + 1));

  params.sign_body = false;
  params.content_sha256_header = true;
  const SignedHeaders unsigned_payload = sign(request, credentials, params);
  CHECK(unsigned_payload.content_sha256 == "UNSIGNED-PAYLOAD");
  CHECK(unsigned_payload.authorization.find("x-amz-content-sha256;x-amz-date") !=
        std::string::npos);
}
