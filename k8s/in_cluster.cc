// detectInCluster of k8s/in_cluster.h: the environment and the service account's files.

#include "k8s/in_cluster.h"

#include "net/http.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>

namespace kesm::k8s {

namespace {

std::string trim(std::string text) {
  const char* space = " \t\r\n";
  const auto first = text.find_first_not_of(space);
  if (first == std::string::npos) {
    return {};
  }
  const auto last = text.find_last_not_of(space);
  return text.substr(first, last - first + 1);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string readFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("in-cluster: cannot read the " + what + " " + path + ": " +
                             std::strerror(errno));
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::uint16_t parsePort(const std::string& text) {
  const auto port = net::parsePort(text);
  if (!port) {
    throw std::runtime_error("in-cluster: KUBERNETES_SERVICE_PORT '" + text +
                             "' is not a port number from 1 to 65535");
  }
  return *port;
}

} // namespace

std::optional<InCluster> detectInCluster(const Getenv& getenv, std::string& why) {
  const auto host = getenv("KUBERNETES_SERVICE_HOST");
  if (!host || trim(*host).empty()) {
    why = "KUBERNETES_SERVICE_HOST is not set";
    return std::nullopt;
  }
  InCluster cluster;
  cluster.host = trim(*host);
  // A bracketed IPv6 address is accepted too, though Kubernetes writes it bare.
  if (cluster.host.size() > 2 && cluster.host.front() == '[' && cluster.host.back() == ']') {
    cluster.host = cluster.host.substr(1, cluster.host.size() - 2);
  }
  if (const auto port = getenv("KUBERNETES_SERVICE_PORT"); port && !trim(*port).empty()) {
    cluster.port = parsePort(trim(*port));
  }
  std::string dir = kServiceAccountDir;
  if (const auto over = getenv("KESM_SERVICE_ACCOUNT_DIR"); over && !over->empty()) {
    dir = *over;
  }
  while (dir.size() > 1 && dir.back() == '/') {
    dir.pop_back();
  }
  cluster.token_file = dir + "/token";
  if (!exists(cluster.token_file)) {
    why = "no service account token at " + cluster.token_file;
    return std::nullopt;
  }
  if (trim(readFile(cluster.token_file, "service account token")).empty()) {
    throw std::runtime_error("in-cluster: the service account token " + cluster.token_file +
                             " is empty");
  }
  cluster.ca_file = dir + "/ca.crt";
  if (readFile(cluster.ca_file, "API server CA").find("-----BEGIN CERTIFICATE-----") ==
      std::string::npos) {
    throw std::runtime_error("in-cluster: the API server CA " + cluster.ca_file +
                             " holds no PEM certificate");
  }
  cluster.ns = trim(readFile(dir + "/namespace", "namespace file"));
  if (cluster.ns.empty()) {
    throw std::runtime_error("in-cluster: the namespace file " + dir + "/namespace is empty");
  }
  why.clear();
  return cluster;
}

} // namespace kesm::k8s
