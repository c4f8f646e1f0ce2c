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
  std::string out = "'sha256-";
  out.append(encoded.begin(), encoded.begin() + n);
  out += '\'';
  return out;
}

// The hashes of every `open`…`close` content, space-separated. (Appends only: GCC 12 at -O3
// reports a false -Wrestrict on `"literal" + std::string`.)
std::string hashesOf(const std::string& html, const std::string& open, const std::string& close) {
  std::string out;
  for (auto at = html.find(open); at != std::string::npos; at = html.find(open, at)) {
    const auto begin = at + open.size();
    const auto end = html.find(close, begin);
    if (end == std::string::npos) {
      break;
    }
    if (!out.empty()) {
      out += ' ';
    }
    out += sourceHash(html.substr(begin, end - begin));
    at = end;
  }
  return out.empty() ? std::string("'none'") : out;
}

} // namespace

std::string contentSecurityPolicy(const std::string& html) {
  std::string csp = "default-src 'none'; script-src ";
  csp += hashesOf(html, "<script>", "</script>");
  csp += "; style-src ";
  csp += hashesOf(html, "<style>", "</style>");
  csp += "; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
  return csp;
}

const metrics::StaticPage& statusPage() {
  static const metrics::StaticPage page{kStatusPageHtml, contentSecurityPolicy(kStatusPageHtml)};
  return page;
}

} // namespace kesm::app
