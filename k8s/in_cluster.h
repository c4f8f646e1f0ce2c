#pragma once

// What a pod knows of its cluster: the API server's address from the environment
// (KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT) and the service account's files (token,
// ca.crt, namespace) in /var/run/secrets/kubernetes.io/serviceaccount, or in the folder
// KESM_SERVICE_ACCOUNT_DIR names (tests, and clusters that mount them elsewhere).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace kesm::k8s {

inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

struct InCluster {
  std::string host; // as KUBERNETES_SERVICE_HOST says: a name, an IPv4 or an IPv6 address
  std::uint16_t port = 443;
  std::string token_file; // re-read when it changes: the kubelet rotates it
  std::string ca_file;    // verifies the API server's certificate
  std::string ns;         // the pod's namespace, from the namespace file
};

using Getenv = std::function<std::optional<std::string>(const std::string&)>;

// The cluster kesm runs in, or nullopt with `why` set when it does not look like a pod (no
// KUBERNETES_SERVICE_HOST, or no token file). A present but unreadable or malformed part
// (a port that is not a number, an empty namespace file) throws std::runtime_error naming it.
std::optional<InCluster> detectInCluster(const Getenv& getenv, std::string& why);

} // namespace kesm::k8s
