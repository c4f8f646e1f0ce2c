#pragma once

// The pure half of what `kesm controller` learns from a mapping's poller pods (docs/kubernetes.md,
// "What the controller learns from pods"): the pods as the EndpointSlices of the mapping's
// headless Service list them, the JSON of a pod's /status, and the sum of the pods'
// invocation counters across restarts. No I/O, no clock, no threads; unit-tested
// (tests/unit/k8s/pod_status_test.cc). The scraper that does the I/O is
// k8s/pod_status_scraper.h.

#include "scaler/signals.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kesm::k8s {

// One endpoint of the Service: a poller pod whose /status is read.
struct PodEndpoint {
  std::string pod;     // targetRef.name (kind Pod), else hostname, else the address
  std::string address; // an IPv4 or IPv6 literal; IPv6 without brackets
  std::uint16_t port = 0;
  bool ready = true; // conditions.ready; absent (unknown) reads as ready, as the API says
  bool operator==(const PodEndpoint&) const = default;
};

struct EndpointList {
  // One per pod (a pod listed twice, as slices may briefly do, keeps its first entry),
  // sorted by pod name.
  std::vector<PodEndpoint> endpoints;
  // Slices and endpoints skipped, each with its reason ("slice kesm-orders-abcde: 2 ports and
  // none named http"): for a log line, never fatal.
  std::vector<std::string> warnings;
};

// "/apis/discovery.k8s.io/v1/namespaces/NS/endpointslices?labelSelector=
// kubernetes.io/service-name%3DSVC": the slices of one Service.
std::string endpointSlicesPath(const std::string& ns, const std::string& service);

// An EndpointSliceList (discovery.k8s.io/v1). Port: the slice's TCP port named "http", else
// its only TCP port. Endpoints whose conditions.ready is false are kept (a pod may be draining
// and still counting). Skipped with a warning: slices of addressType FQDN or with no usable
// port; endpoints with no address, or one that is not an IP literal of the slice's type.
// nullopt with `error` set when the body is not an EndpointSliceList at all.
std::optional<EndpointList> decodeEndpointSliceList(std::string_view body, std::string& error);

// "http://10.1.2.3:8080/status", "http://[fd00::7]:8080/status".
std::string statusUrl(const PodEndpoint& endpoint);

// At most `n` bytes of untrusted text (a pod's answer) for a message, control characters as
// '?', "..." when cut.
std::string excerpt(std::string_view text, std::size_t n = 80);

// A /status answer larger than this is refused unread: `kesm poller`'s is under 1 KiB a
// poller, and at most 64 pollers run in a pod.
inline constexpr std::size_t kMaxPollerStatusBytes = 1024 * 1024;

// What the controller uses of `kesm poller`'s /status.
struct PollerStatus {
  std::string mapping;
  // "invocations": finished invocation attempts since the process started and their summed
  // duration. nullopt: the field is absent (a poller older than the controller).
  std::optional<scaler::InvocationTotals> invocations;
  bool disabled = false;       // "state":"Disabled"
  std::string disabled_reason; // "disabledReason"; may be empty
};

// nullopt with `error` set when the body is not a poller's /status: larger than
// kMaxPollerStatusBytes, not JSON, not an object, "mode" other than "poller", no "mapping"
// string, a "state" other than "Enabled" or "Disabled", or invocations whose count is not an
// integer in [0, 2^53] or whose seconds are not a finite number >= 0.
std::optional<PollerStatus> decodePollerStatus(std::string_view body, std::string& error);

// The invocation totals of a mapping whose pollers are processes that restart: one
// monotonic sum over the pods, fed one scrape round at a time. Each pod contributes the
// increase of its own counters between the rounds that read it:
// - first sight: its whole totals (they were counted since the process started, which is
//   after the previous round for a new pod);
// - a counter below the last one read (count or seconds): the process restarted, and what
//   it reports now is all it did since: that is the increase;
// - a pod not read in a round (timed out, gone from the Service) contributes nothing then and
//   keeps what it contributed; its last totals are kept, so that a pod that comes back
//   unrestarted is not counted twice. StatefulSet pods reuse their names (NAME-0, NAME-1...),
//   so the pods remembered stay within the largest replica count; past `max_known` the pods
//   unread longest are forgotten (one that comes back then counts as first seen).
// What a pod did after its last read before it stopped is never seen: the sum undercounts by
// that, never overcounts. The decision (scaler/decision.h) takes differences of the sum over
// its rate window and divides seconds by count: both halves of every increase come from the
// same invocations, so a pod first seen late shifts invocations into one window but the mean
// duration it computes is still a mean of real invocation durations.
// Not thread-safe: owned by the scraper, which copies totals() under its own lock.
class InvocationAccumulator {
public:
  explicit InvocationAccumulator(std::size_t max_known = 8000);

  // One round: every pod read and what it reported (nullopt: listed but not read, or it
  // reported no invocations). Pods absent from the map were not listed.
  void addRound(const std::map<std::string, std::optional<scaler::InvocationTotals>>& round);

  scaler::InvocationTotals totals() const { return totals_; }
  // Pods whose last totals are remembered.
  std::size_t podsKnown() const { return last_.size(); }
  // Restarts seen (a counter went down) since construction.
  std::int64_t restarts() const { return restarts_; }

private:
  struct Known {
    scaler::InvocationTotals last;
    int unread_rounds = 0;
  };
  std::size_t max_known_;
  std::map<std::string, Known> last_;
  scaler::InvocationTotals totals_;
  std::int64_t restarts_ = 0;
};

} // namespace kesm::k8s
