// The EndpointSlice and /status codecs and the invocation accumulator of k8s/pod_status.h
// (Boost.JSON).

#include "k8s/pod_status.h"

#include <algorithm>
#include <arpa/inet.h>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <set>

namespace kesm::k8s {

namespace json = boost::json;

std::string excerpt(std::string_view text, std::size_t n) {
  std::string out(text.substr(0, n));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = '?';
    }
  }
  if (text.size() > n) {
    out += "...";
  }
  return out;
}

namespace {

const char* kindOf(const json::value& v) {
  switch (v.kind()) {
  case json::kind::null:
    return "null";
  case json::kind::bool_:
    return "a boolean";
  case json::kind::int64:
  case json::kind::uint64:
  case json::kind::double_:
    return "a number";
  case json::kind::string:
    return "a string";
  case json::kind::array:
    return "an array";
  case json::kind::object:
    return "an object";
  }
  return "something else";
}

// The object member `key` as a string, or nullptr when absent or not a string.
const json::string* stringAt(const json::object& obj, const char* key) {
  const json::value* v = obj.if_contains(key);
  return v != nullptr && v->is_string() ? &v->get_string() : nullptr;
}

bool isIpLiteral(const std::string& address, int family) {
  unsigned char buf[16];
  return ::inet_pton(family, address.c_str(), buf) == 1;
}

// The slice's port: the TCP port named "http", else its only TCP port. 0 with `why` set when
// it has none usable.
std::uint16_t slicePort(const json::object& slice, std::string& why) {
  const json::value* ports = slice.if_contains("ports");
  if (ports == nullptr || !ports->is_array() || ports->get_array().empty()) {
    why = "no ports (the Service names none)";
    return 0;
  }
  std::vector<std::pair<std::string, std::int64_t>> tcp; // name, port (-1: unset)
  for (const auto& p : ports->get_array()) {
    if (!p.is_object()) {
      continue;
    }
    const auto& obj = p.get_object();
    const json::string* protocol = stringAt(obj, "protocol");
    if (protocol != nullptr && *protocol != "TCP") {
      continue; // absent means TCP
    }
    const json::string* name = stringAt(obj, "name");
    const json::value* number = obj.if_contains("port");
    std::int64_t port = -1;
    if (number != nullptr && number->is_int64()) {
      port = number->get_int64();
    } else if (number != nullptr && number->is_uint64() && number->get_uint64() <= 65535) {
      port = static_cast<std::int64_t>(number->get_uint64());
    }
    tcp.emplace_back(name != nullptr ? std::string(*name) : std::string(), port);
  }
  const std::pair<std::string, std::int64_t>* chosen = nullptr;
  for (const auto& p : tcp) {
    if (p.first == "http") {
      chosen = &p;
      break;
    }
  }
  if (chosen == nullptr && tcp.size() == 1) {
    chosen = &tcp.front();
  }
  if (chosen == nullptr) {
    why = tcp.empty() ? "no TCP port"
                      : std::to_string(tcp.size()) + " TCP ports and none named \"http\"";
    return 0;
  }
  if (chosen->second < 1 || chosen->second > 65535) {
    why = "port \"" + excerpt(chosen->first) + "\" has no number in 1-65535";
    return 0;
  }
  return static_cast<std::uint16_t>(chosen->second);
}

} // namespace

std::string endpointSlicesPath(const std::string& ns, const std::string& service) {
  return "/apis/discovery.k8s.io/v1/namespaces/" + ns +
         "/endpointslices?labelSelector=kubernetes.io/service-name%3D" + service;
}

std::optional<EndpointList> decodeEndpointSliceList(std::string_view body, std::string& error) {
  boost::system::error_code ec;
  const json::value doc = json::parse(body, ec);
  if (ec) {
    error = "not JSON: " + ec.message();
    return std::nullopt;
  }
  if (!doc.is_object()) {
    error = std::string("expected an EndpointSliceList object, got ") + kindOf(doc);
    return std::nullopt;
  }
  const auto& list = doc.get_object();
  const json::string* kind = stringAt(list, "kind");
  if (kind != nullptr && *kind != "EndpointSliceList") {
    error = "expected kind EndpointSliceList, got \"" + excerpt(*kind) + "\"";
    return std::nullopt;
  }
  const json::value* items = list.if_contains("items");
  if (items != nullptr && items->is_null()) {
    return EndpointList{}; // no slices: the Service has no pods yet
  }
  if (items == nullptr || !items->is_array()) {
    error = "no \"items\" array";
    return std::nullopt;
  }
  EndpointList out;
  std::set<std::string> pods;
  for (const auto& item : items->get_array()) {
    if (!item.is_object()) {
      out.warnings.push_back(std::string("an item is ") + kindOf(item) + ", not a slice");
      continue;
    }
    const auto& slice = item.get_object();
    std::string name = "(unnamed)";
    if (const json::value* meta = slice.if_contains("metadata"); meta && meta->is_object()) {
      if (const json::string* n = stringAt(meta->get_object(), "name")) {
        name = excerpt(*n);
      }
    }
    const std::string where = "slice " + name + ": ";
    const json::string* type = stringAt(slice, "addressType");
    int family = 0;
    if (type != nullptr && *type == "IPv4") {
      family = AF_INET;
    } else if (type != nullptr && *type == "IPv6") {
      family = AF_INET6;
    } else {
      out.warnings.push_back(where + "addressType " +
                             (type ? "\"" + excerpt(*type) + "\"" : std::string("absent")) +
                             ": only IPv4 and IPv6 endpoints are read");
      continue;
    }
    std::string why;
    const std::uint16_t port = slicePort(slice, why);
    if (port == 0) {
      out.warnings.push_back(where + why);
      continue;
    }
    const json::value* endpoints = slice.if_contains("endpoints");
    if (endpoints == nullptr || endpoints->is_null()) {
      continue; // a slice with no endpoints: nothing to read, nothing wrong
    }
    if (!endpoints->is_array()) {
      out.warnings.push_back(where + "\"endpoints\" is " + kindOf(*endpoints));
      continue;
    }
    for (const auto& e : endpoints->get_array()) {
      if (!e.is_object()) {
        out.warnings.push_back(where + "an endpoint is " + kindOf(e));
        continue;
      }
      const auto& ep = e.get_object();
      PodEndpoint pod;
      pod.port = port;
      const json::value* addresses = ep.if_contains("addresses");
      if (addresses != nullptr && addresses->is_array() && !addresses->get_array().empty() &&
          addresses->get_array().front().is_string()) {
        // The API says the addresses of one endpoint are fungible: the first will do.
        pod.address = std::string(addresses->get_array().front().get_string());
      }
      if (const json::value* ref = ep.if_contains("targetRef"); ref && ref->is_object()) {
        const json::string* ref_kind = stringAt(ref->get_object(), "kind");
        const json::string* ref_name = stringAt(ref->get_object(), "name");
        if (ref_name != nullptr && (ref_kind == nullptr || *ref_kind == "Pod")) {
          pod.pod = std::string(*ref_name);
        }
      }
      if (pod.pod.empty()) {
        if (const json::string* host = stringAt(ep, "hostname")) {
          pod.pod = std::string(*host);
        }
      }
      if (pod.address.empty()) {
        out.warnings.push_back(where + "endpoint " + excerpt(pod.pod) + " has no address");
        continue;
      }
      if (!isIpLiteral(pod.address, family)) {
        out.warnings.push_back(where + "endpoint " + excerpt(pod.pod) + ": \"" +
                               excerpt(pod.address) + "\" is not an " + std::string(*type) +
                               " address");
        continue;
      }
      if (pod.pod.empty()) {
        pod.pod = pod.address;
      }
      if (const json::value* cond = ep.if_contains("conditions"); cond && cond->is_object()) {
        const json::value* ready = cond->get_object().if_contains("ready");
        pod.ready = ready == nullptr || !ready->is_bool() || ready->get_bool();
      }
      if (pods.insert(pod.pod).second) {
        out.endpoints.push_back(std::move(pod));
      }
    }
  }
  std::sort(out.endpoints.begin(), out.endpoints.end(),
            [](const PodEndpoint& a, const PodEndpoint& b) { return a.pod < b.pod; });
  return out;
}

std::string statusUrl(const PodEndpoint& endpoint) {
  const bool v6 = endpoint.address.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + endpoint.address + "]" : endpoint.address) + ":" +
         std::to_string(endpoint.port) + "/status";
}

std::optional<PollerStatus> decodePollerStatus(std::string_view body, std::string& error) {
  if (body.size() > kMaxPollerStatusBytes) {
    error = "answer of " + std::to_string(body.size()) + " bytes, more than the " +
            std::to_string(kMaxPollerStatusBytes) + " a poller's /status may have";
    return std::nullopt;
  }
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 16; // /status is 3 deep; a hostile nesting is refused early
  const json::value doc = json::parse(body, ec, {}, options);
  if (ec) {
    error = "not JSON (" + ec.message() + "): \"" + excerpt(body, 60) + "\"";
    return std::nullopt;
  }
  if (!doc.is_object()) {
    error = std::string("expected a JSON object, got ") + kindOf(doc);
    return std::nullopt;
  }
  const auto& obj = doc.get_object();
  const json::string* mode = stringAt(obj, "mode");
  if (mode == nullptr || *mode != "poller") {
    error = mode ? "\"mode\" is \"" + excerpt(*mode) + "\", not \"poller\": not a kesm poller"
                 : std::string("no \"mode\" string: not a kesm poller's /status");
    return std::nullopt;
  }
  PollerStatus out;
  const json::string* mapping = stringAt(obj, "mapping");
  if (mapping == nullptr) {
    error = "no \"mapping\" string";
    return std::nullopt;
  }
  out.mapping = std::string(*mapping);
  const json::string* state = stringAt(obj, "state");
  if (state == nullptr || (*state != "Enabled" && *state != "Disabled")) {
    error = state ? "\"state\" is \"" + excerpt(*state) + "\", not Enabled or Disabled"
                  : std::string("no \"state\" string");
    return std::nullopt;
  }
  out.disabled = *state == "Disabled";
  if (const json::string* reason = stringAt(obj, "disabledReason")) {
    out.disabled_reason = std::string(*reason);
  }
  const json::value* inv = obj.if_contains("invocations");
  if (inv == nullptr) {
    return out;
  }
  if (!inv->is_object()) {
    error = std::string("\"invocations\" is ") + kindOf(*inv) + ", not an object";
    return std::nullopt;
  }
  const json::value* count = inv->get_object().if_contains("count");
  const json::value* seconds = inv->get_object().if_contains("seconds");
  scaler::InvocationTotals totals;
  if (count != nullptr && count->is_int64() && count->get_int64() >= 0) {
    totals.count = count->get_int64();
  } else if (count != nullptr && count->is_uint64() && count->get_uint64() <= INT64_MAX) {
    totals.count = static_cast<std::int64_t>(count->get_uint64());
  } else {
    error = "\"invocations.count\" is " + std::string(count ? kindOf(*count) : "absent") +
            ", not an integer from 0 to 2^63-1";
    return std::nullopt;
  }
  if (seconds != nullptr && seconds->is_number()) {
    totals.seconds = seconds->to_number<double>();
  }
  if (seconds == nullptr || !seconds->is_number() || !std::isfinite(totals.seconds) ||
      totals.seconds < 0) {
    error = "\"invocations.seconds\" is " + std::string(seconds ? kindOf(*seconds) : "absent") +
            (seconds && seconds->is_number() ? " below 0" : "") + ", not a number of seconds >= 0";
    return std::nullopt;
  }
  out.invocations = totals;
  return out;
}

InvocationAccumulator::InvocationAccumulator(std::size_t max_known)
    : max_known_(std::max<std::size_t>(1, max_known)) {}

void InvocationAccumulator::addRound(
    const std::map<std::string, std::optional<scaler::InvocationTotals>>& round) {
  for (auto& [pod, known] : last_) {
    const auto read = round.find(pod);
    if (read == round.end() || !read->second) {
      known.unread_rounds++;
    }
  }
  for (const auto& [pod, now] : round) {
    if (!now) {
      continue;
    }
    auto known = last_.find(pod);
    scaler::InvocationTotals delta = *now; // first sight, or a restart: all it reports
    if (known != last_.end()) {
      const auto& before = known->second.last;
      if (now->count >= before.count && now->seconds >= before.seconds) {
        delta.count = now->count - before.count;
        delta.seconds = now->seconds - before.seconds;
      } else {
        restarts_++;
      }
    }
    totals_.count += delta.count;
    totals_.seconds += delta.seconds;
    last_[pod] = Known{*now, 0};
  }
  if (last_.size() > max_known_) {
    // Forget the pods unread longest (by name among equals): only a churn of pod names that
    // no StatefulSet makes gets here.
    std::vector<std::pair<int, std::string>> order;
    for (const auto& [pod, known] : last_) {
      order.emplace_back(-known.unread_rounds, pod);
    }
    std::sort(order.begin(), order.end());
    const std::size_t excess = last_.size() - max_known_;
    for (std::size_t i = 0; i < excess; ++i) {
      last_.erase(order[i].second);
    }
  }
}

} // namespace kesm::k8s
