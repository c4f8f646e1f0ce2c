#include "kubelet.h"

#include "e2e_harness.h"
#include "net/http.h"

#include <algorithm>
#include <arpa/inet.h>
#include <boost/json.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ifaddrs.h>
#include <iomanip>
#include <iostream>
#include <net/if.h>
#include <netinet/in.h>
#include <sstream>
#include <stdexcept>

namespace kesm::test::e2e {

namespace json = boost::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.pop_back();
  }
  return s;
}

std::string jsonString(const std::string& s) { return json::serialize(json::value(s)); }

// A DNS-1123 label from a unique name: lower case, '-' for anything else.
std::string dnsLabel(std::string s) {
  for (char& c : s) {
    c = std::isalnum(static_cast<unsigned char>(c)) != 0
            ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
            : '-';
  }
  return s.substr(0, 63);
}

std::int64_t intAt(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v == nullptr ? 0 : v->to_number<std::int64_t>();
}

} // namespace

std::string hostAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    throw std::runtime_error("getifaddrs failed");
  }
  std::string found;
  for (const ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET ||
        (i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0) {
      continue;
    }
    char text[INET_ADDRSTRLEN] = {};
    const auto* in = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) != nullptr &&
        std::string(text).rfind("169.254.", 0) != 0) {
      found = text;
    }
  }
  ::freeifaddrs(list);
  if (found.empty()) {
    throw std::runtime_error("no IPv4 address but loopback on this machine: an EndpointSlice "
                             "may not name 127.0.0.1, so the pods have nothing to listen on");
  }
  return found;
}

Get httpGetAt(const std::string& host, std::uint16_t port, const std::string& target) {
  net::HttpClient client(net::parseHttpUrl("http://" + host + ":" + std::to_string(port) + "/"));
  const auto result = client.request("GET", target, "", {}, std::chrono::seconds(3));
  if (!result.transportOk()) {
    return {};
  }
  return {result.response.status, result.response.body};
}

ApiServerInfo sharedApiServer() {
  const char* dir = std::getenv("KESM_K8S_DIR");
  if (dir == nullptr) {
    throw std::runtime_error("KESM_K8S_DIR is not set: run through ctest (fixture kesm_apiserver)");
  }
  std::istringstream env(slurp(std::string(dir) + "/run/env"));
  ApiServerInfo a;
  std::string token_file;
  for (std::string line; std::getline(env, line);) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) {
      continue;
    }
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"')) {
      value = value.substr(1, value.size() - 2);
    }
    if (key == "APISERVER_URL") {
      a.url = value;
    } else if (key == "APISERVER_CA_FILE") {
      a.ca_file = value;
    } else if (key == "APISERVER_TOKEN_FILE") {
      token_file = value;
    }
  }
  if (a.url.empty() || a.ca_file.empty() || token_file.empty()) {
    throw std::runtime_error(std::string(dir) + "/run/env: no APISERVER_URL, _CA_FILE or " +
                             "_TOKEN_FILE (is the API server running?)");
  }
  a.admin_token = trimmed(slurp(token_file));
  a.port = static_cast<std::uint16_t>(std::stoi(a.url.substr(a.url.rfind(':') + 1)));
  return a;
}

struct K8sAdmin::Impl {
  std::mutex mutex;
  std::string token;
  std::unique_ptr<net::HttpClient> http;
};

K8sAdmin::K8sAdmin(const ApiServerInfo& api) : impl_(std::make_unique<Impl>()) {
  impl_->token = api.admin_token;
  net::TlsOptions tls;
  tls.ca_file = api.ca_file;
  impl_->http = std::make_unique<net::HttpClient>(net::parseUrl(api.url + "/"), tls);
}

K8sAdmin::~K8sAdmin() = default;

K8sAdmin::Answer K8sAdmin::call(const std::string& method, const std::string& path,
                                const std::string& body, const std::string& content_type) {
  net::Headers headers{{"Accept", "application/json"}, {"Authorization", "Bearer " + impl_->token}};
  if (!body.empty()) {
    headers.emplace_back("Content-Type", content_type);
  }
  std::lock_guard lock(impl_->mutex);
  const auto result = impl_->http->request(method, path, body, headers, std::chrono::seconds(10));
  if (!result.transportOk()) {
    return {0, result.error_message};
  }
  return {result.response.status, result.response.body};
}

std::string K8sAdmin::mustCall(const std::string& method, const std::string& path,
                               const std::string& body) {
  auto answer = call(method, path, body);
  if (answer.status / 100 != 2) {
    throw std::runtime_error(method + " " + path + ": HTTP " + std::to_string(answer.status) +
                             ": " + answer.body);
  }
  return answer.body;
}

TestNamespace::~TestNamespace() {
  if (!sa_dir.empty()) {
    std::error_code ignored;
    fs::remove_all(sa_dir, ignored);
  }
}

std::vector<std::string> TestNamespace::podEnv(const std::string& pod_name) const {
  return {"KUBERNETES_SERVICE_HOST=127.0.0.1",
          "KUBERNETES_SERVICE_PORT=" + std::to_string(api_port),
          "KESM_SERVICE_ACCOUNT_DIR=" + sa_dir, "POD_NAME=" + pod_name};
}

TestNamespace makeTestNamespace(K8sAdmin& admin, const ApiServerInfo& api,
                                const std::string& prefix) {
  TestNamespace t;
  t.ns = dnsLabel(uniqueName(prefix));
  t.api_port = api.port;
  admin.mustCall("POST", "/api/v1/namespaces",
                 R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":)" + jsonString(t.ns) +
                     "}}");
  const std::string nsp = "/api/v1/namespaces/" + t.ns;
  admin.mustCall("POST", nsp + "/serviceaccounts",
                 R"({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"kesm"}})");
  const auto answer = admin.mustCall(
      "POST", nsp + "/serviceaccounts/kesm/token",
      R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}})");
  const auto token = json::value_to<std::string>(json::parse(answer).at("status").at("token"));
  t.sa_dir = (fs::temp_directory_path() / uniqueName("kesm-sa")).string();
  fs::create_directories(t.sa_dir);
  std::ofstream(t.sa_dir + "/token") << token;
  std::ofstream(t.sa_dir + "/namespace") << t.ns;
  fs::copy_file(api.ca_file, t.sa_dir + "/ca.crt");
  return t;
}

void grantRole(K8sAdmin& admin, const std::string& ns, const std::string& role,
               const std::string& rules_json) {
  const std::string rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns;
  admin.mustCall(
      "POST", rbac + "/roles",
      R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":)" +
          jsonString(role) + R"(},"rules":)" + rules_json + "}");
  admin.mustCall("POST", rbac + "/rolebindings",
                 R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",)"
                 R"("metadata":{"name":)" +
                     jsonString(role) +
                     R"(},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role",)"
                     R"("name":)" +
                     jsonString(role) +
                     R"(},"subjects":[{"kind":"ServiceAccount","name":"kesm",)"
                     R"("namespace":)" +
                     jsonString(ns) + "}]}");
}

void replaceRole(K8sAdmin& admin, const std::string& ns, const std::string& role,
                 const std::string& rules_json) {
  admin.mustCall(
      "PUT", "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns + "/roles/" + role,
      R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":)" +
          jsonString(role) + R"(},"rules":)" + rules_json + "}");
}

void createStatefulSet(K8sAdmin& admin, const std::string& ns, const std::string& name,
                       const std::string& service, int replicas) {
  admin.mustCall("POST", "/apis/apps/v1/namespaces/" + ns + "/statefulsets",
                 R"({"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":)" +
                     jsonString(name) + R"(},"spec":{"replicas":)" + std::to_string(replicas) +
                     R"(,"serviceName":)" + jsonString(service) +
                     R"(,"podManagementPolicy":"Parallel","selector":{"matchLabels":{"app":)" +
                     jsonString(name) + R"(}},"template":{"metadata":{"labels":{"app":)" +
                     jsonString(name) +
                     R"(}},"spec":{"containers":[{"name":"poller",)"
                     R"("image":"kesm:test","args":["poller"]}]}}}})");
}

void createHeadlessService(K8sAdmin& admin, const std::string& ns, const std::string& name) {
  admin.mustCall("POST", "/api/v1/namespaces/" + ns + "/services",
                 R"({"apiVersion":"v1","kind":"Service","metadata":{"name":)" + jsonString(name) +
                     R"(},"spec":{"clusterIP":"None","selector":{"app":)" + jsonString(name) +
                     R"(},"ports":[{"name":"http","port":9464}]}})");
}

void adminScale(K8sAdmin& admin, const std::string& ns, const std::string& name, int replicas) {
  admin.mustCall("PUT", "/apis/apps/v1/namespaces/" + ns + "/statefulsets/" + name + "/scale",
                 R"({"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":)" +
                     jsonString(name) + R"(,"namespace":)" + jsonString(ns) +
                     R"(},"spec":{"replicas":)" + std::to_string(replicas) + "}}");
}

const char* toString(KubeletEvent event) {
  switch (event) {
  case KubeletEvent::kReplicas:
    return "replicas";
  case KubeletEvent::kCreated:
    return "created";
  case KubeletEvent::kStarted:
    return "started";
  case KubeletEvent::kReady:
    return "ready";
  case KubeletEvent::kUnready:
    return "unready";
  case KubeletEvent::kTerminating:
    return "SIGTERM";
  case KubeletEvent::kStopped:
    return "stopped";
  case KubeletEvent::kKilled:
    return "SIGKILL";
  case KubeletEvent::kCrashed:
    return "crashed";
  }
  return "?";
}

struct FakeKubelet::Pod {
  enum class Phase { kPending, kRunning, kTerminating };
  int ordinal = 0;
  std::string name;
  Phase phase = Phase::kPending;
  Clock::time_point start_at{};
  Clock::time_point sigterm_at{};
  std::uint16_t port = 0;
  std::string log;
  std::unique_ptr<ChildProcess> process;
  std::unique_ptr<net::HttpClient> probe; // /readyz, kept alive
  bool ready = false;
};

FakeKubelet::FakeKubelet(const ApiServerInfo& api, FakeKubeletOptions options)
    : options_(std::move(options)), api_(std::make_unique<K8sAdmin>(api)) {
  if (options_.address.empty()) {
    options_.address = hostAddress();
  }
  thread_ = std::thread([this] { run(); });
}

FakeKubelet::~FakeKubelet() { stop(); }

void FakeKubelet::record(KubeletEvent event, int ordinal, int value, std::int64_t generation) {
  std::lock_guard lock(mutex_);
  timeline_.push_back({Clock::now(), event, ordinal, value, generation});
}

void FakeKubelet::error(const std::string& what) {
  std::lock_guard lock(mutex_);
  if (errors_.size() < 200) {
    errors_.push_back(what);
  }
}

void FakeKubelet::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    try {
      tick();
    } catch (const std::exception& e) {
      error(std::string("tick: ") + e.what());
    }
    lock.lock();
    wake_.wait_for(lock, options_.interval, [this] { return stopping_; });
  }
}

void FakeKubelet::tick() {
  const std::string sts_path =
      "/apis/apps/v1/namespaces/" + options_.ns + "/statefulsets/" + options_.stateful_set;
  const auto got = api_->call("GET", sts_path);
  if (got.status != 200) {
    error("GET statefulset: HTTP " + std::to_string(got.status) + ": " + got.body);
    return; // keep the pods as they are: an API outage does not stop a kubelet's pods
  }
  json::value sts = json::parse(got.body);
  const auto& spec = sts.at("spec").as_object();
  const int desired = static_cast<int>(intAt(spec, "replicas"));
  const std::int64_t generation = intAt(sts.at("metadata").as_object(), "generation");
  {
    std::lock_guard lock(mutex_);
    if (generation != last_generation_) {
      if (last_generation_ != 0 && generation > last_generation_ + 1) {
        missed_generation_ = true;
      }
      last_generation_ = generation;
      replicas_seen_.push_back(desired);
      timeline_.push_back({Clock::now(), KubeletEvent::kReplicas, -1, desired, generation});
    }
  }

  const auto now = Clock::now();
  // Scale-down, highest ordinal first: a pod not started yet just goes.
  for (auto it = pods_.rbegin(); it != pods_.rend();) {
    Pod& pod = *it->second;
    if (pod.ordinal < desired || pod.phase == Pod::Phase::kTerminating) {
      ++it;
      continue;
    }
    if (pod.phase == Pod::Phase::kPending) {
      record(KubeletEvent::kStopped, pod.ordinal, -1);
      it = decltype(it)(pods_.erase(std::next(it).base()));
      continue;
    }
    pod.process->signal(SIGTERM);
    pod.phase = Pod::Phase::kTerminating;
    pod.sigterm_at = now;
    record(KubeletEvent::kTerminating, pod.ordinal, 0);
    ++it;
  }
  // Scale-up, lowest ordinal first. An ordinal still terminating waits for its old pod.
  for (int ordinal = 0; ordinal < desired; ++ordinal) {
    if (pods_.count(ordinal) == 0) {
      auto pod = std::make_unique<Pod>();
      pod->ordinal = ordinal;
      pod->name = options_.stateful_set + "-" + std::to_string(ordinal);
      pod->start_at = now + options_.start_delay;
      pods_.emplace(ordinal, std::move(pod));
      record(KubeletEvent::kCreated, ordinal, 0);
    }
  }

  for (auto it = pods_.begin(); it != pods_.end();) {
    Pod& pod = *it->second;
    if (pod.phase == Pod::Phase::kPending && Clock::now() >= pod.start_at) {
      pod.port = freePort();
      pod.log = writeTempFile(
          options_.log_prefix + "-" + pod.name + "-" + std::to_string(pod.port) + ".log", "");
      std::vector<std::string> cmd =
          options_.command ? options_.command(pod.name, pod.port) : std::vector<std::string>{};
      std::string program = KESM_BINARY;
      if (cmd.empty()) {
        cmd.push_back("poller");
        cmd.insert(cmd.end(), options_.poller_args.begin(), options_.poller_args.end());
        cmd.push_back("--listen");
        cmd.push_back(options_.address + ":" + std::to_string(pod.port));
      } else {
        program = cmd.front();
        cmd.erase(cmd.begin());
      }
      std::vector<std::string> env = options_.env;
      env.push_back("POD_NAME=" + pod.name);
      pod.process = std::make_unique<ChildProcess>(program, cmd, pod.log, env);
      pod.probe = std::make_unique<net::HttpClient>(
          net::parseHttpUrl("http://" + options_.address + ":" + std::to_string(pod.port) + "/"));
      pod.phase = Pod::Phase::kRunning;
      {
        std::lock_guard lock(mutex_);
        logs_.push_back(pod.log);
      }
      record(KubeletEvent::kStarted, pod.ordinal, pod.port);
    }
    if (pod.phase == Pod::Phase::kPending) {
      ++it;
      continue;
    }
    if (!pod.process->running()) {
      const int status = pod.process->wait(std::chrono::milliseconds(0));
      record(pod.phase == Pod::Phase::kRunning ? KubeletEvent::kCrashed : KubeletEvent::kStopped,
             pod.ordinal, status);
      it = pods_.erase(it); // wanted still: created again at the next tick
      continue;
    }
    if (pod.phase == Pod::Phase::kTerminating &&
        Clock::now() - pod.sigterm_at >= options_.grace_period) {
      pod.process->signal(SIGKILL);
      record(KubeletEvent::kKilled, pod.ordinal, 0);
      const int status = pod.process->wait(std::chrono::seconds(5));
      record(KubeletEvent::kStopped, pod.ordinal, status);
      it = pods_.erase(it);
      continue;
    }
    const auto answer =
        pod.probe->request("GET", "/readyz", "", {}, std::chrono::milliseconds(500));
    const bool ready =
        pod.phase == Pod::Phase::kRunning && answer.transportOk() && answer.response.status == 200;
    if (ready != pod.ready) {
      pod.ready = ready;
      record(ready ? KubeletEvent::kReady : KubeletEvent::kUnready, pod.ordinal, 0);
    }
    ++it;
  }

  int alive = 0, ready = 0, existing = static_cast<int>(pods_.size());
  std::map<int, std::uint16_t> ports;
  std::map<int, pid_t> pids;
  for (const auto& [ordinal, pod] : pods_) {
    if (pod->process) {
      ++alive;
      ports[ordinal] = pod->port;
      pids[ordinal] = pod->process->pid();
    }
    ready += pod->ready ? 1 : 0;
  }
  {
    std::lock_guard lock(mutex_);
    alive_ = alive;
    most_alive_ = std::max(most_alive_, alive);
    ready_ = ready;
    ports_ = ports;
    pids_ = pids;
  }

  // One EndpointSlice per pod with a process, as the EndpointSlice controller keeps them
  // (a terminating pod stays listed, not ready, until it is gone).
  const std::string slices_path =
      "/apis/discovery.k8s.io/v1/namespaces/" + options_.ns + "/endpointslices";
  std::map<std::string, std::string> wanted;
  for (const auto& [ordinal, pod] : pods_) {
    if (!pod->process) {
      continue;
    }
    const bool terminating = pod->phase == Pod::Phase::kTerminating;
    json::object slice{
        {"apiVersion", "discovery.k8s.io/v1"},
        {"kind", "EndpointSlice"},
        {"metadata",
         {{"name", pod->name},
          {"labels",
           {{"kubernetes.io/service-name", options_.service},
            {"endpointslice.kubernetes.io/managed-by", "fake-kubelet.kesm.test"}}}}},
        {"addressType", "IPv4"},
        {"endpoints",
         json::array{json::object{
             {"addresses", json::array{json::value(options_.address)}},
             {"conditions",
              {{"ready", pod->ready},
               {"serving", pod->ready || terminating},
               {"terminating", terminating}}},
             {"targetRef", {{"kind", "Pod"}, {"name", pod->name}, {"namespace", options_.ns}}}}}},
        {"ports",
         json::array{json::object{
             {"name", "http"}, {"port", static_cast<int>(pod->port)}, {"protocol", "TCP"}}}}};
    wanted[pod->name] = json::serialize(slice);
  }
  for (auto it = slices_.begin(); it != slices_.end();) {
    if (wanted.count(it->first) != 0) {
      ++it;
      continue;
    }
    const auto answer = api_->call("DELETE", slices_path + "/" + it->first);
    if (answer.status / 100 == 2 || answer.status == 404) {
      it = slices_.erase(it);
    } else {
      error("DELETE endpointslice " + it->first + ": HTTP " + std::to_string(answer.status));
      ++it;
    }
  }
  for (const auto& [name, body] : wanted) {
    auto have = slices_.find(name);
    if (have != slices_.end() && have->second == body) {
      continue;
    }
    // PUT over whatever is there (a slice left by an earlier pod of the ordinal included).
    auto answer = api_->call("PUT", slices_path + "/" + name, body);
    if (answer.status == 404) {
      answer = api_->call("POST", slices_path, body);
    }
    if (answer.status / 100 == 2) {
      slices_[name] = body;
    } else {
      error("write endpointslice " + name + ": HTTP " + std::to_string(answer.status) + ": " +
            answer.body);
    }
  }

  // The StatefulSet's status, as its controller writes it: only when it changed (every write
  // moves the resourceVersion, and a scale PUT carrying an older one meets a 409).
  json::object status{{"replicas", existing},        {"readyReplicas", ready},
                      {"currentReplicas", existing}, {"updatedReplicas", existing},
                      {"availableReplicas", ready},  {"observedGeneration", generation}};
  const std::string status_text = json::serialize(status);
  if (status_text != written_status_) {
    sts.as_object()["status"] = status;
    const auto answer = api_->call("PUT", sts_path + "/status", json::serialize(sts));
    if (answer.status / 100 == 2) {
      written_status_ = status_text;
    } else if (answer.status != 409) { // a 409: the spec moved meanwhile, next tick
      error("PUT statefulset status: HTTP " + std::to_string(answer.status) + ": " + answer.body);
    }
  }
}

void FakeKubelet::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) {
      return;
    }
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  for (auto it = pods_.rbegin(); it != pods_.rend(); ++it) {
    if (it->second->process && it->second->phase == Pod::Phase::kRunning) {
      it->second->process->signal(SIGTERM);
      record(KubeletEvent::kTerminating, it->first, 0);
    }
  }
  const auto deadline = Clock::now() + options_.grace_period;
  for (auto it = pods_.rbegin(); it != pods_.rend(); ++it) {
    auto& pod = *it->second;
    if (!pod.process) {
      continue;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    int status = pod.process->wait(std::max(left, std::chrono::milliseconds(0)));
    if (status < 0) {
      pod.process->signal(SIGKILL);
      record(KubeletEvent::kKilled, pod.ordinal, 0);
      status = pod.process->wait(std::chrono::seconds(5));
    }
    record(KubeletEvent::kStopped, pod.ordinal, status);
  }
  pods_.clear();
  std::lock_guard lock(mutex_);
  alive_ = 0;
  ready_ = 0;
  ports_.clear();
  pids_.clear();
}

std::vector<TimelineEntry> FakeKubelet::timeline() const {
  std::lock_guard lock(mutex_);
  return timeline_;
}

int FakeKubelet::alive() const {
  std::lock_guard lock(mutex_);
  return alive_;
}

int FakeKubelet::mostAlive() const {
  std::lock_guard lock(mutex_);
  return most_alive_;
}

int FakeKubelet::ready() const {
  std::lock_guard lock(mutex_);
  return ready_;
}

std::map<int, std::uint16_t> FakeKubelet::ports() const {
  std::lock_guard lock(mutex_);
  return ports_;
}

std::map<int, pid_t> FakeKubelet::pids() const {
  std::lock_guard lock(mutex_);
  return pids_;
}

std::vector<int> FakeKubelet::replicasSeen() const {
  std::lock_guard lock(mutex_);
  return replicas_seen_;
}

bool FakeKubelet::missedGeneration() const {
  std::lock_guard lock(mutex_);
  return missed_generation_;
}

std::vector<std::string> FakeKubelet::errors() const {
  std::lock_guard lock(mutex_);
  return errors_;
}

std::vector<std::string> FakeKubelet::logs() const {
  std::lock_guard lock(mutex_);
  return logs_;
}

std::string FakeKubelet::report(Clock::time_point origin) const {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  for (const auto& e : timeline()) {
    out << "+" << std::chrono::duration<double>(e.at - origin).count() << " s  ";
    if (e.event == KubeletEvent::kReplicas) {
      out << "spec.replicas " << e.value << " (generation " << e.generation << ")";
    } else {
      out << options_.stateful_set << "-" << e.ordinal << " " << toString(e.event);
      if (e.event == KubeletEvent::kStarted) {
        out << " (port " << e.value << ")";
      } else if (e.event == KubeletEvent::kStopped || e.event == KubeletEvent::kCrashed) {
        out << (e.value < 0 ? " (never started)" : " (exit " + std::to_string(e.value) + ")");
      }
    }
    out << "\n";
  }
  return out.str();
}

DumpKubeletOnFailure::~DumpKubeletOnFailure() {
  if (std::uncaught_exceptions() == 0) {
    return;
  }
  std::cerr << "---- kubelet timeline ----\n" << kubelet_.report(origin_);
  for (const auto& e : kubelet_.errors()) {
    std::cerr << "kubelet error: " << e << "\n";
  }
  for (const auto& log : kubelet_.logs()) {
    DumpLogOnFailure dump(log); // prints as it goes: an exception is in flight
  }
}

} // namespace kesm::test::e2e
