#pragma once

// AWS Signature Version 4 for one HTTP request, header form (an Authorization header; no
// presigned URLs, no SigV4a). Pure: the time is passed in, nothing is read from the
// environment, nothing is logged, nothing throws (bar std::bad_alloc). Thread-safe (no state).
// Checked against the AWS SigV4 test suite and against botocore (tests/unit/aws, tests/aws).
//
// Contract of sign():
//  - request.headers are the headers as they will be sent; they must include Host (with the
//    port when it is not the scheme's default). All of them are signed except those a proxy or
//    client may change (User-Agent, Connection, Expect, Transfer-Encoding, X-Amzn-Trace-Id and
//    the others of botocore's list, see sigv4.cc) and those sign() sets itself (Authorization,
//    X-Amz-Date, X-Amz-Security-Token, X-Amz-Content-Sha256), which are ignored when present.
//  - sign() signs X-Amz-Date, X-Amz-Security-Token (when credentials.session_token is not
//    empty, unless !params.sign_security_token) and X-Amz-Content-Sha256 (when
//    params.content_sha256_header); the caller must send the returned values under exactly these
//    names, plus Authorization, and nothing else changed.
//  - request.target is the path and query exactly as sent on the wire, already percent-encoded
//    once: "/2015-03-31/functions/arn%3Aaws%3Alambda%3A...%3Amy-fn/invocations?Qualifier=live".
//    With double_encode_path (every service but S3) the canonical URI encodes that path once
//    more, so "%3A" is signed as "%253A"; without it the path is signed as sent. Query
//    parameters are decoded, re-encoded (RFC 3986 unreserved set, upper-case hex) and sorted by
//    name, then value; send "%20", not "+", for a space.
//  - Secrets (secret_access_key, session_token) appear only in what must carry them (the
//    signature derives from the secret; security_token is the token) and never in errors.

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kesm::aws {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token; // empty for long-term keys
};

using Headers = std::vector<std::pair<std::string, std::string>>; // name, value; order kept

struct SigningRequest {
  std::string method; // "POST"
  std::string target; // path and query as sent, see above
  Headers headers;    // as sent, including Host
  std::string body;
};

struct SigningParams {
  std::string region;                           // "us-east-1"
  std::string service;                          // "lambda"
  std::chrono::system_clock::time_point time{}; // the request time (X-Amz-Date), UTC
  bool double_encode_path = true;               // false for S3
  bool normalize_path = true;                   // remove "." / ".." / empty segments; false for S3
  bool sign_body = true;                        // false: the payload hash is "UNSIGNED-PAYLOAD"
  bool content_sha256_header = false;           // sign and send X-Amz-Content-Sha256 (S3 needs it)
  bool sign_security_token = true; // false: X-Amz-Security-Token is sent but not signed (IoT)
};

struct SignedHeaders {
  // "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=...,
  // Signature=..."
  std::string authorization;
  std::string amz_date;       // X-Amz-Date: "20150830T123600Z"
  std::string security_token; // X-Amz-Security-Token; empty if none
  std::string content_sha256; // X-Amz-Content-Sha256; empty unless params.content_sha256_header
};

SignedHeaders sign(const SigningRequest& request, const Credentials& credentials,
                   const SigningParams& params);

// RFC 3986 percent-encoding of all but the unreserved set (and '/' when keep_slash), upper-case
// hex, a space as %20: SigV4's UriEncode, and what AWS's query and form bodies want.
std::string uriEncode(std::string_view s, bool keep_slash = false);

// The steps of sign(), exposed for the tests.

// "20150830T123600Z" (seconds truncated toward the past).
std::string amzDate(std::chrono::system_clock::time_point time);

// The headers the canonical request covers: request.headers minus the excluded ones (see
// above), plus X-Amz-Date, X-Amz-Security-Token and X-Amz-Content-Sha256 as applicable.
Headers headersToSign(const SigningRequest& request, const Credentials& credentials,
                      const SigningParams& params);

// Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" when !params.sign_body.
std::string payloadHash(const SigningRequest& request, const SigningParams& params);

// The canonical URI (path only) of a target, per double_encode_path and normalize_path.
std::string canonicalUri(std::string_view target, const SigningParams& params);

// The canonical query string of a target ("" without a query).
std::string canonicalQuery(std::string_view target);

// "host;x-amz-date": the lower-cased names of `headers`, sorted, deduplicated.
std::string signedHeaderNames(const Headers& headers);

// Method, canonical URI, canonical query, canonical headers, signed header names and payload
// hash, '\n'-separated. `headers` are signed as given (headersToSign() makes them for sign()).
std::string canonicalRequest(const SigningRequest& request, const Headers& headers,
                             const SigningParams& params);

// "AWS4-HMAC-SHA256\n<amz date>\n<date>/<region>/<service>/aws4_request\n<hex sha256 of it>".
std::string stringToSign(std::string_view canonical_request, const SigningParams& params);

// HMAC chain "AWS4"+secret -> date (YYYYMMDD) -> region -> service -> "aws4_request".
std::array<std::uint8_t, 32> signingKey(std::string_view secret_access_key, std::string_view date,
                                        std::string_view region, std::string_view service);

// Lower-case hex of HMAC-SHA256(signing key, string to sign).
std::string signature(const std::array<std::uint8_t, 32>& signing_key,
                      std::string_view string_to_sign);

} // namespace kesm::aws
