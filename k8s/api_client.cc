// ApiClient and TokenFile of k8s/api_client.h.

#include "k8s/api_client.h"

#include "common/version.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace kesm::k8s {

namespace {

std::string trim(const std::string& text) {
  const char* space = " \t\r\n";
  const auto first = text.find_first_not_of(space);
  if (first == std::string::npos) {
    return {};
  }
  return text.substr(first, text.find_last_not_of(space) - first + 1);
}

} // namespace

TokenFile::TokenFile(std::string path, std::chrono::seconds max_age)
    : path_(std::move(path)), max_age_(max_age) {}

bool TokenFile::read(std::chrono::steady_clock::time_point now) {
  // stat follows the symlink chain: after the kubelet's swap it is a different file.
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    error_ = "cannot stat " + path_ + ": " + std::strerror(errno);
    return false;
  }
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    error_ = "cannot read " + path_ + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream out;
  out << in.rdbuf();
  std::string token = trim(out.str());
  if (token.empty()) {
    // Mid-rewrite by a non-atomic writer: keep the last good token and look again next time.
    error_ = path_ + " is empty";
    return false;
  }
  token_ = std::move(token);
  identity_ =
      Identity{st.st_dev, st.st_ino, st.st_size,
               static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000LL + st.st_mtim.tv_nsec};
  read_at_ = now;
  ever_read_ = true;
  error_.clear();
  return true;
}

const std::string& TokenFile::current(std::chrono::steady_clock::time_point now) {
  if (!ever_read_ || now - read_at_ >= max_age_) {
    read(now);
    return token_;
  }
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    error_ = "cannot stat " + path_ + ": " + std::strerror(errno);
    return token_;
  }
  const Identity seen{st.st_dev, st.st_ino, st.st_size,
                      static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000LL +
                          st.st_mtim.tv_nsec};
  if (!(seen == identity_)) {
    read(now);
  }
  return token_;
}

bool TokenFile::reload(std::chrono::steady_clock::time_point now) {
  const std::string before = token_;
  return read(now) && token_ != before;
}

ApiClient::ApiClient(const InCluster& cluster, ApiClientOptions options)
    : options_(std::move(options)), token_(cluster.token_file, options_.token_max_age) {
  if (options_.user_agent.empty()) {
    options_.user_agent = std::string("kesm/") + kVersion;
  }
  net::Url url;
  url.scheme = net::Scheme::kHttps;
  url.host = cluster.host;
  url.port = cluster.port;
  url.target.assign(1, '/'); // not `= "/"`: GCC 12 at -O3 reports a false -Wrestrict on it
  // Appended piece by piece for the same reason.
  origin_ = "https://";
  const bool ipv6 = cluster.host.find(':') != std::string::npos;
  if (ipv6) {
    origin_.push_back('[');
  }
  origin_ += cluster.host;
  if (ipv6) {
    origin_.push_back(']');
  }
  origin_.push_back(':');
  origin_ += std::to_string(cluster.port);
  net::TlsOptions tls;
  tls.ca_file = cluster.ca_file;
  http_ = std::make_unique<net::HttpClient>(std::move(url), std::move(tls));
}

ApiClient::~ApiClient() = default;

net::HttpResult ApiClient::request(const std::string& method, const std::string& path,
                                   const std::string& body) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + options_.timeout;
  auto send = [&](const std::string& token) {
    net::Headers headers{{"Accept", "application/json"}, {"User-Agent", options_.user_agent}};
    if (!token.empty()) {
      headers.emplace_back("Authorization", "Bearer " + token);
    }
    if (!body.empty()) {
      headers.emplace_back("Content-Type", "application/json");
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return http_->request(method, path, body, headers,
                          std::max(left, std::chrono::milliseconds(1)));
  };
  net::HttpResult result = send(token_.current(Clock::now()));
  if (result.transportOk() && result.response.status == 401) {
    // The token may have rotated under an unchanged-looking file: read it again, and retry
    // only with a different one (the same token would be refused the same way).
    if (token_.reload(Clock::now()) && Clock::now() < deadline) {
      result = send(token_.current(Clock::now()));
    }
  }
  return result;
}

std::uint64_t ApiClient::connectionsOpened() const { return http_->connectionsOpened(); }

std::string ApiClient::describe() const { return origin_; }

std::string ApiClient::tokenError() const { return token_.error(); }

} // namespace kesm::k8s
