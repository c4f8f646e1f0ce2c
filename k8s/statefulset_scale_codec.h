#pragma once

// The pure half of the scale client (k8s/statefulset_scale.h): the autoscaling/v1 Scale as
// JSON, what an HTTP answer means, and the messages an operator reads. No I/O; unit-tested.

#include "k8s/statefulset_scale.h"
#include "net/http.h"

#include <optional>
#include <string>
#include <string_view>

namespace kesm::k8s {

// "/apis/apps/v1/namespaces/NS/statefulsets/NAME/scale"
std::string scalePath(const std::string& ns, const std::string& name);

// The Scale to PUT: spec.replicas and, when not empty, the resourceVersion it is based on.
std::string encodeScale(const std::string& ns, const std::string& name, int replicas,
                        const std::string& resource_version);

// The Scale in a GET/PUT answer; nullopt with `error` set when the body is not a Scale (not
// JSON, another kind, no resourceVersion, a count that is not a non-negative int32).
// spec.replicas is omitted by the server when 0 (omitempty): absent reads as 0.
std::optional<ScaleState> decodeScale(std::string_view body, std::string& error);

// 2xx kOk; 400, 422 kInvalid; 401 kUnauthorized; 403 kForbidden; 404 kNotFound; 409
// kConflict; 429 kThrottled; 5xx kServerError; else kOther.
ScaleOutcome scaleOutcomeForStatus(int status);
// kTimeout for a timeout; kUnreachable for a failed connect, TLS or broken connection.
ScaleOutcome scaleOutcomeForTransport(net::HttpErrorKind kind);

// What an operator must change, appended to a failure's message: for kForbidden the RBAC rule
// (verb, resource, name, namespace), for kUnauthorized the token, for kNotFound the object.
// Empty for the other outcomes. verb: "get" or "update".
std::string scaleFailureHint(ScaleOutcome outcome, const std::string& verb, const std::string& ns,
                             const std::string& name);

} // namespace kesm::k8s
