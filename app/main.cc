// The kesm executable: run, validate, demo, sample-function.

#include "app/demo.h"
#include "app/runtime.h"
#include "common/log.h"
#include "config/config.h"
#include "samplefn/sample_function.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <pthread.h>
#include <string>
#include <vector>

namespace {

constexpr const char* kVersion = "0.1.0";

constexpr const char* kUsage = R"(kesm — a Kafka event source mapping for any HTTP function

usage:
  kesm run --config FILE [--live]        run the mappings of FILE until SIGTERM/SIGINT
  kesm validate --config FILE            check FILE; exit 0 if valid, 2 if not
  kesm demo [--config FILE] [--records N] [--latency DURATION]
                                         embedded mock Kafka + sample function + a burst
  kesm sample-function [--listen HOST:PORT] [--latency DURATION] [--fail-rate P]
                       [--record FILE]   the sample HTTP function
  kesm version
)";

// Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct Args {
  std::string command;
  std::map<std::string, std::string> options;
  std::vector<std::string> flags;
};

bool parseArgs(int argc, char** argv, Args& args, std::string& error) {
  if (argc < 2) {
    error = "missing command";
    return false;
  }
  args.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      error = "unexpected argument '" + a + "'";
      return false;
    }
    auto eq = a.find('=');
    if (eq != std::string::npos) {
      args.options[a.substr(2, eq - 2)] = a.substr(eq + 1);
    } else if (a == "--live" || a == "--verbose") {
      args.flags.push_back(a.substr(2));
    } else if (i + 1 < argc) {
      args.options[a.substr(2)] = argv[++i];
    } else {
      error = "option " + a + " needs a value";
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

int cmdValidate(const Args& args) {
  auto it = args.options.find("config");
  if (it == args.options.end()) {
    std::cerr << "kesm validate: --config FILE is required\n";
    return kExitUsage;
  }
  auto config = kesm::config::loadConfigFile(it->second);
  kesm::app::checkLibrdkafkaSettings(config);
  std::cout << it->second << ": valid, " << config.mappings.size() << " mapping(s)\n";
  return 0;
}

int cmdRun(const Args& args, const sigset_t& signals) {
  auto it = args.options.find("config");
  if (it == args.options.end()) {
    std::cerr << "kesm run: --config FILE is required\n";
    return kExitUsage;
  }
  auto config = kesm::config::loadConfigFile(it->second);
  kesm::app::RuntimeOptions options;
  options.live_line = hasFlag(args, "live");
  kesm::app::Runtime runtime(std::move(config), options);
  runtime.start();
  int sig = waitForSignal(signals);
  kesm::log(kesm::LogLevel::kInfo, "kesm", "signal ", sig,
            ": stopping pollers (each finishes its batch within the grace period)");
  bool clean = runtime.stop();
  kesm::log(kesm::LogLevel::kInfo, "kesm", clean ? "stopped" : "stopped; some pollers timed out");
  return clean ? 0 : kExitFailure;
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
  kesm::samplefn::SampleFunction function(options);
  kesm::log(kesm::LogLevel::kInfo, "sample-function", "listening on ", function.url());
  waitForSignal(signals);
  auto stats = function.stats();
  kesm::log(kesm::LogLevel::kInfo, "sample-function", "stopping: ", stats.invocations,
            " invocations, ", stats.failures, " failed, ", stats.records, " records");
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  Args args;
  std::string error;
  if (!parseArgs(argc, argv, args, error)) {
    std::cerr << "kesm: " << error << "\n\n" << kUsage;
    return kExitUsage;
  }
  if (hasFlag(args, "verbose")) {
    kesm::setLogLevel(kesm::LogLevel::kDebug);
  }
  sigset_t signals = blockTerminationSignals();
  try {
    if (args.command == "run") {
      return cmdRun(args, signals);
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
