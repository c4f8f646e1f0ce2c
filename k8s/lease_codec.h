#pragma once

// The pure half of the Lease store: the coordination.k8s.io/v1 Lease as JSON, and what an
// HTTP status means for leader election. No I/O; unit-tested on their own.

#include "k8s/lease.h"

#include <optional>
#include <string>
#include <string_view>

namespace kesm::k8s {

inline constexpr const char* kLeasesPath = "/apis/coordination.k8s.io/v1/namespaces/";

// The Lease object to POST or PUT. resourceVersion is sent when record has one (PUT);
// acquireTime/renewTime only when set (an empty MicroTime is invalid); holderIdentity always
// (empty releases the Lease, as client-go does).
std::string encodeLease(const std::string& ns, const std::string& name, const LeaseRecord& record);

// The Lease in a GET/POST/PUT answer; nullopt with `error` set when the body is not a Lease
// (not JSON, another kind, no metadata.resourceVersion, a field of the wrong type).
std::optional<LeaseRecord> decodeLease(std::string_view body, std::string& error);

// "HTTP 409 AlreadyExists: leases ... already exists" from a status and a Kubernetes Status
// body; a short excerpt when the body is not a Status.
std::string describeFailure(int status, std::string_view body);

// What a non-transport answer means: 2xx kOk; 404 kNotFound (on update: deleted since read);
// 409 kConflict; 401/403 kForbidden; everything else (429, 5xx, other 4xx) kUnavailable.
LeaseOutcome outcomeForStatus(int status);

} // namespace kesm::k8s
