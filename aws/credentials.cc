#include "aws/credentials.h"

#include <algorithm>
#include <boost/json.hpp>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace kesm::aws {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::optional<std::string> envValue(const CredentialsEnvironment& e, const std::string& name) {
  auto value = e.env(name);
  if (value && value->empty()) {
    return std::nullopt;
  }
  return value;
}

} // namespace

CredentialsEnvironment systemEnvironment(std::function<HttpAnswer(const HttpCall&)> http,
                                         std::function<void(const std::string&)> warn) {
  CredentialsEnvironment e;
  e.env = [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
      return std::nullopt;
    }
    return std::string(value);
  };
  e.read_file = [](const std::string& path) -> std::optional<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
      return std::nullopt;
    }
    return text.str();
  };
  e.http = std::move(http);
  e.now = [] { return std::chrono::system_clock::now(); };
  e.warn = std::move(warn);
  return e;
}

TimePoint refreshTime(TimePoint obtained, TimePoint expiration) {
  const auto lifetime = expiration - obtained;
  const auto margin =
      std::min<std::chrono::system_clock::duration>(std::chrono::minutes(5), lifetime / 2);
  return expiration - margin;
}

namespace {

constexpr std::chrono::seconds kRetryRefreshAfter{10};

class RefreshingProvider final : public CredentialsProvider {
public:
  RefreshingProvider(std::string source, std::function<TimedCredentials()> fetch,
                     std::function<TimePoint()> now, std::function<void(const std::string&)> warn)
      : source_(std::move(source)), fetch_(std::move(fetch)), now_(std::move(now)),
        warn_(std::move(warn)) {}

  Credentials get() override {
    std::lock_guard lock(mutex_);
    const TimePoint now = now_();
    if (current_ && (!current_->expiration || now < refresh_at_)) {
      return current_->credentials;
    }
    try {
      TimedCredentials fresh = fetch_();
      refresh_at_ = fresh.expiration ? refreshTime(now, *fresh.expiration) : TimePoint::max();
      current_ = std::move(fresh);
    } catch (const std::runtime_error& e) {
      if (current_ && current_->expiration && now < *current_->expiration) {
        // Still valid: keep them, and try again in a while rather than at every invoke.
        refresh_at_ = std::min(now + kRetryRefreshAfter, *current_->expiration);
        if (warn_) {
          warn_("refreshing AWS credentials from " + source_ +
                " failed; the current ones stay in use until they expire: " + e.what());
        }
        return current_->credentials;
      }
      throw std::runtime_error("AWS credentials from " + source_ + ": " + e.what());
    }
    return current_->credentials;
  }

  std::string source() const override { return source_; }

private:
  const std::string source_;
  const std::function<TimedCredentials()> fetch_;
  const std::function<TimePoint()> now_;
  const std::function<void(const std::string&)> warn_;
  std::mutex mutex_;
  std::optional<TimedCredentials> current_; // guarded by mutex_
  TimePoint refresh_at_{};                  // guarded by mutex_
};

} // namespace

std::shared_ptr<CredentialsProvider>
makeRefreshingProvider(std::string source, std::function<TimedCredentials()> fetch,
                       std::function<TimePoint()> now,
                       std::function<void(const std::string&)> warn) {
  return std::make_shared<RefreshingProvider>(std::move(source), std::move(fetch), std::move(now),
                                              std::move(warn));
}

IniSections parseIni(std::string_view text) {
  IniSections sections;
  std::map<std::string, std::string>* current = nullptr;
  std::size_t line_number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view raw = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') {
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(raw.front())) && current != nullptr) {
      continue; // a continuation: nested settings ("s3 =" then indented keys)
    }
    if (line.front() == '[') {
      if (line.back() != ']') {
        throw std::runtime_error("line " + std::to_string(line_number) + ": unclosed '['");
      }
      current = &sections[std::string(trim(line.substr(1, line.size() - 2)))];
      continue;
    }
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos || current == nullptr) {
      throw std::runtime_error("line " + std::to_string(line_number) +
                               (current == nullptr ? ": a setting before any [section]"
                                                   : ": neither [section] nor key = value"));
    }
    (*current)[lower(trim(line.substr(0, eq)))] = std::string(trim(line.substr(eq + 1)));
  }
  return sections;
}

TimePoint parseIso8601(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM]
  auto bad = [&] {
    return std::runtime_error("not an ISO 8601 time: '" + std::string(text) + "'");
  };
  if (text.size() < 19 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != ' ') || text[13] != ':' || text[16] != ':') {
    throw bad();
  }
  auto number = [&](std::size_t pos, std::size_t len) {
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') {
        throw bad();
      }
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  std::tm tm{};
  tm.tm_year = number(0, 4) - 1900;
  tm.tm_mon = number(5, 2) - 1;
  tm.tm_mday = number(8, 2);
  tm.tm_hour = number(11, 2);
  tm.tm_min = number(14, 2);
  tm.tm_sec = number(17, 2);
  std::size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      ++pos; // sub-second precision: expiry is conservative enough without it
    }
  }
  long offset_seconds = 0;
  const std::string_view zone = text.substr(pos);
  if (zone == "Z" || zone == "z" || zone.empty()) {
    // UTC
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
    offset_seconds =
        (number(pos + 1, 2) * 3600L + number(pos + 4, 2) * 60L) * (zone[0] == '+' ? 1 : -1);
  } else {
    throw bad();
  }
  const std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) {
    throw bad();
  }
  return std::chrono::system_clock::from_time_t(t - offset_seconds);
}

TimedCredentials parseStsCredentials(std::string_view xml, std::string_view action) {
  namespace pt = boost::property_tree;
  pt::ptree tree;
  try {
    std::istringstream in{std::string(xml)};
    pt::read_xml(in, tree);
  } catch (const pt::ptree_error&) {
    throw std::runtime_error("STS " + std::string(action) + " answered with malformed XML");
  }
  if (auto error = tree.get_child_optional("ErrorResponse.Error")) {
    // Code and Message name the problem; neither echoes the token.
    throw std::runtime_error("STS " + std::string(action) + ": " +
                             error->get<std::string>("Code", "?") + ": " +
                             error->get<std::string>("Message", ""));
  }
  const std::string a(action);
  auto creds = tree.get_child_optional(a + "Response." + a + "Result.Credentials");
  if (!creds) {
    throw std::runtime_error("STS " + a + " answered without Credentials");
  }
  TimedCredentials out;
  out.credentials.access_key_id = creds->get<std::string>("AccessKeyId", "");
  out.credentials.secret_access_key = creds->get<std::string>("SecretAccessKey", "");
  out.credentials.session_token = creds->get<std::string>("SessionToken", "");
  if (out.credentials.access_key_id.empty() || out.credentials.secret_access_key.empty()) {
    throw std::runtime_error("STS " + a + " answered without AccessKeyId or SecretAccessKey");
  }
  if (auto expiration = creds->get_optional<std::string>("Expiration")) {
    out.expiration = parseIso8601(trim(*expiration));
  }
  return out;
}

TimedCredentials parseContainerCredentials(std::string_view json) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(json, ec);
  if (ec || !doc.is_object()) {
    throw std::runtime_error("the container credentials endpoint answered with no JSON object");
  }
  const auto& obj = doc.as_object();
  auto text = [&](const char* name) -> std::string {
    const auto* v = obj.if_contains(name);
    return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  TimedCredentials out;
  out.credentials.access_key_id = text("AccessKeyId");
  out.credentials.secret_access_key = text("SecretAccessKey");
  out.credentials.session_token = text("Token");
  if (out.credentials.access_key_id.empty() || out.credentials.secret_access_key.empty()) {
    const std::string code = text("Code");
    throw std::runtime_error("the container credentials endpoint answered without "
                             "AccessKeyId or SecretAccessKey" +
                             (code.empty() ? "" : " (" + code + ": " + text("Message") + ")"));
  }
  if (const std::string expiration = text("Expiration"); !expiration.empty()) {
    out.expiration = parseIso8601(expiration);
  }
  return out;
}

namespace {

std::string homeFile(const CredentialsEnvironment& e, const char* override_var, const char* name) {
  if (auto path = envValue(e, override_var)) {
    return *path;
  }
  const auto home = envValue(e, "HOME");
  return (home ? *home : std::string()) + "/.aws/" + name;
}

// Keys of one profile, or nullopt when the file lacks it.
std::optional<std::map<std::string, std::string>>
profileOf(const CredentialsEnvironment& e, const std::string& path, const std::string& section) {
  const auto text = e.read_file(path);
  if (!text) {
    return std::nullopt;
  }
  IniSections sections;
  try {
    sections = parseIni(*text);
  } catch (const std::runtime_error& err) {
    throw std::runtime_error("AWS file " + path + ": " + err.what());
  }
  auto it = sections.find(section);
  if (it == sections.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::optional<TimedCredentials> keysOf(const std::map<std::string, std::string>& profile) {
  auto get = [&](const char* key) {
    auto it = profile.find(key);
    return it == profile.end() ? std::string() : it->second;
  };
  TimedCredentials out;
  out.credentials.access_key_id = get("aws_access_key_id");
  out.credentials.secret_access_key = get("aws_secret_access_key");
  out.credentials.session_token = get("aws_session_token");
  if (out.credentials.access_key_id.empty() || out.credentials.secret_access_key.empty()) {
    return std::nullopt;
  }
  return out;
}

bool containerHostAllowed(const std::string& url) {
  // As the SDKs: https anywhere; http only to loopback and the ECS / EKS agents.
  if (url.rfind("https://", 0) == 0) {
    return true;
  }
  if (url.rfind("http://", 0) != 0) {
    return false;
  }
  std::string rest = url.substr(7);
  std::string host;
  if (!rest.empty() && rest[0] == '[') {
    host = rest.substr(1, rest.find(']') - 1);
  } else {
    host = rest.substr(0, rest.find_first_of(":/"));
  }
  host = lower(host);
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1" ||
         host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23";
}

std::string describeHttpFailure(const HttpAnswer& answer) {
  return answer.status == 0 ? answer.error : "HTTP " + std::to_string(answer.status);
}

} // namespace

std::shared_ptr<CredentialsProvider> makeDefaultChain(const CredentialsEnvironment& environment,
                                                      const std::string& region) {
  const CredentialsEnvironment e = environment;

  // 1. Environment.
  const auto key_id = envValue(e, "AWS_ACCESS_KEY_ID");
  const auto secret = envValue(e, "AWS_SECRET_ACCESS_KEY");
  if (key_id && secret) {
    TimedCredentials c{{*key_id, *secret, envValue(e, "AWS_SESSION_TOKEN").value_or("")}, {}};
    return makeRefreshingProvider(
        "the environment (AWS_ACCESS_KEY_ID)", [c] { return c; }, e.now);
  }

  // 2. Shared credentials file, then config file.
  const auto profile_env = envValue(e, "AWS_PROFILE");
  const std::string profile = profile_env.value_or("default");
  const std::string credentials_file = homeFile(e, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
  const std::string config_file = homeFile(e, "AWS_CONFIG_FILE", "config");
  bool profile_seen = false;
  for (const auto& [path, section] :
       {std::pair{credentials_file, profile},
        std::pair{config_file, profile == "default" ? profile : "profile " + profile}}) {
    if (auto keys = profileOf(e, path, section)) {
      profile_seen = true;
      if (auto c = keysOf(*keys)) {
        return makeRefreshingProvider(
            "profile " + profile + " (" + path + ")", [c = *c] { return c; }, e.now);
      }
    }
  }

  // 3. Web identity.
  const auto token_file = envValue(e, "AWS_WEB_IDENTITY_TOKEN_FILE");
  const auto role_arn = envValue(e, "AWS_ROLE_ARN");
  if (token_file && role_arn) {
    std::string sts =
        envValue(e, "AWS_ENDPOINT_URL_STS")
            .value_or(envValue(e, "AWS_ENDPOINT_URL")
                          .value_or(region.empty() ? "https://sts.amazonaws.com"
                                                   : "https://sts." + region + ".amazonaws.com"));
    while (!sts.empty() && sts.back() == '/') {
      sts.pop_back();
    }
    const auto session_name = envValue(e, "AWS_ROLE_SESSION_NAME");
    auto fetch = [e, sts, token_file = *token_file, role_arn = *role_arn, session_name] {
      const auto token = e.read_file(token_file); // re-read: the kubelet rotates it
      if (!token || trim(*token).empty()) {
        throw std::runtime_error("cannot read the web identity token file " + token_file);
      }
      const std::string name = session_name.value_or(
          "kesm-" + std::to_string(
                        std::chrono::duration_cast<std::chrono::seconds>(e.now().time_since_epoch())
                            .count()));
      HttpCall call;
      call.method = "POST";
      call.url = sts + "/";
      call.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                      {"Accept", "application/xml"}};
      call.body =
          "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + uriEncode(role_arn) +
          "&RoleSessionName=" + uriEncode(name) + "&WebIdentityToken=" + uriEncode(trim(*token));
      const HttpAnswer answer = e.http(call);
      if (answer.status == 0) {
        throw std::runtime_error("STS at " + sts + ": " + answer.error);
      }
      try {
        return parseStsCredentials(answer.body, "AssumeRoleWithWebIdentity");
      } catch (const std::runtime_error& err) {
        throw std::runtime_error("STS at " + sts + " (HTTP " + std::to_string(answer.status) +
                                 "): " + err.what());
      }
    };
    return makeRefreshingProvider("web identity (role " + *role_arn + ")", fetch, e.now, e.warn);
  }

  // 4. Container credentials.
  std::optional<std::string> uri = envValue(e, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
  if (!uri) {
    if (auto relative = envValue(e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
      uri = "http://169.254.170.2" + *relative;
    }
  }
  if (uri) {
    if (!containerHostAllowed(*uri)) {
      throw std::runtime_error("AWS_CONTAINER_CREDENTIALS_FULL_URI " + *uri +
                               ": http is allowed to loopback, 169.254.170.2 and "
                               "169.254.170.23 only (as the AWS SDKs); use https");
    }
    const auto auth_file = envValue(e, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const auto auth_token = envValue(e, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    auto fetch = [e, url = *uri, auth_file, auth_token] {
      HttpCall call;
      call.method = "GET";
      call.url = url;
      call.headers = {{"Accept", "application/json"}};
      if (auth_file) {
        const auto token = e.read_file(*auth_file); // re-read: rotated by the agent
        if (!token) {
          throw std::runtime_error("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE " +
                                   *auth_file);
        }
        call.headers.emplace_back("Authorization", std::string(trim(*token)));
      } else if (auth_token) {
        call.headers.emplace_back("Authorization", *auth_token);
      }
      const HttpAnswer answer = e.http(call);
      if (answer.status != 200) {
        throw std::runtime_error("the container credentials endpoint " + url + ": " +
                                 describeHttpFailure(answer));
      }
      return parseContainerCredentials(answer.body);
    };
    return makeRefreshingProvider("container credentials (" + *uri + ")", fetch, e.now, e.warn);
  }

  if (profile_env && !profile_seen) {
    throw std::runtime_error("AWS_PROFILE " + profile + " is in neither " + credentials_file +
                             " nor " + config_file);
  }
  throw std::runtime_error(
      "no AWS credentials: none in the environment (AWS_ACCESS_KEY_ID), profile " + profile +
      " of " + credentials_file + " or " + config_file +
      ", web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN) or container credentials "
      "(AWS_CONTAINER_CREDENTIALS_FULL_URI)");
}

} // namespace kesm::aws
