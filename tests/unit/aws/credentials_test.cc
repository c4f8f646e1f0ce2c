// The AWS credential chain with everything it reads injected: order, each source's request and
// answer, refresh timing, thread safety, and that no secret reaches an error.

#include "aws/credentials.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace kesm;
using namespace std::chrono_literals;

namespace {

const aws::TimePoint kT0 = std::chrono::system_clock::from_time_t(1764644400); // 2025-12-02T03:00Z

struct FakeWorld {
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> files;
  std::vector<aws::HttpCall> calls;
  std::function<aws::HttpAnswer(const aws::HttpCall&)> answer;
  aws::TimePoint now = kT0;
  std::vector<std::string> warnings;
  std::mutex mutex;

  aws::CredentialsEnvironment environment() {
    aws::CredentialsEnvironment e;
    e.env = [this](const std::string& name) -> std::optional<std::string> {
      auto it = env.find(name);
      return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    e.read_file = [this](const std::string& path) -> std::optional<std::string> {
      auto it = files.find(path);
      return it == files.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    e.http = [this](const aws::HttpCall& call) {
      std::lock_guard lock(mutex);
      calls.push_back(call);
      return answer(call);
    };
    e.now = [this] { return now; };
    e.warn = [this](const std::string& message) { warnings.push_back(message); };
    return e;
  }
};

std::string stsAnswer(const std::string& key, const std::string& expiration) {
  return "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
         "<AssumeRoleWithWebIdentityResult><Credentials>"
         "<AccessKeyId>" +
         key +
         "</AccessKeyId><SecretAccessKey>wsecret</SecretAccessKey>"
         "<SessionToken>wtoken</SessionToken><Expiration>" +
         expiration +
         "</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
         "</AssumeRoleWithWebIdentityResponse>";
}

std::string headerOf(const aws::HttpCall& call, const std::string& name) {
  for (const auto& [n, v] : call.headers) {
    if (n == name) {
      return v;
    }
  }
  return "";
}

} // namespace

TEST_CASE("credentials: environment first, with the session token", "[unit]") {
  FakeWorld w;
  w.env = {{"AWS_ACCESS_KEY_ID", "AKENV"},        {"AWS_SECRET_ACCESS_KEY", "envsecret"},
           {"AWS_SESSION_TOKEN", "envtoken"},     {"HOME", "/home/k"},
           {"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"}, {"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"}};
  w.files["/home/k/.aws/credentials"] = "[default]\naws_access_key_id=AKFILE\n"
                                        "aws_secret_access_key=filesecret\n";
  auto provider = aws::makeDefaultChain(w.environment(), "eu-west-1");
  const aws::Credentials c = provider->get();
  CHECK(c.access_key_id == "AKENV");
  CHECK(c.secret_access_key == "envsecret");
  CHECK(c.session_token == "envtoken");
  CHECK(provider->source().find("environment") != std::string::npos);
  CHECK(w.calls.empty());
}

TEST_CASE("credentials: the credentials file, then the config file, profile from AWS_PROFILE",
          "[unit]") {
  FakeWorld w;
  w.env = {{"HOME", "/home/k"}, {"AWS_ACCESS_KEY_ID", "AKONLY"}}; // no secret: not a source
  w.files["/home/k/.aws/credentials"] =
      "# comment\n[default]\naws_access_key_id = AKDEF\naws_secret_access_key = defsecret\n"
      "[other]\nAWS_Access_Key_Id=AKOTHER\naws_secret_access_key=othersecret\n"
      "aws_session_token=othertoken\n";
  w.files["/home/k/.aws/config"] = "[default]\nregion = eu-west-1\ns3 =\n  max_concurrent = 2\n"
                                   "[profile cfg]\naws_access_key_id=AKCFG\n"
                                   "aws_secret_access_key=cfgsecret\n";
  SECTION("default profile") {
    auto p = aws::makeDefaultChain(w.environment(), "");
    CHECK(p->get().access_key_id == "AKDEF");
    CHECK(p->source() == "profile default (/home/k/.aws/credentials)");
  }
  SECTION("AWS_PROFILE from the credentials file, keys case-insensitive") {
    w.env["AWS_PROFILE"] = "other";
    auto c = aws::makeDefaultChain(w.environment(), "")->get();
    CHECK(c.access_key_id == "AKOTHER");
    CHECK(c.session_token == "othertoken");
  }
  SECTION("AWS_PROFILE from the config file's [profile NAME]") {
    w.env["AWS_PROFILE"] = "cfg";
    CHECK(aws::makeDefaultChain(w.environment(), "")->get().access_key_id == "AKCFG");
  }
  SECTION("files moved by AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE") {
    w.env["AWS_SHARED_CREDENTIALS_FILE"] = "/etc/creds";
    w.env["AWS_CONFIG_FILE"] = "/etc/cfg";
    w.files["/etc/cfg"] = "[default]\naws_access_key_id=AKMOVED\naws_secret_access_key=s\n";
    CHECK(aws::makeDefaultChain(w.environment(), "")->get().access_key_id == "AKMOVED");
  }
  SECTION("an AWS_PROFILE no file has is a startup error") {
    w.env["AWS_PROFILE"] = "missing";
    CHECK_THROWS_WITH(aws::makeDefaultChain(w.environment(), ""),
                      Catch::Contains("AWS_PROFILE missing is in neither"));
  }
  SECTION("a malformed file names the line, not its text") {
    w.files["/home/k/.aws/credentials"] = "[default]\naws_secret_access_key sekrit\n";
    try {
      aws::makeDefaultChain(w.environment(), "");
      FAIL("no throw");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()).find("line 2") != std::string::npos);
      CHECK(std::string(e.what()).find("sekrit") == std::string::npos);
    }
  }
}

TEST_CASE("credentials: web identity through STS AssumeRoleWithWebIdentity, refreshed", "[unit]") {
  FakeWorld w;
  w.env = {{"HOME", "/nohome"},
           {"AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"},
           {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/kesm"},
           {"AWS_ROLE_SESSION_NAME", "kesm pod"},
           {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds"}};
  w.files["/var/run/token"] = "jwt-1\n";
  int served = 0;
  w.answer = [&](const aws::HttpCall&) {
    ++served;
    // One hour from the fake now.
    return aws::HttpAnswer{
        200,
        stsAnswer("ASIA" + std::to_string(served),
                  served == 1 ? "2025-12-02T04:00:00Z" : "2025-12-02T05:00:00.000Z"),
        ""};
  };
  SECTION("STS endpoint: AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else regional") {
    std::string expected;
    SECTION("sts") {
      w.env["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:5000/";
      w.env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:6000";
      expected = "http://127.0.0.1:5000/";
    }
    SECTION("generic") {
      w.env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:6000";
      expected = "http://127.0.0.1:6000/";
    }
    SECTION("regional") { expected = "https://sts.eu-west-1.amazonaws.com/"; }
    auto p = aws::makeDefaultChain(w.environment(), "eu-west-1");
    CHECK(w.calls.empty()); // nothing fetched at start
    CHECK(p->get().access_key_id == "ASIA1");
    REQUIRE(w.calls.size() == 1);
    CHECK(w.calls[0].url == expected);
    CHECK(w.calls[0].method == "POST");
    CHECK(headerOf(w.calls[0], "Authorization").empty()); // unsigned
    CHECK(w.calls[0].body ==
          "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A"
          "123456789012%3Arole%2Fkesm&RoleSessionName=kesm%20pod&WebIdentityToken=jwt-1");
  }
  SECTION("refreshed 5 minutes before expiry, with the rotated token") {
    auto p = aws::makeDefaultChain(w.environment(), "eu-west-1");
    CHECK(p->get().session_token == "wtoken");
    w.now = kT0 + 54min;
    CHECK(p->get().access_key_id == "ASIA1");
    CHECK(w.calls.size() == 1);
    w.files["/var/run/token"] = "jwt-2";
    w.now = kT0 + 55min;
    CHECK(p->get().access_key_id == "ASIA2");
    REQUIRE(w.calls.size() == 2);
    CHECK(w.calls[1].body.find("WebIdentityToken=jwt-2") != std::string::npos);
  }
  SECTION("a failed refresh keeps valid credentials, then fails without secrets") {
    auto p = aws::makeDefaultChain(w.environment(), "eu-west-1");
    CHECK(p->get().access_key_id == "ASIA1");
    w.answer = [](const aws::HttpCall&) {
      return aws::HttpAnswer{403,
                             "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                             "<Message>Not authorized to perform sts:AssumeRoleWithWebIdentity"
                             "</Message></Error></ErrorResponse>",
                             ""};
    };
    w.now = kT0 + 56min;
    CHECK(p->get().access_key_id == "ASIA1");
    CHECK(w.calls.size() == 2);
    REQUIRE(w.warnings.size() == 1);
    CHECK(w.warnings[0].find("AccessDenied") != std::string::npos);
    CHECK(w.warnings[0].find("jwt-1") == std::string::npos);
    w.now = kT0 + 56min + 9s; // not at every invoke: 10 s later
    CHECK(p->get().access_key_id == "ASIA1");
    CHECK(w.calls.size() == 2);
    w.now = kT0 + 56min + 10s;
    CHECK(p->get().access_key_id == "ASIA1");
    CHECK(w.calls.size() == 3);
    w.now = kT0 + 60min;
    try {
      p->get();
      FAIL("no throw");
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      CHECK(what.find("AccessDenied") != std::string::npos);
      CHECK(what.find("HTTP 403") != std::string::npos);
      CHECK(what.find("jwt-1") == std::string::npos);
      CHECK(what.find("wsecret") == std::string::npos);
    }
  }
}

TEST_CASE("credentials: container credentials with the authorization token file", "[unit]") {
  FakeWorld w;
  w.env = {{"HOME", "/nohome"},
           {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials"},
           {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/eks-token"},
           {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored-when-file"}};
  w.files["/var/run/eks-token"] = "eks-token-1\n";
  w.answer = [](const aws::HttpCall&) {
    return aws::HttpAnswer{
        200,
        R"({"AccessKeyId":"ASIAC","SecretAccessKey":"csecret",)"
        R"("Token":"ctoken","AccountId":"1","Expiration":"2025-12-02T03:10:00Z"})",
        ""};
  };
  auto p = aws::makeDefaultChain(w.environment(), "");
  const aws::Credentials c = p->get();
  CHECK(c.access_key_id == "ASIAC");
  CHECK(c.session_token == "ctoken");
  REQUIRE(w.calls.size() == 1);
  CHECK(w.calls[0].method == "GET");
  CHECK(w.calls[0].url == "http://169.254.170.23/v1/credentials");
  CHECK(headerOf(w.calls[0], "Authorization") == "eks-token-1");
  // Ten minutes of life: refreshed halfway, at 5 minutes.
  w.now = kT0 + 4min + 59s;
  p->get();
  CHECK(w.calls.size() == 1);
  w.now = kT0 + 5min;
  p->get();
  CHECK(w.calls.size() == 2);

  SECTION("http to another host is refused at start, as the SDKs do") {
    w.env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://10.0.0.1/creds";
    CHECK_THROWS_WITH(aws::makeDefaultChain(w.environment(), ""), Catch::Contains("use https"));
  }
}

TEST_CASE("credentials: no source is a startup error naming where it looked", "[unit]") {
  FakeWorld w;
  w.env = {{"HOME", "/nohome"}};
  CHECK_THROWS_WITH(aws::makeDefaultChain(w.environment(), ""),
                    Catch::Contains("no AWS credentials") &&
                        Catch::Contains("AWS_WEB_IDENTITY_TOKEN_FILE") &&
                        Catch::Contains("/nohome/.aws/credentials"));
}

TEST_CASE("credentials: concurrent callers share one fetch", "[unit]") {
  std::atomic<int> fetches{0};
  auto p = aws::makeRefreshingProvider(
      "test",
      [&] {
        ++fetches;
        std::this_thread::sleep_for(20ms); // let the other callers pile up on the lock
        return aws::TimedCredentials{{"AK", "S", "T"}, kT0 + 1h};
      },
      [] { return kT0; });
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] { CHECK(p->get().access_key_id == "AK"); });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(fetches == 1);
}

TEST_CASE("credentials: refreshTime, ISO 8601 and percent-encoding", "[unit]") {
  CHECK(aws::refreshTime(kT0, kT0 + 1h) == kT0 + 55min);
  CHECK(aws::refreshTime(kT0, kT0 + 6min) == kT0 + 3min);
  CHECK(aws::parseIso8601("2025-12-02T03:00:00Z") == kT0);
  CHECK(aws::parseIso8601("2025-12-02T03:00:00.123Z") == kT0);
  CHECK(aws::parseIso8601("2025-12-02T04:00:00+01:00") == kT0);
  CHECK_THROWS(aws::parseIso8601("yesterday"));
  CHECK(aws::uriEncode("a-b_c.d~e f:g/h$") == "a-b_c.d~e%20f%3Ag%2Fh%24");
}
