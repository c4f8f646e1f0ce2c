#include "aws/sigv4.h"

#include <algorithm>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <ctime>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string_view>

namespace kesm::aws {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

// Headers a proxy or HTTP client may add, drop or rewrite: signing them would break the
// signature in transit. botocore 1.44.5's SIGNED_HEADERS_BLACKLIST, so both sign the same.
constexpr std::string_view kUnsignedHeaders[] = {
    "baggage",    "connection",         "expect",
    "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te",         "traceparent",        "tracestate",
    "trailer",    "transfer-encoding",  "upgrade",
    "user-agent", "x-amzn-trace-id"};
// Set by sign() itself; a caller's copy is replaced, never signed twice.
constexpr std::string_view kOwnHeaders[] = {"authorization", "x-amz-date", "x-amz-security-token",
                                            "x-amz-content-sha256"};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  });
  return out;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// %XX decoded; a '%' not followed by two hex digits stays as it is ('+' is not a space here).
std::string uriDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hexValue(s[i + 1]);
      const int lo = hexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::string toHex(const unsigned char* data, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xF]);
  }
  return out;
}

std::string sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  return toHex(digest, size);
}

std::array<std::uint8_t, 32> hmac(const void* key, std::size_t key_size, std::string_view data) {
  std::array<std::uint8_t, 32> out{};
  unsigned int size = 0;
  HMAC(EVP_sha256(), key, static_cast<int>(key_size),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &size);
  return out;
}

std::string_view pathOf(std::string_view target) { return target.substr(0, target.find('?')); }

// RFC 3986 dot-segment removal as botocore and aws-c-auth do it for SigV4: empty segments go
// too ("//a//" -> "/a/"), a trailing slash stays when anything is left.
std::string normalizePath(std::string_view path) {
  if (path.empty()) {
    return "/";
  }
  std::vector<std::string_view> segments;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view segment = path.substr(start, end - start);
    if (segment == "..") {
      if (!segments.empty()) {
        segments.pop_back();
      }
    } else if (!segment.empty() && segment != ".") {
      segments.push_back(segment);
    }
    start = end + 1;
  }
  std::string out = path.front() == '/' ? "/" : "";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    out += (i == 0 ? "" : "/");
    out += segments[i];
  }
  if (path.back() == '/' && !segments.empty()) {
    out += '/';
  }
  return out;
}

// Trimmed, every run of whitespace (folded lines included) as one space.
std::string canonicalHeaderValue(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (const char c : value) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out.push_back(' ');
      pending_space = false;
    }
    out.push_back(c);
  }
  return out;
}

template <std::size_t N> bool contains(const std::string_view (&names)[N], std::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

// Lower-cased names, sorted (stable: same-name values keep their order), values canonical.
Headers canonicalHeaders(const Headers& headers) {
  Headers out;
  out.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    out.emplace_back(lower(name), canonicalHeaderValue(value));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

std::string credentialScope(const SigningParams& params) {
  return amzDate(params.time).substr(0, 8) + "/" + params.region + "/" + params.service +
         "/aws4_request";
}

} // namespace

std::string amzDate(std::chrono::system_clock::time_point time) {
  const std::time_t t =
      std::chrono::system_clock::to_time_t(std::chrono::floor<std::chrono::seconds>(time));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return std::string(buf, n);
}

std::string payloadHash(const SigningRequest& request, const SigningParams& params) {
  return params.sign_body ? sha256Hex(request.body) : std::string(kUnsignedPayload);
}

Headers headersToSign(const SigningRequest& request, const Credentials& credentials,
                      const SigningParams& params) {
  Headers out;
  for (const auto& [name, value] : request.headers) {
    const std::string key = lower(name);
    if (!contains(kUnsignedHeaders, key) && !contains(kOwnHeaders, key)) {
      out.emplace_back(name, value);
    }
  }
  out.emplace_back("X-Amz-Date", amzDate(params.time));
  if (!credentials.session_token.empty() && params.sign_security_token) {
    out.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  if (params.content_sha256_header) {
    out.emplace_back("X-Amz-Content-Sha256", payloadHash(request, params));
  }
  return out;
}

std::string canonicalUri(std::string_view target, const SigningParams& params) {
  const std::string_view raw = pathOf(target);
  std::string path = params.normalize_path ? normalizePath(raw) : std::string(raw);
  if (path.empty()) {
    path = "/";
  }
  return params.double_encode_path ? uriEncode(path, /*keep_slash=*/true) : path;
}

std::string canonicalQuery(std::string_view target) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) {
    return "";
  }
  const std::string_view query = target.substr(q + 1);
  std::vector<std::pair<std::string, std::string>> params;
  std::size_t start = 0;
  while (start <= query.size()) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    const std::string_view pair = query.substr(start, end - start);
    if (!pair.empty()) {
      const std::size_t eq = pair.find('=');
      const std::string_view name = pair.substr(0, eq);
      const std::string_view value = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
      params.emplace_back(uriEncode(uriDecode(name), false), uriEncode(uriDecode(value), false));
    }
    start = end + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    out += (out.empty() ? "" : "&");
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

std::string signedHeaderNames(const Headers& headers) {
  std::string out;
  std::string_view last;
  const Headers canonical = canonicalHeaders(headers);
  for (const auto& header : canonical) {
    if (!out.empty() && header.first == last) {
      continue;
    }
    out += (out.empty() ? "" : ";");
    out += header.first;
    last = header.first;
  }
  return out;
}

std::string canonicalRequest(const SigningRequest& request, const Headers& headers,
                             const SigningParams& params) {
  std::string out = request.method + "\n" + canonicalUri(request.target, params) + "\n" +
                    canonicalQuery(request.target) + "\n";
  // Same-name headers become one line, their values comma-joined in the order sent.
  const Headers canonical = canonicalHeaders(headers);
  for (std::size_t i = 0; i < canonical.size(); ++i) {
    if (i > 0 && canonical[i].first == canonical[i - 1].first) {
      out += ',';
    } else {
      out += (i > 0 ? "\n" : "");
      out += canonical[i].first;
      out += ':';
    }
    out += canonical[i].second;
  }
  out += "\n\n" + signedHeaderNames(headers) + "\n" + payloadHash(request, params);
  return out;
}

std::string stringToSign(std::string_view canonical_request, const SigningParams& params) {
  return std::string(kAlgorithm) + "\n" + amzDate(params.time) + "\n" + credentialScope(params) +
         "\n" + sha256Hex(canonical_request);
}

std::array<std::uint8_t, 32> signingKey(std::string_view secret_access_key, std::string_view date,
                                        std::string_view region, std::string_view service) {
  std::string secret = "AWS4" + std::string(secret_access_key);
  auto key = hmac(secret.data(), secret.size(), date);
  OPENSSL_cleanse(secret.data(), secret.size()); // no copy of the secret left in freed memory
  key = hmac(key.data(), key.size(), region);
  key = hmac(key.data(), key.size(), service);
  return hmac(key.data(), key.size(), "aws4_request");
}

std::string signature(const std::array<std::uint8_t, 32>& signing_key,
                      std::string_view string_to_sign) {
  const auto mac = hmac(signing_key.data(), signing_key.size(), string_to_sign);
  return toHex(mac.data(), mac.size());
}

SignedHeaders sign(const SigningRequest& request, const Credentials& credentials,
                   const SigningParams& params) {
  const Headers headers = headersToSign(request, credentials, params);
  const std::string canonical = canonicalRequest(request, headers, params);
  const std::string date = amzDate(params.time);
  const auto key =
      signingKey(credentials.secret_access_key, date.substr(0, 8), params.region, params.service);
  SignedHeaders out;
  out.authorization = std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" +
                      credentialScope(params) + ", SignedHeaders=" + signedHeaderNames(headers) +
                      ", Signature=" + signature(key, stringToSign(canonical, params));
  out.amz_date = date;
  out.security_token = credentials.session_token;
  if (params.content_sha256_header) {
    out.content_sha256 = payloadHash(request, params);
  }
  return out;
}

std::string uriEncode(std::string_view s, bool keep_slash) {
  static constexpr boost::urls::grammar::lut_chars kWithSlash =
      boost::urls::unreserved_chars + boost::urls::grammar::lut_chars('/');
  // Upper-case hex and %20 for a space, as SigV4 requires: Boost.URL's defaults.
  return keep_slash ? boost::urls::encode(s, kWithSlash)
                    : boost::urls::encode(s, boost::urls::unreserved_chars);
}

} // namespace kesm::aws
