#pragma once

// What pods mode needs of a cluster that has only an API server (tests/k8s/apiserver.sh: no
// controller-manager, no kubelet): admin access to that server, a fresh namespace with a
// pod's service-account files, and FakeKubelet, which plays the StatefulSet controller, the
// kubelet and the EndpointSlice controller for one StatefulSet of `kesm poller` processes.

#include "../integration/harness.h"
#include "e2e_harness.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kesm::test::e2e {

// The API server of the ctest fixture kesm_apiserver, as $KESM_K8S_DIR/run/env names it.
// Throws std::runtime_error when KESM_K8S_DIR is not set or the file is incomplete.
struct ApiServerInfo {
  std::string url; // https://127.0.0.1:PORT
  std::uint16_t port = 0;
  std::string ca_file;
  std::string admin_token;
};
ApiServerInfo sharedApiServer();

// Admin calls to that server (its superuser token). Safe from any thread: one connection
// behind a mutex; every call ends within 10 s. Failures are answers (status 0: no answer).
class K8sAdmin {
public:
  explicit K8sAdmin(const ApiServerInfo& api);
  ~K8sAdmin();
  K8sAdmin(const K8sAdmin&) = delete;
  K8sAdmin& operator=(const K8sAdmin&) = delete;

  struct Answer {
    int status = 0;
    std::string body; // the server's answer, or the transport error
  };
  Answer call(const std::string& method, const std::string& path, const std::string& body = {},
              const std::string& content_type = "application/json");
  // As call(), but throws std::runtime_error (method, path, status, body) unless it is 2xx.
  std::string mustCall(const std::string& method, const std::string& path,
                       const std::string& body = {});

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A fresh namespace (a deleted one stays Terminating without a controller-manager) with a
// ServiceAccount "kesm" and a folder laid out as its pod's service-account mount: token
// (a TokenRequest, 1 h), ca.crt, namespace. Removed from disk at destruction.
struct TestNamespace {
  std::string ns;
  std::string sa_dir;
  std::uint16_t api_port = 0;
  TestNamespace() = default;
  TestNamespace(TestNamespace&&) = default;
  ~TestNamespace();
  // What a pod of this namespace gets: KUBERNETES_SERVICE_HOST/PORT, KESM_SERVICE_ACCOUNT_DIR,
  // POD_NAME.
  std::vector<std::string> podEnv(const std::string& pod_name) const;
};
TestNamespace makeTestNamespace(K8sAdmin& admin, const ApiServerInfo& api,
                                const std::string& prefix);

// A Role of `rules` (a JSON array) bound to the namespace's ServiceAccount "kesm".
void grantRole(K8sAdmin& admin, const std::string& ns, const std::string& role,
               const std::string& rules_json);
// Replaces the rules of a Role made by grantRole (RBAC is enforced at the next request).
void replaceRole(K8sAdmin& admin, const std::string& ns, const std::string& role,
                 const std::string& rules_json);
// A minimal valid apps/v1 StatefulSet (nothing runs it but a FakeKubelet) and its headless
// Service.
void createStatefulSet(K8sAdmin& admin, const std::string& ns, const std::string& name,
                       const std::string& service, int replicas);
void createHeadlessService(K8sAdmin& admin, const std::string& ns, const std::string& name);
// `kubectl scale`: PUT the Scale without a resourceVersion.
void adminScale(K8sAdmin& admin, const std::string& ns, const std::string& name, int replicas);

// The first IPv4 address of an interface of this machine that is up and not loopback: the
// API server refuses loopback (and link-local) addresses in an EndpointSlice, so the pods
// listen on this one and their slices name it. Throws std::runtime_error when there is none.
std::string hostAddress();

// GET http://HOST:PORT/TARGET within 3 s; status 0 when nothing answered.
Get httpGetAt(const std::string& host, std::uint16_t port, const std::string& target);

// What happened, in the order the FakeKubelet saw it.
enum class KubeletEvent {
  kReplicas,    // spec.replicas read as `value` (at metadata.generation `generation`)
  kCreated,     // pod `ordinal` created: its process starts after the start delay
  kStarted,     // its process started
  kReady,       // /readyz 200
  kUnready,     // /readyz no longer 200 (starting over, or draining)
  kTerminating, // SIGTERM sent (scale-down)
  kStopped,     // its process exited; `value` = exit status (-1: never started)
  kKilled,      // still running at the end of the grace period: SIGKILL
  kCrashed,     // exited while wanted; `value` = exit status (created again, as a kubelet does)
};
const char* toString(KubeletEvent event);

struct TimelineEntry {
  std::chrono::steady_clock::time_point at;
  KubeletEvent event = KubeletEvent::kReplicas;
  int ordinal = -1; // -1 for kReplicas
  int value = 0;
  std::int64_t generation = 0; // kReplicas
};

struct FakeKubeletOptions {
  std::string ns{};
  std::string stateful_set{};
  std::string service{}; // the EndpointSlices' kubernetes.io/service-name
  // The pods' address (their "pod IP"): hostAddress() when empty.
  std::string address{};
  // The pod's command: {program, args...}. Default (empty): `kesm poller` with poller_args
  // and `--listen ADDRESS:PORT`.
  std::function<std::vector<std::string>(const std::string& pod, std::uint16_t port)> command{};
  std::vector<std::string> poller_args{}; // e.g. --config F --mapping M
  std::vector<std::string> env{};         // in every pod, beside POD_NAME
  // From "pod created" to its process starting (image pull, scheduling, ...).
  std::chrono::milliseconds start_delay{0};
  // terminationGracePeriodSeconds: SIGTERM, then SIGKILL after this.
  std::chrono::milliseconds grace_period{std::chrono::seconds(30)};
  std::chrono::milliseconds interval{std::chrono::milliseconds(100)}; // one reconcile a tick
  std::string log_prefix = "kubelet"; // pod logs: /tmp/kesm-test-PID-PREFIX-POD.log
};

// Keeps one StatefulSet's pods running as processes on this machine, like a StatefulSet with
// podManagementPolicy Parallel: every tick it reads the StatefulSet, creates the missing
// ordinals below spec.replicas (lowest first; each starts start_delay later, and not before
// an old pod of its ordinal is gone), SIGTERMs the ordinals at or above it (highest first) and
// SIGKILLs them after the grace period, restarts a pod that exits on its own, writes the
// StatefulSet's /status and one EndpointSlice per pod (name = pod, the address above,
// conditions from /readyz, port "http"), deleted when the pod is gone.
//
// Owns a thread of its own (started by the constructor) and every pod process; the accessors
// are safe from any thread. API failures never stop it: they are kept in errors().
class FakeKubelet {
public:
  FakeKubelet(const ApiServerInfo& api, FakeKubeletOptions options);
  ~FakeKubelet(); // stop()
  FakeKubelet(const FakeKubelet&) = delete;
  FakeKubelet& operator=(const FakeKubelet&) = delete;

  // Ends the thread, then SIGTERMs every pod and waits for it (SIGKILL after the grace
  // period). The StatefulSet and the slices stay as they are.
  void stop();

  const std::string& address() const { return options_.address; }
  std::vector<TimelineEntry> timeline() const;
  // Pods whose process runs now (running or terminating), and the most there ever were.
  int alive() const;
  int mostAlive() const;
  // Pods running, not terminating, and ready.
  int ready() const;
  // The port of every pod whose process runs, by ordinal.
  std::map<int, std::uint16_t> ports() const;
  std::map<int, pid_t> pids() const;
  // Every value spec.replicas was read at, in order, one per generation seen.
  std::vector<int> replicasSeen() const;
  // A generation was skipped between two reads: a spec write happened and was overwritten
  // before the next tick read it (replicasSeen() is then not every value it took).
  bool missedGeneration() const;
  std::vector<std::string> errors() const;
  // The timeline as lines "+12.345 s  pollers-2 ready", times from `origin`.
  std::string report(std::chrono::steady_clock::time_point origin) const;
  // The log file of every pod that ever ran, for DumpLogOnFailure.
  std::vector<std::string> logs() const;

private:
  struct Pod;
  void run();
  void tick();
  void record(KubeletEvent event, int ordinal, int value, std::int64_t generation = 0);
  void error(const std::string& what);

  FakeKubeletOptions options_;
  std::unique_ptr<K8sAdmin> api_;             // the kubelet thread's own connection
  std::map<int, std::unique_ptr<Pod>> pods_;  // kubelet thread only (and stop() after the join)
  std::map<std::string, std::string> slices_; // slice name -> resourceVersion, kubelet thread
  std::string written_status_;                // the last status written, kubelet thread

  mutable std::mutex mutex_; // guards everything below
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<TimelineEntry> timeline_;
  std::vector<int> replicas_seen_;
  std::int64_t last_generation_ = 0;
  bool missed_generation_ = false;
  int alive_ = 0, most_alive_ = 0, ready_ = 0;
  std::map<int, std::uint16_t> ports_;
  std::map<int, pid_t> pids_;
  std::vector<std::string> errors_;
  std::vector<std::string> logs_;
  std::thread thread_;
};

// Prints the kubelet's timeline and errors and the end of every pod's log when the scope is
// left by a failed REQUIRE.
class DumpKubeletOnFailure {
public:
  DumpKubeletOnFailure(const FakeKubelet& kubelet, std::chrono::steady_clock::time_point origin)
      : kubelet_(kubelet), origin_(origin) {}
  ~DumpKubeletOnFailure();
  DumpKubeletOnFailure(const DumpKubeletOnFailure&) = delete;
  DumpKubeletOnFailure& operator=(const DumpKubeletOnFailure&) = delete;

private:
  const FakeKubelet& kubelet_;
  std::chrono::steady_clock::time_point origin_;
};

} // namespace kesm::test::e2e
