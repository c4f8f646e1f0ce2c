#pragma once

// A coordination.k8s.io/v1 Lease as leader election reads and writes it, and the store that
// reads and writes it (the Kubernetes API in the product, a fake in unit tests). Optimistic
// concurrency: update() sends the resourceVersion it read; a Lease changed since answers
// kConflict and nothing is written.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace kesm::k8s {

struct InCluster;

struct LeaseRecord {
  std::string holder;             // spec.holderIdentity; empty: nobody holds it
  int lease_duration_seconds = 0; // spec.leaseDurationSeconds
  std::string acquire_time;       // spec.acquireTime, RFC 3339 with microseconds
  std::string renew_time;         // spec.renewTime, idem
  int lease_transitions = 0;      // spec.leaseTransitions
  std::string resource_version;   // metadata.resourceVersion; set by get/create/update
};

enum class LeaseOutcome {
  kOk,
  kNotFound,    // 404 on get
  kConflict,    // 409: created or changed by someone else since we read it
  kForbidden,   // 401 or 403: the token may not do this (RBAC, expired token)
  kUnavailable, // no answer in time, connection refused, TLS failure, 5xx, 429, bad body
};

struct LeaseResult {
  LeaseOutcome outcome = LeaseOutcome::kUnavailable;
  std::optional<LeaseRecord> lease; // kOk: the Lease as the server stored it
  std::string message;              // for logs: status code and the server's reason
};

// One Lease, by namespace and name. Calls block for at most the store's timeout; one thread
// at a time.
class LeaseStore {
public:
  virtual ~LeaseStore() = default;
  virtual LeaseResult get() = 0;
  virtual LeaseResult create(const LeaseRecord& record) = 0;
  // PUT with record.resource_version; kConflict when the Lease changed since.
  virtual LeaseResult update(const LeaseRecord& record) = 0;
  virtual std::string describe() const = 0; // "namespace/name" for logs and /status
};

// The Lease NAME in NAMESPACE through the API server of `cluster`; every request (connect,
// TLS, write, read) ends within `timeout`.
std::unique_ptr<LeaseStore> makeApiLeaseStore(const InCluster& cluster, std::string ns,
                                              std::string name, std::chrono::milliseconds timeout);

// RFC 3339 with microseconds in UTC ("2026-12-01T16:20:00.123456Z"), as MicroTime is written.
std::string formatMicroTime(std::chrono::system_clock::time_point t);

} // namespace kesm::k8s
