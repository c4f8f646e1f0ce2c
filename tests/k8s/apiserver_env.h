#pragma once

// What the tests against the real API server of the kesm_apiserver fixture share: its address,
// CA and admin token from $KESM_K8S_DIR/run/env, fresh names, and small file and socket helpers.
// Header-only (inline): each k8s test executable includes it; Catch2's REQUIRE fails the test
// that calls one when the fixture is missing.

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>

namespace kesm::k8s::apitest {

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Writes path atomically (a rename over it), as the kubelet rotates a projected token.
inline void writeAtomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  std::filesystem::rename(tmp, path);
}

// APISERVER_URL, APISERVER_TOKEN_FILE (the admin's), APISERVER_CA_FILE, ...
inline std::map<std::string, std::string> apiserverEnv() {
  const char* dir = std::getenv("KESM_K8S_DIR");
  REQUIRE(dir != nullptr);
  std::istringstream in(slurp(std::string(dir) + "/run/env"));
  std::map<std::string, std::string> env;
  for (std::string line; std::getline(in, line);) {
    if (auto eq = line.find('='); eq != std::string::npos) {
      env[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  REQUIRE(env.count("APISERVER_URL") == 1);
  return env;
}

inline std::uint16_t portOf(const std::string& url) {
  return static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

// Six hex digits, for a namespace of one test's own.
inline std::string randomSuffix() {
  std::random_device rd;
  std::ostringstream out;
  out << std::hex << (rd() & 0xffffff);
  return out.str();
}

} // namespace kesm::k8s::apitest
