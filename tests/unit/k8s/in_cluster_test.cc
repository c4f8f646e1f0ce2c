// detectInCluster: the environment and a service-account folder made by the test.

#include "k8s/in_cluster.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

using namespace kesm::k8s;
namespace fs = std::filesystem;

namespace {

struct SaDir {
  SaDir() {
    char tmpl[] = "/tmp/kesm-sa-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~SaDir() { fs::remove_all(path); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path + "/" + name) << text;
  }
  std::string path;
};

constexpr const char* kPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

Getenv envOf(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional(it->second);
  };
}

} // namespace

TEST_CASE("in-cluster: a pod's environment and files", "[unit]") {
  SaDir sa;
  sa.write("token", "eyJhbGciOi.token\n");
  sa.write("ca.crt", kPem);
  sa.write("namespace", "kesm-system\n");
  std::string why;
  const auto cluster = detectInCluster(envOf({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                              {"KUBERNETES_SERVICE_PORT", "6443"},
                                              {"KESM_SERVICE_ACCOUNT_DIR", sa.path + "/"}}),
                                       why);
  INFO(why);
  REQUIRE(cluster);
  CHECK(cluster->host == "10.96.0.1");
  CHECK(cluster->port == 6443);
  CHECK(cluster->token_file == sa.path + "/token");
  CHECK(cluster->ca_file == sa.path + "/ca.crt");
  CHECK(cluster->ns == "kesm-system");
}

TEST_CASE("in-cluster: default port 443 and a bare or bracketed IPv6 host", "[unit]") {
  SaDir sa;
  sa.write("token", "t");
  sa.write("ca.crt", kPem);
  sa.write("namespace", "ns");
  const auto host = GENERATE(as<std::string>{}, "fd00:10:96::1", "[fd00:10:96::1]");
  std::string why;
  const auto cluster = detectInCluster(
      envOf({{"KUBERNETES_SERVICE_HOST", host}, {"KESM_SERVICE_ACCOUNT_DIR", sa.path}}), why);
  REQUIRE(cluster);
  CHECK(cluster->host == "fd00:10:96::1");
  CHECK(cluster->port == 443);
}

TEST_CASE("in-cluster: not a pod is nullopt with a reason", "[unit]") {
  SaDir sa; // empty: no token
  std::string why;
  CHECK_FALSE(detectInCluster(envOf({{"KESM_SERVICE_ACCOUNT_DIR", sa.path}}), why));
  CHECK_THAT(why, Catch::Contains("KUBERNETES_SERVICE_HOST is not set"));
  CHECK_FALSE(detectInCluster(
      envOf({{"KUBERNETES_SERVICE_HOST", "10.0.0.1"}, {"KESM_SERVICE_ACCOUNT_DIR", sa.path}}),
      why));
  CHECK_THAT(why, Catch::Contains("no service account token at " + sa.path + "/token"));
}

TEST_CASE("in-cluster: a present but broken part throws naming it", "[unit]") {
  SaDir sa;
  sa.write("token", "t");
  sa.write("ca.crt", kPem);
  sa.write("namespace", "ns");
  std::map<std::string, std::string> env{{"KUBERNETES_SERVICE_HOST", "10.0.0.1"},
                                         {"KESM_SERVICE_ACCOUNT_DIR", sa.path}};
  std::string why;
  SECTION("a port that is not a number") {
    env["KUBERNETES_SERVICE_PORT"] = "https";
    CHECK_THROWS_WITH(detectInCluster(envOf(env), why),
                      Catch::Contains("KUBERNETES_SERVICE_PORT 'https'"));
  }
  SECTION("an empty namespace file") {
    sa.write("namespace", "\n");
    CHECK_THROWS_WITH(detectInCluster(envOf(env), why), Catch::Contains("namespace"));
  }
  SECTION("no namespace file") {
    fs::remove(sa.path + "/namespace");
    CHECK_THROWS_WITH(detectInCluster(envOf(env), why), Catch::Contains("namespace file"));
  }
  SECTION("a CA file without a certificate") {
    sa.write("ca.crt", "garbage");
    CHECK_THROWS_WITH(detectInCluster(envOf(env), why), Catch::Contains("ca.crt"));
  }
  SECTION("an empty token") {
    sa.write("token", "");
    CHECK_THROWS_WITH(detectInCluster(envOf(env), why), Catch::Contains("token"));
  }
}
