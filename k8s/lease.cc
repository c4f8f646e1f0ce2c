// makeApiLeaseStore of k8s/lease.h: a Lease through the API server, one request per call.

#include "k8s/lease.h"

#include "k8s/api_client.h"
#include "k8s/in_cluster.h"
#include "k8s/lease_codec.h"

namespace kesm::k8s {

namespace {

// Owned and used by one thread at a time (its ApiClient holds one connection).
class ApiLeaseStore final : public LeaseStore {
public:
  ApiLeaseStore(const InCluster& cluster, std::string ns, std::string name,
                std::chrono::milliseconds timeout)
      : client_(cluster, ApiClientOptions{.timeout = timeout}), ns_(std::move(ns)),
        name_(std::move(name)), collection_(std::string(kLeasesPath) + ns_ + "/leases"),
        item_(collection_ + "/" + name_) {}

  LeaseResult get() override { return call("GET", item_, {}); }

  LeaseResult create(const LeaseRecord& record) override {
    LeaseRecord fresh = record;
    fresh.resource_version.clear(); // a create must not carry one
    return call("POST", collection_, encodeLease(ns_, name_, fresh));
  }

  LeaseResult update(const LeaseRecord& record) override {
    return call("PUT", item_, encodeLease(ns_, name_, record));
  }

  std::string describe() const override { return ns_ + "/" + name_; }

private:
  LeaseResult call(const std::string& method, const std::string& path, const std::string& body) {
    LeaseResult result;
    const net::HttpResult http = client_.request(method, path, body);
    const std::string what = method + " lease " + describe() + " at " + client_.describe();
    if (!http.transportOk()) {
      result.outcome = LeaseOutcome::kUnavailable;
      result.message = what + ": " + http.error_message;
      return result;
    }
    result.outcome = outcomeForStatus(http.response.status);
    if (result.outcome != LeaseOutcome::kOk) {
      result.message = what + ": " + describeFailure(http.response.status, http.response.body);
      if (result.outcome == LeaseOutcome::kForbidden && !client_.tokenError().empty()) {
        result.message += " (token file: " + client_.tokenError() + ")";
      }
      return result;
    }
    std::string error;
    result.lease = decodeLease(http.response.body, error);
    if (!result.lease) {
      result.outcome = LeaseOutcome::kUnavailable;
      result.message = what + ": HTTP " + std::to_string(http.response.status) + " but " + error;
      return result;
    }
    result.message = what + ": HTTP " + std::to_string(http.response.status);
    return result;
  }

  ApiClient client_;
  std::string ns_;
  std::string name_;
  std::string collection_;
  std::string item_;
};

} // namespace

std::unique_ptr<LeaseStore> makeApiLeaseStore(const InCluster& cluster, std::string ns,
                                              std::string name, std::chrono::milliseconds timeout) {
  return std::make_unique<ApiLeaseStore>(cluster, std::move(ns), std::move(name), timeout);
}

} // namespace kesm::k8s
