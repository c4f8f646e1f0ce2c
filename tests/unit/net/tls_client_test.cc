// HttpClient over TLS against a peer we did not write: `openssl s_server -HTTP` with a PKI the
// test makes with the openssl command line (tls_peer.h).

#include "net/http.h"
#include "tests/unit/net/tls_peer.h"

#include <catch2/catch.hpp>
#include <thread>
#include <vector>

using namespace kesm;
using namespace std::chrono_literals;
using SteadyTime = std::chrono::steady_clock;

namespace {

net::Url httpsUrl(const std::string& host, std::uint16_t port) {
  net::Url url;
  url.scheme = net::Scheme::kHttps;
  url.host = host;
  url.port = port;
  return url;
}

net::HttpResult getHello(net::HttpClient& client) {
  return client.request("GET", "/hello", "", {}, 5s);
}

} // namespace

TEST_CASE("tls: the right CA and an IP SAN: 200 from openssl s_server", "[unit]") {
  test::TestPki pki;
  test::SServer server(pki, "127.0.0.1:0");
  net::HttpClient client(httpsUrl("127.0.0.1", server.port()), {.ca_file = pki.path("ca.pem")});
  const auto result = getHello(client);
  INFO(result.error_message << "\n" << server.log());
  REQUIRE(result.transportOk());
  CHECK(result.response.status == 200);
  CHECK(result.response.body == "hello");
}

TEST_CASE("tls: SNI carries a host name, never an IP address", "[unit]") {
  test::TestPki pki;
  // -tlsextdebug logs each ClientHello extension; -servername_fatal aborts a handshake whose
  // SNI is not "localhost" (-cert2/-key2 enable the check).
  test::SServer server(pki, "127.0.0.1:0",
                       {"-tlsextdebug", "-servername", "localhost", "-servername_fatal", "-cert2",
                        pki.path("server.pem"), "-key2", pki.path("server.key")});
  const std::string sni_logged = "TLS client extension \"server name\"";
  {
    net::HttpClient by_ip(httpsUrl("127.0.0.1", server.port()), {.ca_file = pki.path("ca.pem")});
    const auto result = getHello(by_ip);
    INFO(result.error_message << "\n" << server.log());
    REQUIRE(result.transportOk());
    CHECK(server.log().find(sni_logged) == std::string::npos);
  }
  net::HttpClient by_name(net::parseUrl("https://localhost:" + std::to_string(server.port()) + "/"),
                          {.ca_file = pki.path("ca.pem")});
  const auto result = getHello(by_name);
  INFO(result.error_message << "\n" << server.log());
  REQUIRE(result.transportOk());
  CHECK(result.response.body == "hello");
  CHECK(server.log().find(sni_logged) != std::string::npos);
}

TEST_CASE("tls: an IPv6 literal URL reaches s_server on ::1 and matches the IP SAN", "[unit]") {
  test::TestPki pki;
  test::SServer server(pki, "[::1]:0");
  net::HttpClient client(net::parseUrl("https://[::1]:" + std::to_string(server.port()) + "/"),
                         {.ca_file = pki.path("ca.pem")});
  const auto result = getHello(client);
  INFO(result.error_message << "\n" << server.log());
  REQUIRE(result.transportOk());
  CHECK(result.response.body == "hello");
}

TEST_CASE("tls: a server certificate from another CA is refused as kTls", "[unit]") {
  test::TestPki pki;
  test::SServer server(pki, "127.0.0.1:0");
  net::HttpClient client(httpsUrl("127.0.0.1", server.port()),
                         {.ca_file = pki.path("other-ca.pem")});
  const auto result = getHello(client);
  CHECK(result.error == net::HttpErrorKind::kTls);
  CHECK_THAT(result.error_message, Catch::Contains("certificate verify failed: unable to get local "
                                                   "issuer certificate"));
}

TEST_CASE("tls: the system store does not trust the test CA", "[unit]") {
  test::TestPki pki;
  test::SServer server(pki, "127.0.0.1:0");
  net::HttpClient client(httpsUrl("127.0.0.1", server.port()), {});
  const auto result = getHello(client);
  CHECK(result.error == net::HttpErrorKind::kTls);
  CHECK_THAT(result.error_message, Catch::Contains("certificate verify failed"));
}

TEST_CASE("tls: a name the certificate does not carry is refused as a hostname mismatch",
          "[unit]") {
  test::TestPki pki;
  test::SServer server(pki, "127.0.0.1:0");
  const auto name = GENERATE(as<std::string>{}, "api.example.com", "127.0.0.2", "::2");
  CAPTURE(name);
  net::HttpClient client(httpsUrl("127.0.0.1", server.port()),
                         {.ca_file = pki.path("ca.pem"), .server_name = name});
  const auto result = getHello(client);
  CHECK(result.error == net::HttpErrorKind::kTls);
  CHECK_THAT(result.error_message,
             Catch::Contains("certificate verify failed: hostname mismatch") &&
                 Catch::Contains(name));
}

TEST_CASE("tls: mutual TLS: s_server -Verify gets the client certificate, refuses without",
          "[unit]") {
  test::TestPki pki;
  test::SServer server(pki, "127.0.0.1:0", {"-Verify", "1", "-CAfile", pki.path("ca.pem")});
  SECTION("with the client certificate") {
    net::HttpClient client(httpsUrl("127.0.0.1", server.port()),
                           {.ca_file = pki.path("ca.pem"),
                            .cert_file = pki.path("client.pem"),
                            .key_file = pki.path("client.key")});
    const auto result = getHello(client);
    INFO(result.error_message << "\n" << server.log());
    REQUIRE(result.transportOk());
    CHECK(result.response.body == "hello");
  }
  SECTION("without one") {
    net::HttpClient client(httpsUrl("127.0.0.1", server.port()), {.ca_file = pki.path("ca.pem")});
    const auto result = getHello(client);
    // TLS 1.3: the client's handshake completes; the server's alert arrives on the read.
    CHECK(result.error == net::HttpErrorKind::kTls);
    CHECK_THAT(result.error_message, Catch::Contains("certificate required"));
  }
}

TEST_CASE("tls: a server that closes after each answer costs a reconnect, not a failure",
          "[unit]") {
  test::TestPki pki;
  test::SServer server(pki, "127.0.0.1:0");
  net::HttpClient client(httpsUrl("127.0.0.1", server.port()), {.ca_file = pki.path("ca.pem")});
  for (int i = 0; i < 3; ++i) {
    const auto result = getHello(client);
    INFO("request " << i << ": " << result.error_message);
    REQUIRE(result.transportOk());
    CHECK(result.response.body == "hello");
  }
  // s_server -HTTP ends every connection after one answer (close_notify, then FIN).
  CHECK(client.connectionsOpened() == 3);
}

TEST_CASE("tls: a listener that never answers the handshake times out within the timeout",
          "[unit]") {
  test::TestPki pki;
  test::SilentListener silent;
  net::HttpClient client(httpsUrl("127.0.0.1", silent.port()), {.ca_file = pki.path("ca.pem")});
  const auto start = SteadyTime::now();
  const auto result = client.request("GET", "/", "", {}, 400ms);
  const auto elapsed = SteadyTime::now() - start;
  CHECK(result.error == net::HttpErrorKind::kTimeout);
  CHECK_THAT(result.error_message, Catch::Contains("TLS handshake"));
  CHECK(elapsed >= 400ms);
  CHECK(elapsed < 1400ms);
}

TEST_CASE("tls: unreadable TLS files are a construction error", "[unit]") {
  test::TestPki pki;
  const auto url = httpsUrl("127.0.0.1", 1);
  CHECK_THROWS_WITH(net::HttpClient(url, {.ca_file = pki.path("missing.pem")}),
                    Catch::Contains("cannot load CA file"));
  CHECK_THROWS_WITH(
      net::HttpClient(url, {.ca_file = pki.path("ca.pem"), .cert_file = pki.path("client.pem")}),
      Catch::Contains("needs both"));
  CHECK_THROWS_WITH(net::HttpClient(url, {.ca_file = pki.path("ca.pem"),
                                          .cert_file = pki.path("client.pem"),
                                          .key_file = pki.path("ca.key")}),
                    Catch::Contains("client key"));
}

TEST_CASE("tls: one loaded context serves clients on several threads, each verifying its server",
          "[unit]") {
  test::TestPki pki;
  test::SServer server(pki, "127.0.0.1:0");
  net::TlsOptions options{.ca_file = pki.path("ca.pem")};
  options.context = net::loadTlsContext(options);
  // A name the certificate does not carry, on the same shared context: verification is per
  // connection, not per context.
  net::TlsOptions wrong_name = options;
  wrong_name.server_name = "other.example";
  std::vector<net::HttpResult> results(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      net::HttpClient client(httpsUrl("127.0.0.1", server.port()), i == 0 ? wrong_name : options);
      results[i] = getHello(client);
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(results[0].error == net::HttpErrorKind::kTls);
  CHECK_THAT(results[0].error_message, Catch::Contains("hostname mismatch"));
  for (std::size_t i = 1; i < results.size(); ++i) {
    INFO(i << ": " << results[i].error_message << "\n" << server.log());
    CHECK(results[i].transportOk());
  }
  // Files are read by loadTlsContext alone: a client with a context never opens them.
  net::TlsOptions gone = options;
  gone.ca_file = pki.path("missing.pem");
  CHECK_NOTHROW(net::HttpClient(httpsUrl("127.0.0.1", server.port()), gone));
  CHECK_THROWS_WITH(net::loadTlsContext(gone), Catch::Contains("missing.pem"));
}
