// TestPki, SServer and SilentListener of tls_peer.h.

#include "tests/unit/net/tls_peer.h"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace kesm::test {

namespace {

void run(const std::string& command) {
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    throw std::runtime_error("failed (" + std::to_string(rc) + "): " + command);
  }
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

} // namespace

TestPki::TestPki() {
  char tmpl[] = "/tmp/kesm-tls-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  }
  dir_ = tmpl;
  // Two CAs, a server certificate with DNS and IP SANs, a client certificate; EC keys are
  // made in milliseconds where RSA would take a while on a busy machine.
  const std::string script = R"(set -e
cd ")" + dir_ + R"("
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { key "$1.key"; openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign; }
leaf() { key "$1.key"; openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2"
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days 2 \
    -extfile "$1.ext" 2>/dev/null; }
ca ca "kesm test CA"
ca other-ca "kesm other CA"
leaf server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth"
leaf client kesm-client "extendedKeyUsage=clientAuth"
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello' > hello
)";
  std::ofstream(dir_ + "/make.sh") << script;
  run("bash " + dir_ + "/make.sh");
}

TestPki::~TestPki() {
  if (!dir_.empty() && dir_.rfind("/tmp/kesm-tls-", 0) == 0) {
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }
}

SServer::SServer(const TestPki& pki, const std::string& accept, std::vector<std::string> extra) {
  static int counter = 0;
  out_file_ =
      pki.path("s_server." + std::to_string(::getpid()) + "." + std::to_string(++counter) + ".log");
  std::vector<std::string> args = {"openssl", "s_server",
                                   "-accept", accept,
                                   "-cert",   pki.path("server.pem"),
                                   "-key",    pki.path("server.key"),
                                   "-HTTP"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // -HTTP serves files relative to the working directory.
    const int fd = ::open(out_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ::chdir(pki.dir().c_str()) != 0) {
      ::_exit(127);
    }
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    ::execvp("openssl", argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string out = slurp(out_file_);
    const auto at = out.find("ACCEPT ");
    const auto eol = at == std::string::npos ? std::string::npos : out.find('\n', at);
    if (eol != std::string::npos) {
      const std::string addr = out.substr(at + 7, eol - at - 7);
      port_ = static_cast<std::uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
      return;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("openssl s_server exited: " + slurp(out_file_));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("openssl s_server printed no ACCEPT line in 10 s: " + slurp(out_file_));
}

SServer::~SServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

std::string SServer::log() const { return slurp(out_file_); }

SilentListener::SilentListener() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd_, 16) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error(std::string("silent listener: ") + std::strerror(errno));
  }
  port_ = ntohs(addr.sin_port);
}

SilentListener::~SilentListener() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

} // namespace kesm::test
