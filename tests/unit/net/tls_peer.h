#pragma once

// A real TLS peer for the client's tests: Debian's `openssl s_server`, with a test PKI made
// by the openssl command line in a temp folder. Nothing of the TLS server is ours.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace kesm::test {

// A temp folder with: ca.pem/ca.key (the test CA), other-ca.pem (a CA that signed nothing we
// serve), server.pem/server.key (CN localhost; SANs DNS:localhost, IP:127.0.0.1, IP:::1) and
// client.pem/client.key (signed by ca.pem). Removed on destruction.
class TestPki {
public:
  TestPki();
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;
  std::string path(const std::string& file) const { return dir_ + "/" + file; }
  const std::string& dir() const { return dir_; }

private:
  std::string dir_;
};

// `openssl s_server -HTTP` serving the files of `docroot` on `accept` ("127.0.0.1:0" or
// "[::1]:0"), with extra arguments (e.g. -Verify 1). The constructor waits (with a deadline)
// for its ACCEPT line and throws when it does not come. SIGTERM and reaped on destruction.
class SServer {
public:
  SServer(const TestPki& pki, const std::string& accept, std::vector<std::string> extra = {});
  ~SServer();
  SServer(const SServer&) = delete;
  SServer& operator=(const SServer&) = delete;
  std::uint16_t port() const { return port_; }
  std::string log() const; // its stdout and stderr, for failure messages

private:
  int pid_ = -1;
  std::uint16_t port_ = 0;
  std::string out_file_;
};

// A TCP listener that accepts nothing and never writes: connects complete in the kernel's
// backlog, then every handshake waits forever.
class SilentListener {
public:
  SilentListener();
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  std::uint16_t port() const { return port_; }

private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

} // namespace kesm::test
