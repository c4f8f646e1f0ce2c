#pragma once

// A Lease kept in memory with the API server's concurrency rules: every write bumps the
// resourceVersion, a create of an existing Lease and an update carrying a stale
// resourceVersion get kConflict. Several electors may share one (through FakeLeaseClient);
// `down` makes every call kUnavailable, as an API server that is stopped.

#include "k8s/lease.h"

#include <optional>
#include <string>

namespace kesm::fakes {

struct FakeLeaseServer {
  std::optional<k8s::LeaseRecord> lease;
  int version = 0;
  bool down = false;
  int writes = 0;

  k8s::LeaseResult get() {
    if (down) {
      return {k8s::LeaseOutcome::kUnavailable, std::nullopt, "connection refused"};
    }
    if (!lease) {
      return {k8s::LeaseOutcome::kNotFound, std::nullopt, "404 not found"};
    }
    return {k8s::LeaseOutcome::kOk, lease, ""};
  }
  k8s::LeaseResult create(const k8s::LeaseRecord& r) {
    if (down) {
      return {k8s::LeaseOutcome::kUnavailable, std::nullopt, "connection refused"};
    }
    if (lease) {
      return {k8s::LeaseOutcome::kConflict, std::nullopt, "409 already exists"};
    }
    return store(r);
  }
  k8s::LeaseResult update(const k8s::LeaseRecord& r) {
    if (down) {
      return {k8s::LeaseOutcome::kUnavailable, std::nullopt, "connection refused"};
    }
    if (!lease) {
      return {k8s::LeaseOutcome::kNotFound, std::nullopt, "404 not found"};
    }
    if (r.resource_version != lease->resource_version) {
      return {k8s::LeaseOutcome::kConflict, std::nullopt, "409 the object has been modified"};
    }
    return store(r);
  }

private:
  k8s::LeaseResult store(const k8s::LeaseRecord& r) {
    lease = r;
    lease->resource_version = std::to_string(++version);
    ++writes;
    return {k8s::LeaseOutcome::kOk, lease, ""};
  }
};

class FakeLeaseClient final : public k8s::LeaseStore {
public:
  explicit FakeLeaseClient(FakeLeaseServer& server) : server_(server) {}
  k8s::LeaseResult get() override { return server_.get(); }
  k8s::LeaseResult create(const k8s::LeaseRecord& r) override { return server_.create(r); }
  k8s::LeaseResult update(const k8s::LeaseRecord& r) override { return server_.update(r); }
  std::string describe() const override { return "ns/kesm"; }

private:
  FakeLeaseServer& server_;
};

} // namespace kesm::fakes
