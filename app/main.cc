// The kesm executable: run, poller, validate, demo, sample-function, top.

#include "app/capacity.h"
#include "app/demo.h"
#include "app/leadership.h"
#include "app/live_line.h"
#include "app/poller_process.h"
#include "app/preflight.h"
#include "app/runtime.h"
#include "app/top.h"
#include "common/log.h"
#include "common/version.h"
#include "config/config.h"
#include "k8s/in_cluster.h"
#include "kafka/kafka.h"
#include "samplefn/sample_function.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <pthread.h>
#include <set>
#include <string>
#include <vector>

namespace {

using kesm::kVersion;

constexpr const char* kUsage = R"(kesm — a Kafka event source mapping for any HTTP function

usage:
  kesm run --config FILE [--live] [--preflight-timeout DURATION]
                                         check the brokers and topics of FILE (10s at
                                         most), then run its mappings until SIGTERM/SIGINT
  kesm poller --config FILE --mapping NAME [--pollers N] [--instance-id ID]
              [--membership static|dynamic] [--listen HOST:PORT] [--preflight-timeout DURATION]
                                         pods mode: N (1-64, default the mapping's
                                         pods.pollersPerPod) pollers of one mapping, no
                                         controller; ID defaults to $POD_NAME
  kesm controller --config FILE [--listen HOST:PORT]
                                         pods mode, in a Kubernetes pod: decide every
                                         mapping's pollers and set its StatefulSet's replicas
  kesm validate --config FILE [--connect [--preflight-timeout DURATION]]
                                         check FILE, and with --connect its brokers and
                                         topics too; exit 0 if valid, 2 if not
  kesm demo [--config FILE] [--records N] [--latency DURATION]
                                         embedded mock Kafka + sample function + a burst
  kesm sample-function [--listen HOST:PORT] [--latency DURATION] [--fail-rate P]
                       [--record FILE]   the sample HTTP function
  kesm top [--url URL | --config FILE] [--interval DURATION] [--timeout DURATION] [--once]
                                         the live line of a running kesm, from its /status
                                         (default URL: FILE's server.listen, else
                                         http://127.0.0.1:9464)
  kesm version
)";

// Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct Args {
  std::string command;
  std::map<std::string, std::string> options;
  std::vector<std::string> flags;
  bool help = false; // --help or -h after the command
};

// What each command accepts: options take a value, flags do not. Anything else is a usage
// error, so a typo such as --conect is never silently ignored.
struct Accepted {
  std::set<std::string> options;
  std::set<std::string> flags;
};

const std::map<std::string, Accepted>& acceptedByCommand() {
  static const std::map<std::string, Accepted> kAccepted{
      {"run", {{"config", "preflight-timeout"}, {"live", "verbose"}}},
      {"poller",
       {{"config", "mapping", "pollers", "instance-id", "membership", "listen",
         "preflight-timeout"},
        {"verbose"}}},
      {"controller", {{"config", "listen"}, {"verbose"}}},
      {"validate", {{"config", "preflight-timeout"}, {"connect", "verbose"}}},
      {"demo", {{"config", "records", "partitions", "latency"}, {"verbose"}}},
      {"sample-function", {{"listen", "latency", "fail-rate", "record"}, {"verbose"}}},
      {"top", {{"url", "config", "interval", "timeout"}, {"once", "verbose"}}},
      {"version", {}},
      {"help", {}},
  };
  return kAccepted;
}

bool parseArgs(int argc, char** argv, Args& args, std::string& error) {
  if (argc < 2) {
    error = "kesm: missing command";
    return false;
  }
  args.command = argv[1];
  auto accepted = acceptedByCommand().find(args.command);
  if (accepted == acceptedByCommand().end()) {
    return true; // main() names the unknown command
  }
  const std::string who = "kesm " + args.command + ": ";
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      args.help = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      error = who + "unexpected argument '" + a + "'";
      return false;
    }
    auto eq = a.find('=');
    std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (accepted->second.flags.count(name) > 0) {
      if (eq != std::string::npos) {
        error = who + "option --" + name + " takes no value";
        return false;
      }
      args.flags.push_back(name);
    } else if (accepted->second.options.count(name) == 0) {
      error = who + "unknown option --" + name;
      return false;
    } else if (eq != std::string::npos) {
      args.options[name] = a.substr(eq + 1);
    } else if (i + 1 < argc) {
      args.options[name] = argv[++i];
    } else {
      error = who + "option --" + name + " needs a value";
      return false;
    }
  }
  return true;
}

bool hasFlag(const Args& args, const std::string& flag) {
  for (const auto& f : args.flags) {
    if (f == flag) {
      return true;
    }
  }
  return false;
}

// Blocks the termination signals in every thread; the main thread waits for them.
sigset_t blockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return set;
}

int waitForSignal(const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

// --preflight-timeout DURATION, or the default. False (after a message) when malformed or
// out of range: an hour is more than any broker needs to answer, and far from the overflow
// of a deadline in steady_clock.
bool preflightTimeout(const Args& args, const char* command, std::chrono::milliseconds& out) {
  out = kesm::app::kDefaultPreflightTimeout;
  auto it = args.options.find("preflight-timeout");
  if (it == args.options.end()) {
    return true;
  }
  constexpr std::chrono::milliseconds kMax = std::chrono::hours(1);
  auto d = kesm::config::parseDuration(it->second);
  if (!d || d->count() <= 0 || *d > kMax) {
    std::cerr << "kesm " << command
              << ": --preflight-timeout: expected a duration from 1ms to 1h like 10s, got '"
              << it->second << "'\n";
    return false;
  }
  out = *d;
  return true;
}

int cmdValidate(const Args& args) {
  auto it = args.options.find("config");
  if (it == args.options.end()) {
    std::cerr << "kesm validate: --config FILE is required\n";
    return kExitUsage;
  }
  bool connect = hasFlag(args, "connect");
  if (!connect && args.options.count("preflight-timeout") > 0) {
    std::cerr << "kesm validate: --preflight-timeout applies only with --connect\n";
    return kExitUsage;
  }
  std::chrono::milliseconds timeout;
  if (!preflightTimeout(args, "validate", timeout)) {
    return kExitUsage;
  }
  auto config = kesm::config::loadConfigFile(it->second, kesm::kafka::checkSetting);
  kesm::app::checkLibrdkafkaSettings(config);
  // A warning, not an error: the limits of this shell may not be those kesm runs under.
  for (const auto& warning :
       kesm::app::capacityWarnings(kesm::app::estimateNeed(config), kesm::currentLimits())) {
    std::cerr << "kesm validate: warning: " << warning << "\n";
  }
  if (connect) {
    kesm::app::preflight(config, timeout);
  }
  std::cout << it->second << ": valid, " << config.mappings.size() << " mapping(s)"
            << (connect ? "; brokers answered and every topic exists" : "") << "\n";
  return 0;
}

int cmdRun(const Args& args, const sigset_t& signals) {
  auto it = args.options.find("config");
  if (it == args.options.end()) {
    std::cerr << "kesm run: --config FILE is required\n";
    return kExitUsage;
  }
  std::chrono::milliseconds timeout;
  if (!preflightTimeout(args, "run", timeout)) {
    return kExitUsage;
  }
  auto config = kesm::config::loadConfigFile(it->second, kesm::kafka::checkSetting);
  // A wrong address, a misspelt topic or refused credentials: refuse them now, loudly, rather
  // than start pollers that wait for what will never be there. When every mapping fails that
  // is a config error (exit 2); otherwise the failing mappings start Disabled and the others
  // run.
  kesm::app::RuntimeOptions options;
  // Before the preflight: a config that cannot run here fails without touching Kafka.
  std::string election_off;
  options.lease_store = kesm::app::leaseStoreFor(config, election_off);
  if (options.lease_store) {
    options.identity = kesm::app::electionIdentity();
  }
  auto problems = kesm::app::preflightEach(config, timeout);
  std::vector<kesm::config::Diagnostic> all;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    if (problems[i].empty()) {
      continue;
    }
    std::string reason;
    for (const auto& d : problems[i]) {
      all.push_back(d);
      reason += (reason.empty() ? "" : "; ") + d.toString();
    }
    options.disabled_at_start[config.mappings[i].name] = "preflight failed: " + reason;
  }
  if (options.disabled_at_start.size() == config.mappings.size()) {
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    throw kesm::config::ConfigError(std::move(all));
  }
  kesm::log(kesm::LogLevel::kInfo, "kesm", "preflight passed for ",
            config.mappings.size() - options.disabled_at_start.size(), " of ",
            config.mappings.size(), " mapping(s)");
  options.live_line = hasFlag(args, "live");
  if (!options.lease_store) {
    kesm::log(kesm::LogLevel::kInfo, "leader", "leader election off (", election_off, ")");
  }

  kesm::app::Runtime runtime(std::move(config), std::move(options));
  runtime.start();
  int sig = waitForSignal(signals);
  kesm::log(kesm::LogLevel::kInfo, "kesm", "signal ", sig,
            ": stopping pollers (each finishes its batch within the grace period)");
  bool clean = runtime.stop();
  kesm::log(kesm::LogLevel::kInfo, "kesm", clean ? "stopped" : "stopped; some pollers timed out");
  return clean ? 0 : kExitFailure;
}

// `kesm poller`: the process of a poller pod (app/poller_process.h, docs/kubernetes.md).
int cmdPoller(const Args& args, const sigset_t& signals) {
  auto opt = [&](const std::string& name) {
    auto it = args.options.find(name);
    return it == args.options.end() ? std::optional<std::string>() : it->second;
  };
  if (!opt("config") || !opt("mapping")) {
    std::cerr << "kesm poller: --config FILE and --mapping NAME are required\n";
    return kExitUsage;
  }
  kesm::app::PollerProcessOptions options;
  options.mapping = *opt("mapping");
  if (auto n = opt("pollers")) {
    char* end = nullptr;
    long v = std::strtol(n->c_str(), &end, 10);
    if (n->empty() || *end != '\0' || v < kesm::app::kMinPodPollers ||
        v > kesm::app::kMaxPodPollers) {
      std::cerr << "kesm poller: --pollers: expected a whole number from "
                << kesm::app::kMinPodPollers << " to " << kesm::app::kMaxPodPollers << ", got '"
                << *n << "'\n";
      return kExitUsage;
    }
    options.pollers = static_cast<int>(v);
  }
  std::string id;
  if (auto i = opt("instance-id")) {
    id = *i;
  } else if (const char* pod = std::getenv("POD_NAME"); pod != nullptr) {
    id = pod;
  }
  // Kafka takes any string; kesm keeps it to what a pod name can be, so logs and /status stay
  // plain.
  if (id.size() > 200 ||
      id.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") != std::string::npos) {
    std::cerr << "kesm poller: --instance-id (or POD_NAME): expected up to 200 letters, digits, "
                 "'-', '.' or '_', got '"
              << id << "'\n";
    return kExitUsage;
  }
  const std::string membership = opt("membership").value_or("dynamic");
  if (membership != "static" && membership != "dynamic") {
    std::cerr << "kesm poller: --membership: expected static or dynamic, got '" << membership
              << "'\n";
    return kExitUsage;
  }
  if (membership == "static" && id.empty()) {
    std::cerr << "kesm poller: --membership static needs --instance-id ID or POD_NAME\n";
    return kExitUsage;
  }
  options.instance_id = id;
  options.static_membership = membership == "static";
  options.listen = opt("listen").value_or("");
  std::chrono::milliseconds timeout;
  if (!preflightTimeout(args, "poller", timeout)) {
    return kExitUsage;
  }
  auto config = kesm::config::loadConfigFile(*opt("config"), kesm::kafka::checkSetting);
  kesm::app::checkLibrdkafkaSettings(config);
  // The preflight of this mapping only: the pod runs nothing else. A failure is exit 2, and
  // Kubernetes starts the pod again (a broker still coming up passes a later try).
  auto only = config;
  std::erase_if(only.mappings, [&](const auto& m) { return m.name != options.mapping; });
  if (only.mappings.empty()) {
    std::string names;
    for (const auto& m : config.mappings) {
      names += (names.empty() ? "" : ", ") + m.name;
    }
    std::cerr << "kesm poller: --mapping: no mapping named '" << options.mapping << "' in "
              << *opt("config") << " (it has " << names << ")\n";
    return kExitUsage;
  }
  kesm::app::preflight(only, timeout);
  if (!opt("pollers")) {
    options.pollers = only.mappings.front().pods.pollers_per_pod;
  }

  kesm::app::PollerProcess process(std::move(only), std::move(options));
  process.start();
  int sig = waitForSignal(signals);
  kesm::log(kesm::LogLevel::kInfo, "kesm", "signal ", sig,
            ": stopping pollers (each finishes its batch within the grace period)");
  bool clean = process.stop();
  kesm::log(kesm::LogLevel::kInfo, "kesm", clean ? "stopped" : "stopped; some pollers timed out");
  return clean ? 0 : kExitFailure;
}

// `kesm controller`: pods mode's controller (app/runtime.h PodsTarget, docs/kubernetes.md). No
// preflight: the poller pods check what they reach; the controller needs the brokers (for the
// lag) and the API server, and waits for either rather than exit.
int cmdController(const Args& args, const sigset_t& signals) {
  auto it = args.options.find("config");
  if (it == args.options.end()) {
    std::cerr << "kesm controller: --config FILE is required\n";
    return kExitUsage;
  }
  auto config = kesm::config::loadConfigFile(it->second, kesm::kafka::checkSetting);
  kesm::app::checkLibrdkafkaSettings(config);
  if (auto l = args.options.find("listen"); l != args.options.end()) {
    config.server.listen = l->second;
  }
  std::vector<kesm::config::Diagnostic> unnamed;
  for (const auto& m : config.mappings) {
    if (m.pods.stateful_set.empty()) {
      const auto& at = m.pods.name_at;
      unnamed.push_back({config.file, at.line, at.column, at.key,
                         "'" + m.name +
                             "' makes no StatefulSet name (kesm-NAME must be at most 52 "
                             "lowercase letters, digits and '-'); set the mapping's "
                             "pods.statefulSet"});
    }
  }
  if (!unnamed.empty()) {
    throw kesm::config::ConfigError(std::move(unnamed));
  }
  std::string why;
  auto cluster = kesm::k8s::detectInCluster(
      [](const std::string& name) -> std::optional<std::string> {
        const char* v = std::getenv(name.c_str());
        return v ? std::optional<std::string>(v) : std::nullopt;
      },
      why);
  if (!cluster) {
    std::cerr << "kesm controller: runs in a Kubernetes pod, and this is none (" << why
              << "); outside Kubernetes, `kesm run` runs the pollers itself\n";
    return kExitUsage;
  }
  kesm::app::RuntimeOptions options;
  options.pods = kesm::app::PodsTarget{*cluster, cluster->ns, std::chrono::milliseconds(5000)};
  std::string election_off;
  options.lease_store = kesm::app::leaseStoreFor(config, election_off);
  if (options.lease_store) {
    options.identity = kesm::app::electionIdentity();
  } else {
    kesm::log(kesm::LogLevel::kInfo, "leader", "leader election off (", election_off, ")");
  }
  kesm::log(kesm::LogLevel::kInfo, "kesm", "controller: ", config.mappings.size(),
            " mapping(s), their pollers the pods of StatefulSets in namespace ", cluster->ns);
  kesm::app::Runtime runtime(std::move(config), std::move(options));
  runtime.start();
  int sig = waitForSignal(signals);
  kesm::log(kesm::LogLevel::kInfo, "kesm", "signal ", sig,
            ": stopping; the StatefulSets keep their replicas");
  runtime.stop();
  kesm::log(kesm::LogLevel::kInfo, "kesm", "stopped");
  return 0;
}

int cmdSampleFunction(const Args& args, const sigset_t& signals) {
  kesm::samplefn::SampleFunctionOptions options;
  options.listen = "127.0.0.1:9000";
  if (auto it = args.options.find("listen"); it != args.options.end()) {
    options.listen = it->second;
  }
  if (auto it = args.options.find("latency"); it != args.options.end()) {
    auto d = kesm::config::parseDuration(it->second);
    if (!d) {
      std::cerr << "kesm sample-function: --latency: expected a duration like 100ms, got '"
                << it->second << "'\n";
      return kExitUsage;
    }
    options.latency = *d;
  }
  if (auto it = args.options.find("fail-rate"); it != args.options.end()) {
    char* end = nullptr;
    options.fail_rate = std::strtod(it->second.c_str(), &end);
    if (end == it->second.c_str() || *end != '\0' || options.fail_rate < 0 ||
        options.fail_rate > 1) {
      std::cerr << "kesm sample-function: --fail-rate: expected a number from 0 to 1, got '"
                << it->second << "'\n";
      return kExitUsage;
    }
  }
  if (auto it = args.options.find("record"); it != args.options.end()) {
    options.record_file = it->second;
  }
  // Everything the constructor can refuse comes from the options (--listen malformed or not
  // bindable, --record not writable): a usage error, exit 2 as documented.
  std::unique_ptr<kesm::samplefn::SampleFunction> started;
  try {
    started = std::make_unique<kesm::samplefn::SampleFunction>(options);
  } catch (const std::exception& e) {
    std::cerr << "kesm sample-function: " << e.what() << "\n";
    return kExitUsage;
  }
  auto& function = *started;
  kesm::log(kesm::LogLevel::kInfo, "sample-function", "listening on ", function.url());
  waitForSignal(signals);
  auto stats = function.stats();
  kesm::log(kesm::LogLevel::kInfo, "sample-function", "stopping: ", stats.invocations,
            " invocations, ", stats.failures, " failed, ", stats.records, " records");
  return 0;
}

// A duration option from 100ms to 1h, or the fallback. False (after a message) otherwise.
bool topDuration(const Args& args, const std::string& name, std::chrono::milliseconds& out) {
  auto it = args.options.find(name);
  if (it == args.options.end()) {
    return true;
  }
  auto d = kesm::config::parseDuration(it->second);
  if (!d || *d < std::chrono::milliseconds(100) || *d > std::chrono::hours(1)) {
    std::cerr << "kesm top: --" << name << ": expected a duration from 100ms to 1h like 2s, got '"
              << it->second << "'\n";
    return false;
  }
  out = *d;
  return true;
}

int cmdTop(const Args& args, const sigset_t& signals) {
  kesm::app::TopOptions options;
  if (!topDuration(args, "interval", options.interval) ||
      !topDuration(args, "timeout", options.timeout)) {
    return kExitUsage;
  }
  options.once = hasFlag(args, "once");
  auto url = args.options.find("url");
  auto config = args.options.find("config");
  if (url != args.options.end() && config != args.options.end()) {
    std::cerr << "kesm top: give --url or --config, not both\n";
    return kExitUsage;
  }
  try {
    if (url != args.options.end()) {
      options.url = url->second;
    } else if (config != args.options.end()) {
      // A config error is reported as by validate (exit 2), by main().
      auto loaded = kesm::config::loadConfigFile(config->second, kesm::kafka::checkSetting);
      options.url = kesm::app::urlForListen(loaded.server.listen);
    } else {
      options.url = kesm::app::urlForListen(kesm::config::kDefaultListen);
    }
    kesm::app::statusUrl(options.url); // a malformed URL is a usage error
  } catch (const std::invalid_argument& e) {
    std::cerr << "kesm top: " << e.what() << "\n";
    return kExitUsage;
  }
  return kesm::app::runTop(options, signals);
}

} // namespace

int main(int argc, char** argv) {
  Args args;
  std::string error;
  if (!parseArgs(argc, argv, args, error)) {
    std::cerr << error << "\n\n" << kUsage;
    return kExitUsage;
  }
  if (args.help) {
    std::cout << kUsage;
    return 0;
  }
  if (hasFlag(args, "verbose")) {
    kesm::setLogLevel(kesm::LogLevel::kDebug);
  }
  sigset_t signals = blockTerminationSignals();
  try {
    if (args.command == "run") {
      return cmdRun(args, signals);
    }
    if (args.command == "poller") {
      return cmdPoller(args, signals);
    }
    if (args.command == "controller") {
      return cmdController(args, signals);
    }
    if (args.command == "validate") {
      return cmdValidate(args);
    }
    if (args.command == "demo") {
      return kesm::app::runDemo(args.options, signals);
    }
    if (args.command == "sample-function") {
      return cmdSampleFunction(args, signals);
    }
    if (args.command == "top") {
      return cmdTop(args, signals);
    }
    if (args.command == "version" || args.command == "--version") {
      std::cout << "kesm " << kVersion << "\n";
      return 0;
    }
    if (args.command == "help" || args.command == "--help" || args.command == "-h") {
      std::cout << kUsage;
      return 0;
    }
    std::cerr << "kesm: unknown command '" << args.command << "'\n\n" << kUsage;
    return kExitUsage;
  } catch (const kesm::config::ConfigError& e) {
    std::cerr << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "kesm: " << e.what() << "\n";
    return kExitFailure;
  }
}
