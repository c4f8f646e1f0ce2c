#include "app/status_page.h"

#include "app/status_page_html.h"

#include <openssl/evp.h>
#include <stdexcept>
#include <vector>

namespace kesm::app {

namespace {

// 'sha256-<base64>' of the text, as CSP Level 2 compares inline elements.
std::string sourceHash(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 of the status page failed");
  }
  std::vector<unsigned char> encoded(4 * ((size + 2) / 3) + 1);
  const int n = EVP_EncodeBlock(encoded.data(), digest, static_cast<int>(size));
  return "'sha256-" + std::string(encoded.begin(), encoded.begin() + n) + "'";
}

// The hashes of every <tag>…</tag> content, space-separated.
std::string hashesOf(const std::string& html, const std::string& tag) {
  const std::string open = "<" + tag + ">";
  const std::string close = "</" + tag + ">";
  std::string out;
  for (auto at = html.find(open); at != std::string::npos; at = html.find(open, at)) {
    const auto begin = at + open.size();
    const auto end = html.find(close, begin);
    if (end == std::string::npos) {
      break;
    }
    out += (out.empty() ? "" : " ") + sourceHash(html.substr(begin, end - begin));
    at = end;
  }
  return out.empty() ? "'none'" : out;
}

} // namespace

std::string contentSecurityPolicy(const std::string& html) {
  return "default-src 'none'; script-src " + hashesOf(html, "script") + "; style-src " +
         hashesOf(html, "style") +
         "; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
}

const metrics::StaticPage& statusPage() {
  static const metrics::StaticPage page{kStatusPageHtml, contentSecurityPolicy(kStatusPageHtml)};
  return page;
}

} // namespace kesm::app
