// The Lease JSON and status mapping of k8s/lease_codec.h, and formatMicroTime (Boost.JSON).

#include "k8s/lease_codec.h"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <cstdio>
#include <ctime>

namespace kesm::k8s {

namespace json = boost::json;

std::string formatMicroTime(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(us / 1'000'000);
  auto frac = us % 1'000'000;
  if (frac < 0) { // before 1970: floor, so the fraction stays positive
    frac += 1'000'000;
    --secs;
  }
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[80]; // room for any int year: -Wformat-truncation
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

std::string encodeLease(const std::string& ns, const std::string& name, const LeaseRecord& record) {
  json::object metadata{{"name", name}, {"namespace", ns}};
  if (!record.resource_version.empty()) {
    metadata["resourceVersion"] = record.resource_version;
  }
  json::object spec{{"holderIdentity", record.holder},
                    {"leaseTransitions", record.lease_transitions}};
  if (record.lease_duration_seconds > 0) {
    spec["leaseDurationSeconds"] = record.lease_duration_seconds;
  }
  if (!record.acquire_time.empty()) {
    spec["acquireTime"] = record.acquire_time;
  }
  if (!record.renew_time.empty()) {
    spec["renewTime"] = record.renew_time;
  }
  json::object lease{{"apiVersion", "coordination.k8s.io/v1"},
                     {"kind", "Lease"},
                     {"metadata", std::move(metadata)},
                     {"spec", std::move(spec)}};
  return json::serialize(lease);
}

namespace {

// A field that must be a string when present.
bool readString(const json::object& obj, const char* key, std::string& out, std::string& error) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || v->is_null()) {
    return true;
  }
  if (!v->is_string()) {
    error = std::string("'") + key + "' is not a string";
    return false;
  }
  out = std::string(v->get_string());
  return true;
}

bool readInt(const json::object& obj, const char* key, int& out, std::string& error) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || v->is_null()) {
    return true;
  }
  if (v->is_int64() && v->get_int64() >= INT32_MIN && v->get_int64() <= INT32_MAX) {
    out = static_cast<int>(v->get_int64());
    return true;
  }
  if (v->is_uint64() && v->get_uint64() <= INT32_MAX) {
    out = static_cast<int>(v->get_uint64());
    return true;
  }
  error = std::string("'") + key + "' is not a 32-bit integer";
  return false;
}

} // namespace

std::optional<LeaseRecord> decodeLease(std::string_view body, std::string& error) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec) {
    error = "the answer is not JSON: " + ec.message();
    return std::nullopt;
  }
  if (!doc.is_object()) {
    error = "the answer is not a JSON object";
    return std::nullopt;
  }
  const json::object& obj = doc.get_object();
  const json::value* kind = obj.if_contains("kind");
  if (kind == nullptr || !kind->is_string() || kind->get_string() != "Lease") {
    error = "the answer is not a Lease";
    return std::nullopt;
  }
  LeaseRecord record;
  const json::value* metadata = obj.if_contains("metadata");
  if (metadata == nullptr || !metadata->is_object()) {
    error = "the Lease has no metadata";
    return std::nullopt;
  }
  if (!readString(metadata->get_object(), "resourceVersion", record.resource_version, error)) {
    return std::nullopt;
  }
  if (record.resource_version.empty()) {
    error = "the Lease has no metadata.resourceVersion";
    return std::nullopt;
  }
  const json::value* spec = obj.if_contains("spec");
  if (spec != nullptr && !spec->is_null()) {
    if (!spec->is_object()) {
      error = "the Lease's spec is not an object";
      return std::nullopt;
    }
    const json::object& s = spec->get_object();
    if (!readString(s, "holderIdentity", record.holder, error) ||
        !readInt(s, "leaseDurationSeconds", record.lease_duration_seconds, error) ||
        !readString(s, "acquireTime", record.acquire_time, error) ||
        !readString(s, "renewTime", record.renew_time, error) ||
        !readInt(s, "leaseTransitions", record.lease_transitions, error)) {
      error = "spec." + error;
      return std::nullopt;
    }
  }
  return record;
}

std::string describeFailure(int status, std::string_view body) {
  std::string out = "HTTP " + std::to_string(status);
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (!ec && doc.is_object()) {
    const json::object& obj = doc.get_object();
    const json::value* reason = obj.if_contains("reason");
    const json::value* message = obj.if_contains("message");
    if (reason != nullptr && reason->is_string() && !reason->get_string().empty()) {
      out.push_back(' '); // appended piecewise: GCC 12 -O3 false -Wrestrict on `" " + s`
      out += std::string_view(reason->get_string());
    }
    if (message != nullptr && message->is_string()) {
      out += ": ";
      out += std::string_view(message->get_string());
    }
    return out;
  }
  std::string excerpt(body.substr(0, 200));
  for (char& c : excerpt) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  if (!excerpt.empty()) {
    out += ": ";
    out += excerpt;
  }
  return out;
}

LeaseOutcome outcomeForStatus(int status) {
  if (status >= 200 && status <= 299) {
    return LeaseOutcome::kOk;
  }
  switch (status) {
  case 404:
    return LeaseOutcome::kNotFound;
  case 409:
    return LeaseOutcome::kConflict;
  case 401:
  case 403:
    return LeaseOutcome::kForbidden;
  default:
    return LeaseOutcome::kUnavailable;
  }
}

} // namespace kesm::k8s
