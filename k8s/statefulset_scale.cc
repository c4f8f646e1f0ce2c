// makeScaleClient and makeApiScaleClient of k8s/statefulset_scale.h: GET and PUT on the scale
// subresource, one request per call (two and a read when a write meets a 409).

#include "k8s/statefulset_scale.h"

#include "k8s/api_client.h"
#include "k8s/in_cluster.h"
#include "k8s/lease_codec.h"
#include "k8s/statefulset_scale_codec.h"

namespace kesm::k8s {

namespace {

class ApiClientTransport final : public ApiTransport {
public:
  ApiClientTransport(const InCluster& cluster, std::chrono::milliseconds timeout)
      : client_(cluster, ApiClientOptions{.timeout = timeout}) {}
  net::HttpResult request(const std::string& method, const std::string& path,
                          const std::string& body) override {
    return client_.request(method, path, body);
  }
  std::string describe() const override { return client_.describe(); }
  std::string tokenError() const override { return client_.tokenError(); }

private:
  ApiClient client_;
};

// Owned and used by one thread at a time; remembers the last Scale it saw, whose
// resourceVersion the next write carries.
class TransportScaleClient final : public ScaleClient {
public:
  TransportScaleClient(std::unique_ptr<ApiTransport> transport, std::string ns, std::string name)
      : transport_(std::move(transport)), ns_(std::move(ns)), name_(std::move(name)),
        path_(scalePath(ns_, name_)) {}

  ScaleCallResult get() override { return call("GET", "get", {}); }

  ScaleCallResult set(int replicas) override {
    if (replicas < 0) {
      ScaleCallResult refused;
      refused.outcome = ScaleOutcome::kInvalid;
      refused.message = "set replicas of statefulset " + describe() + " to " +
                        std::to_string(replicas) +
                        ": refused before sending: a replica count is never negative";
      return refused;
    }
    if (!last_) {
      // Nothing read yet: a write is based on what it saw, never blind.
      ScaleCallResult read = get();
      if (!read.ok()) {
        return read;
      }
    }
    const int seen = last_->spec_replicas;
    ScaleCallResult result = put(replicas);
    if (result.outcome != ScaleOutcome::kConflict) {
      return result;
    }
    ScaleCallResult reread = get();
    if (!reread.ok()) {
      reread.message = "after a 409 on " + result.message + ", " + reread.message;
      reread.conflict_retried = true;
      return reread;
    }
    std::optional<int> changed;
    if (reread.scale->spec_replicas != seen) {
      changed = reread.scale->spec_replicas;
    }
    result = put(replicas);
    result.conflict_retried = true;
    result.changed_elsewhere = changed;
    return result;
  }

  std::string describe() const override { return ns_ + "/" + name_; }

private:
  ScaleCallResult put(int replicas) {
    return call("PUT", "update", encodeScale(ns_, name_, replicas, last_->resource_version));
  }

  ScaleCallResult call(const std::string& method, const std::string& verb,
                       const std::string& body) {
    ScaleCallResult result;
    const std::string what =
        method + " statefulsets/" + name_ + "/scale in " + ns_ + " at " + transport_->describe();
    const net::HttpResult http = transport_->request(method, path_, body);
    if (!http.transportOk()) {
      result.outcome = scaleOutcomeForTransport(http.error);
      result.message = what + ": " + http.error_message;
      return result;
    }
    result.outcome = scaleOutcomeForStatus(http.response.status);
    if (!result.ok()) {
      result.message = what + ": " + describeFailure(http.response.status, http.response.body);
      const std::string hint = scaleFailureHint(result.outcome, verb, ns_, name_);
      if (!hint.empty()) {
        result.message += ". " + hint;
      }
      if (result.outcome == ScaleOutcome::kUnauthorized && !transport_->tokenError().empty()) {
        result.message += " (token file: " + transport_->tokenError() + ")";
      }
      return result;
    }
    std::string error;
    result.scale = decodeScale(http.response.body, error);
    if (!result.scale) {
      result.outcome = ScaleOutcome::kOther;
      result.message = what + ": HTTP " + std::to_string(http.response.status) + " but " + error;
      return result;
    }
    last_ = result.scale;
    result.message = what + ": HTTP " + std::to_string(http.response.status);
    return result;
  }

  std::unique_ptr<ApiTransport> transport_;
  std::string ns_;
  std::string name_;
  std::string path_;
  std::optional<ScaleState> last_;
};

} // namespace

std::unique_ptr<ScaleClient> makeScaleClient(std::unique_ptr<ApiTransport> transport,
                                             std::string ns, std::string name) {
  return std::make_unique<TransportScaleClient>(std::move(transport), std::move(ns),
                                                std::move(name));
}

std::unique_ptr<ApiTransport> makeApiTransport(const InCluster& cluster,
                                               std::chrono::milliseconds timeout) {
  return std::make_unique<ApiClientTransport>(cluster, timeout);
}

std::unique_ptr<ScaleClient> makeApiScaleClient(const InCluster& cluster, std::string ns,
                                                std::string name,
                                                std::chrono::milliseconds timeout) {
  return makeScaleClient(makeApiTransport(cluster, timeout), std::move(ns), std::move(name));
}

} // namespace kesm::k8s
