#pragma once

// An HTTPS client of the Kubernetes API server as a pod sees it: the address, CA and bearer
// token of an InCluster, the token re-read when the kubelet rotates it, a timeout on every
// request. Bodies are whatever the caller encodes (JSON); this layer knows no resource.

#include "k8s/in_cluster.h"
#include "net/http.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <sys/types.h>

namespace kesm::k8s {

// A bearer token in a file that changes under us: the kubelet rotates a projected token by
// swapping a symlink (..data) atomically, so the path's inode changes; a plain rewrite changes
// its size or mtime. Owned and used by one thread at a time.
class TokenFile {
public:
  // max_age: re-read at least this often even when the file looks unchanged (an mtime
  // granularity or a copy that kept size and mtime must not pin an old token forever).
  explicit TokenFile(std::string path, std::chrono::seconds max_age = std::chrono::seconds(60));

  // The token (whitespace trimmed), re-read from the file when it changed or is older than
  // max_age. When a re-read fails the last good token stays; error() says why.
  const std::string& current(std::chrono::steady_clock::time_point now);
  // Re-reads now (after a 401). True when the token differs from the one before.
  bool reload(std::chrono::steady_clock::time_point now);
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }

private:
  struct Identity {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    long long mtime_ns = 0;
    bool operator==(const Identity&) const = default;
  };
  bool read(std::chrono::steady_clock::time_point now);

  std::string path_;
  std::chrono::seconds max_age_;
  std::string token_;
  std::string error_;
  Identity identity_;
  std::chrono::steady_clock::time_point read_at_{};
  bool ever_read_ = false;
};

struct ApiClientOptions {
  // The whole of one request(): connect, TLS handshake, write, read, and the retry after a
  // 401 all end within it.
  std::chrono::milliseconds timeout{5000};
  std::chrono::seconds token_max_age{60};
  std::string user_agent{}; // empty: "kesm/<version>"
};

// Owned and used by one thread at a time (one keep-alive connection).
class ApiClient {
public:
  // Throws std::runtime_error when the CA file cannot be loaded.
  ApiClient(const InCluster& cluster, ApiClientOptions options);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // METHOD path (e.g. "/apis/coordination.k8s.io/v1/namespaces/ns/leases/name") with a JSON
  // body when non-empty. A 401 re-reads the token file and, when the token changed, retries
  // once within the same timeout. Transport failures (kConnect, kTimeout, kIo, kTls) come
  // back in the result, never as exceptions.
  net::HttpResult request(const std::string& method, const std::string& path,
                          const std::string& body = {});

  std::uint64_t connectionsOpened() const;
  std::string describe() const; // "https://host:port" for logs
  // Why the token file could not be read last time (the last good token is still sent);
  // empty when it was read.
  std::string tokenError() const;

private:
  ApiClientOptions options_;
  std::string origin_;
  TokenFile token_;
  std::unique_ptr<net::HttpClient> http_;
};

} // namespace kesm::k8s
