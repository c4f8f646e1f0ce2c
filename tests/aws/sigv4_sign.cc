// kesm_sigv4_sign CASES.json: signs each request of tests/aws/sigv4_cases.json with kesm's
// SigV4 signer and prints, per case, the headers it would send and its canonical request, in
// the format tests/aws/botocore_sign.py prints for botocore (tests/aws/botocore.sh diffs them).

#include "aws/sigv4.h"

#include <boost/json.hpp>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace {

std::string str(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v ? std::string(v->as_string()) : std::string();
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: kesm_sigv4_sign CASES.json\n";
    return 2;
  }
  try {
    std::ifstream in(argv[1], std::ios::binary);
    if (!in) {
      std::cerr << "kesm_sigv4_sign: cannot read " << argv[1] << "\n";
      return 1;
    }
    std::ostringstream text;
    text << in.rdbuf();
    const auto doc = boost::json::parse(text.str()).as_object();

    std::tm tm{};
    std::istringstream time_in(str(doc, "time"));
    time_in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
    if (time_in.fail()) {
      std::cerr << "kesm_sigv4_sign: bad \"time\"\n";
      return 1;
    }
    const auto time = std::chrono::system_clock::from_time_t(timegm(&tm));

    for (const auto& value : doc.at("cases").as_array()) {
      const auto& c = value.as_object();
      const auto& creds = doc.at("credentials").as_object().at(str(c, "credentials")).as_object();
      const kesm::aws::Credentials credentials{str(creds, "access_key_id"),
                                               str(creds, "secret_access_key"),
                                               str(creds, "session_token")};
      kesm::aws::SigningRequest request{.method = str(c, "method"),
                                        .target = str(c, "target"),
                                        .headers = {},
                                        .body = str(c, "body")};
      for (const auto& header : c.at("headers").as_array()) {
        const auto& pair = header.as_array();
        request.headers.emplace_back(std::string(pair.at(0).as_string()),
                                     std::string(pair.at(1).as_string()));
      }
      kesm::aws::SigningParams params{.region = str(c, "region"), .service = str(c, "service")};
      params.time = time;
      const auto out = kesm::aws::sign(request, credentials, params);
      const std::string canonical = kesm::aws::canonicalRequest(
          request, kesm::aws::headersToSign(request, credentials, params), params);
      std::cout << "== " << str(c, "name") << "\n"
                << "X-Amz-Date: " << out.amz_date << "\n"
                << "X-Amz-Security-Token: " << out.security_token << "\n"
                << "Authorization: " << out.authorization << "\n"
                << "-- canonical request\n"
                << canonical << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "kesm_sigv4_sign: " << argv[1] << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}
