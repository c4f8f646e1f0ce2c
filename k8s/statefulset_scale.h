#pragma once

// The replica count of one apps/v1 StatefulSet through its `scale` subresource
// (/apis/apps/v1/namespaces/NS/statefulsets/NAME/scale, an autoscaling/v1 Scale): the pods
// mode's way to size a mapping. Only this subresource is read and written, so the RBAC a
// controller needs is `get` and `update` on `statefulsets/scale` for that one name.
//
// Writes are optimistic: a PUT carries the resourceVersion last read, so a write never
// replaces a count it did not see. A 409 (the StatefulSet changed since: its status moves as
// pods start, or someone else scaled it) re-reads and retries once, and says in the result
// when the re-read found a spec.replicas written by someone else.

#include "net/http.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace kesm::k8s {

struct InCluster;

// What the Scale says. Replica counts are pods (int32 in the API).
struct ScaleState {
  int spec_replicas = 0;        // spec.replicas: the count asked for
  int status_replicas = 0;      // status.replicas: pods the StatefulSet controller created
  std::string selector;         // status.selector ("app=x,..."): the pods' label selector
  std::string resource_version; // metadata.resourceVersion (the StatefulSet's)
};

// Every way a call can end. The words of toString() are metric label values.
enum class ScaleOutcome {
  kOk,
  kConflict,     // 409: changed since read, twice in a row for a write
  kForbidden,    // 403: RBAC does not allow the verb on statefulsets/scale for this name
  kNotFound,     // 404: no such StatefulSet (or namespace)
  kInvalid,      // 422 or 400: the value was refused, or refused here before sending
  kUnauthorized, // 401 after re-reading the token: expired, revoked, or not a token
  kThrottled,    // 429: the API server's priority and fairness asks us to come back
  kTimeout,      // no whole answer within the client's timeout
  kUnreachable,  // connect refused, no route, TLS failure, connection broken
  kServerError,  // 5xx
  kOther,        // any other status, or a 2xx whose body is not a Scale
};

// "ok", "conflict", "forbidden", "not_found", "invalid", "unauthorized", "throttled",
// "timeout", "unreachable", "server_error", "other".
const char* toString(ScaleOutcome outcome);

struct ScaleCallResult {
  ScaleOutcome outcome = ScaleOutcome::kOther;
  std::optional<ScaleState> scale; // kOk: the Scale as the server stored it
  std::string message;             // for logs: method, object, status, the server's reason
  // set() only: a 409 was met, the Scale re-read and the write sent again.
  bool conflict_retried = false;
  // set() only: the spec.replicas that re-read found when it differed from the last one this
  // client had seen: someone else (kubectl scale, another controller) wrote it meanwhile.
  std::optional<int> changed_elsewhere;
  bool ok() const { return outcome == ScaleOutcome::kOk; }
};

// One StatefulSet's scale. Calls block for at most the transport's timeout (twice that and a
// read for a set() that meets a conflict). Used by one thread at a time.
class ScaleClient {
public:
  virtual ~ScaleClient() = default;
  virtual ScaleCallResult get() = 0;
  // Sets spec.replicas. PUT with the resourceVersion of the last Scale this client read or
  // wrote (a GET first when it has none). A negative count is refused before sending
  // (kInvalid). On 409: GET, then PUT once more.
  virtual ScaleCallResult set(int replicas) = 0;
  virtual std::string describe() const = 0; // "namespace/name" for logs and /status
};

// Where a client's requests go: the API client in the product, a script in unit tests.
// Used by one thread at a time.
class ApiTransport {
public:
  virtual ~ApiTransport() = default;
  // As ApiClient::request: transport failures in the result, never thrown.
  virtual net::HttpResult request(const std::string& method, const std::string& path,
                                  const std::string& body) = 0;
  virtual std::string describe() const = 0;   // "https://host:port"
  virtual std::string tokenError() const = 0; // why the token file could not be read; empty
};

// The transport of the product: an ApiClient (k8s/api_client.h) of `cluster`, each request
// within `timeout`. Throws std::runtime_error when the CA file cannot be loaded.
std::unique_ptr<ApiTransport> makeApiTransport(const InCluster& cluster,
                                               std::chrono::milliseconds timeout);

std::unique_ptr<ScaleClient> makeScaleClient(std::unique_ptr<ApiTransport> transport,
                                             std::string ns, std::string name);

// The StatefulSet NAME in NAMESPACE through the API server of `cluster` (an ApiClient: token
// re-read on rotation and after a 401); every request ends within `timeout`. Throws
// std::runtime_error when the CA file cannot be loaded.
std::unique_ptr<ScaleClient> makeApiScaleClient(const InCluster& cluster, std::string ns,
                                                std::string name,
                                                std::chrono::milliseconds timeout);

} // namespace kesm::k8s
