// The Scale JSON, status mapping and hints of k8s/statefulset_scale_codec.h (Boost.JSON).

#include "k8s/statefulset_scale_codec.h"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdint>

namespace kesm::k8s {

namespace json = boost::json;

const char* toString(ScaleOutcome outcome) {
  switch (outcome) {
  case ScaleOutcome::kOk:
    return "ok";
  case ScaleOutcome::kConflict:
    return "conflict";
  case ScaleOutcome::kForbidden:
    return "forbidden";
  case ScaleOutcome::kNotFound:
    return "not_found";
  case ScaleOutcome::kInvalid:
    return "invalid";
  case ScaleOutcome::kUnauthorized:
    return "unauthorized";
  case ScaleOutcome::kThrottled:
    return "throttled";
  case ScaleOutcome::kTimeout:
    return "timeout";
  case ScaleOutcome::kUnreachable:
    return "unreachable";
  case ScaleOutcome::kServerError:
    return "server_error";
  case ScaleOutcome::kOther:
    return "other";
  }
  return "other";
}

std::string scalePath(const std::string& ns, const std::string& name) {
  std::string path = "/apis/apps/v1/namespaces/";
  path += ns;
  path += "/statefulsets/";
  path += name;
  path += "/scale";
  return path;
}

std::string encodeScale(const std::string& ns, const std::string& name, int replicas,
                        const std::string& resource_version) {
  json::object metadata{{"name", name}, {"namespace", ns}};
  if (!resource_version.empty()) {
    metadata["resourceVersion"] = resource_version;
  }
  json::object scale{{"apiVersion", "autoscaling/v1"},
                     {"kind", "Scale"},
                     {"metadata", std::move(metadata)},
                     {"spec", json::object{{"replicas", replicas}}}};
  return json::serialize(scale);
}

namespace {

// A replica count: absent or null is 0 (the API omits a zero spec.replicas).
bool readCount(const json::object& obj, const char* key, int& out, std::string& error) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || v->is_null()) {
    out = 0;
    return true;
  }
  if (v->is_int64() && v->get_int64() >= 0 && v->get_int64() <= INT32_MAX) {
    out = static_cast<int>(v->get_int64());
    return true;
  }
  if (v->is_uint64() && v->get_uint64() <= INT32_MAX) {
    out = static_cast<int>(v->get_uint64());
    return true;
  }
  error = std::string("'") + key + "' is not a count from 0 to 2147483647";
  return false;
}

const json::object* objectAt(const json::object& obj, const char* key, std::string& error,
                             bool& ok) {
  ok = true;
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || v->is_null()) {
    return nullptr;
  }
  if (!v->is_object()) {
    error = std::string("the Scale's ") + key + " is not an object";
    ok = false;
    return nullptr;
  }
  return &v->get_object();
}

} // namespace

std::optional<ScaleState> decodeScale(std::string_view body, std::string& error) {
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
  if (kind == nullptr || !kind->is_string() || kind->get_string() != "Scale") {
    error = "the answer is not a Scale";
    return std::nullopt;
  }
  ScaleState state;
  bool ok = true;
  const json::object* metadata = objectAt(obj, "metadata", error, ok);
  if (!ok) {
    return std::nullopt;
  }
  const json::value* rv = metadata == nullptr ? nullptr : metadata->if_contains("resourceVersion");
  if (rv == nullptr || !rv->is_string() || rv->get_string().empty()) {
    error = "the Scale has no metadata.resourceVersion";
    return std::nullopt;
  }
  state.resource_version = std::string(rv->get_string());
  const json::object* spec = objectAt(obj, "spec", error, ok);
  if (!ok) {
    return std::nullopt;
  }
  if (spec != nullptr && !readCount(*spec, "replicas", state.spec_replicas, error)) {
    error = "spec." + error;
    return std::nullopt;
  }
  const json::object* status = objectAt(obj, "status", error, ok);
  if (!ok) {
    return std::nullopt;
  }
  if (status != nullptr) {
    if (!readCount(*status, "replicas", state.status_replicas, error)) {
      error = "status." + error;
      return std::nullopt;
    }
    const json::value* selector = status->if_contains("selector");
    if (selector != nullptr && selector->is_string()) {
      state.selector = std::string(selector->get_string());
    }
  }
  return state;
}

ScaleOutcome scaleOutcomeForStatus(int status) {
  if (status >= 200 && status <= 299) {
    return ScaleOutcome::kOk;
  }
  if (status >= 500 && status <= 599) {
    return ScaleOutcome::kServerError;
  }
  switch (status) {
  case 400:
  case 422:
    return ScaleOutcome::kInvalid;
  case 401:
    return ScaleOutcome::kUnauthorized;
  case 403:
    return ScaleOutcome::kForbidden;
  case 404:
    return ScaleOutcome::kNotFound;
  case 409:
    return ScaleOutcome::kConflict;
  case 429:
    return ScaleOutcome::kThrottled;
  default:
    return ScaleOutcome::kOther;
  }
}

ScaleOutcome scaleOutcomeForTransport(net::HttpErrorKind kind) {
  return kind == net::HttpErrorKind::kTimeout ? ScaleOutcome::kTimeout : ScaleOutcome::kUnreachable;
}

std::string scaleFailureHint(ScaleOutcome outcome, const std::string& verb, const std::string& ns,
                             const std::string& name) {
  switch (outcome) {
  case ScaleOutcome::kForbidden:
    return "RBAC: the service account may not '" + verb +
           "' statefulsets/scale (API group apps) of '" + name + "' in namespace '" + ns +
           "'; its Role needs {apiGroups: [apps], resources: [statefulsets/scale], "
           "resourceNames: [" +
           name + "], verbs: [get, update]}";
  case ScaleOutcome::kUnauthorized:
    return "the API server does not accept the service account token, even re-read from its "
           "file: expired, revoked, or of another cluster";
  case ScaleOutcome::kNotFound:
    return "no StatefulSet '" + name + "' in namespace '" + ns +
           "': create it (the chart's pods mode renders one per mapping) or fix its name";
  default:
    return {};
  }
}

} // namespace kesm::k8s
