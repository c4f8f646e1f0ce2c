// parseUrl (Boost.URL): http and https, IPv6 literals, default ports; parseHttpUrl is the
// same parser.

#include "net/http.h"

#include <catch2/catch.hpp>

using namespace kesm;

TEST_CASE("url: parseUrl accepts http and https URLs", "[unit]") {
  struct Good {
    std::string url;
    net::Scheme scheme;
    std::string host;
    std::uint16_t port;
    std::string target;
  };
  auto good = GENERATE(Good{.url = "http://fn",
                            .scheme = net::Scheme::kHttp,
                            .host = "fn",
                            .port = 80,
                            .target = "/"},
                       Good{.url = "https://kubernetes.default.svc",
                            .scheme = net::Scheme::kHttps,
                            .host = "kubernetes.default.svc",
                            .port = 443,
                            .target = "/"},
                       Good{.url = "https://10.96.0.1:6443/apis?x=1",
                            .scheme = net::Scheme::kHttps,
                            .host = "10.96.0.1",
                            .port = 6443,
                            .target = "/apis?x=1"},
                       Good{.url = "https://[fd00::1]:6443/version",
                            .scheme = net::Scheme::kHttps,
                            .host = "fd00::1",
                            .port = 6443,
                            .target = "/version"},
                       Good{.url = "http://[::1]/",
                            .scheme = net::Scheme::kHttp,
                            .host = "::1",
                            .port = 80,
                            .target = "/"},
                       Good{.url = "HTTPS://Host.Example:8443/a%20b",
                            .scheme = net::Scheme::kHttps,
                            .host = "Host.Example",
                            .port = 8443,
                            .target = "/a%20b"});
  CAPTURE(good.url);
  const net::Url url = net::parseUrl(good.url);
  CHECK(url.scheme == good.scheme);
  CHECK(url.host == good.host);
  CHECK(url.port == good.port);
  CHECK(url.target == good.target);
}

TEST_CASE("url: parseUrl rejects what it cannot connect to, saying why", "[unit]") {
  struct Bad {
    std::string url;
    std::string why;
  };
  auto bad = GENERATE(Bad{.url = "", .why = "not a URL"},
                      Bad{.url = "fn:80", .why = "scheme must be http or https"},
                      Bad{.url = "ftp://fn/", .why = "scheme must be http or https"},
                      Bad{.url = "https://", .why = "missing"},
                      Bad{.url = "https://:443/", .why = "missing"},
                      Bad{.url = "https://fn:/", .why = "port must be"},
                      Bad{.url = "https://fn:0/", .why = "port must be"},
                      Bad{.url = "https://fn:65536/", .why = "port must be"},
                      Bad{.url = "http://fn:8x", .why = "port must be"},
                      Bad{.url = "http://fn:8x/p", .why = "port must be"},
                      Bad{.url = "https://[::1/", .why = "not a URL"},
                      Bad{.url = "https://user:pw@fn/", .why = "user info"},
                      Bad{.url = "https://fn/#frag", .why = "fragment"});
  CAPTURE(bad.url);
  CHECK_THROWS_WITH(net::parseUrl(bad.url), Catch::Contains(bad.why));
}

TEST_CASE("url: parseHttpUrl is parseUrl: https with its default port too", "[unit]") {
  CHECK(net::parseHttpUrl("https://fn/").scheme == net::Scheme::kHttps);
  CHECK(net::parseHttpUrl("https://fn/").port == 443);
  CHECK(net::parseHttpUrl("http://fn:81/x").scheme == net::Scheme::kHttp);
}
