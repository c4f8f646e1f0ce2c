#include "app/preflight.h"

#include "common/log.h"
#include "common/resources.h"
#include "kafka/rdkafka_adapter.h"

#include <algorithm>
#include <future>
#include <librdkafka/rdkafka.h>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace kesm::app {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// librdkafka's reason for a broker error, without the broker name in front and the timing
// behind: "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused
// (after 0ms in state CONNECT)" becomes "Connect to ipv4#127.0.0.1:1 failed: Connection refused".
std::string cleanReason(std::string_view reason) {
  auto colon = reason.find(": ");
  if (colon != std::string_view::npos && reason.substr(0, colon).find('/') != std::string::npos &&
      reason.substr(0, colon).find(' ') == std::string::npos) {
    reason.remove_prefix(colon + 2);
  }
  auto after = reason.rfind(" (after ");
  if (after != std::string_view::npos && !reason.empty() && reason.back() == ')') {
    reason = reason.substr(0, after);
  }
  return std::string(reason);
}

// What the client's error callback saw. The callback runs on the thread that calls
// rd_kafka_poll(), which is the preflight's own thread.
struct ClientErrors {
  std::string last;              // the last error that says why a broker could not be used
  std::string last_brokers_down; // "1/1 brokers are down", when nothing better was seen

  static void onError(rd_kafka_t*, int err, const char* reason, void* opaque) {
    auto* self = static_cast<ClientErrors*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
      self->last_brokers_down = cleanReason(reason);
    } else {
      self->last = cleanReason(reason);
    }
  }
};

config::Diagnostic at(const config::Config& config, const config::Location& where,
                      std::string rule) {
  return config::Diagnostic{config.file, where.line, where.column, where.key, std::move(rule)};
}

std::vector<config::Diagnostic> checkMapping(const config::Config& config,
                                             const config::Mapping& mapping,
                                             steady_clock::time_point deadline,
                                             milliseconds timeout) {
  const auto& source = mapping.source;
  const std::string servers = kafka::joinServers(source.bootstrap_servers);
  ClientErrors errors;
  char err[512] = "";
  // What the pollers use to reach the brokers (security included), then kesm's own settings
  // for this client, which the user's map may not override here.
  rd_kafka_conf_t* conf = nullptr;
  try {
    conf = kafka::newConf(kafka::clientSettings(source), kafka::OnRefused::kThrow);
  } catch (const kafka::SettingError& e) {
    const auto& key = e.key();
    const auto& where =
        key.rfind("sasl.", 0) == 0 || key.rfind("ssl.", 0) == 0 || key == "security.protocol"
            ? source.security.at
            : source.librdkafka_at;
    return {at(config, where, "librdkafka refuses the setting '" + key + "': " + e.reason())};
  }
  kafka::applySettings(conf,
                       {{"client.id", "kesm-" + mapping.name + "-preflight"},
                        // A broker with auto.create.topics.enable creates a topic that a client
                        // asks about by name when the client allows it. The request below asks
                        // for all topics, which creates none; this makes sure no request of
                        // this client ever does.
                        {"allow.auto.create.topics", "false"},
                        {"log.connection.close", "false"}},
                       kafka::OnRefused::kSkip);
  rd_kafka_conf_set_opaque(conf, &errors);
  rd_kafka_conf_set_error_cb(conf, &ClientErrors::onError);
  // The reasons end up in the diagnostic; the log lines are only for --verbose.
  rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t*, int, const char* fac, const char* buf) {
    log(LogLevel::kDebug, "preflight", "kafka ", fac, ": ", buf);
  });
  // A consumer without group.id that never subscribes: it reads metadata and joins no group.
  rd_kafka_t* rk = createKafkaClient(
      "the preflight client of mapping " + mapping.name,
      static_cast<int>(source.bootstrap_servers.size()),
      [&] { return rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err); },
      [&] { rd_kafka_conf_destroy(conf); });
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    const config::Location& where =
        source.librdkafka_at.line > 0 ? source.librdkafka_at : source.bootstrap_servers_at;
    return {at(config, where, std::string("librdkafka cannot create a client: ") + err)};
  }
  auto remaining = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t result =
      rd_kafka_metadata(rk, 1 /* all topics */, nullptr, &md,
                        static_cast<int>(std::max<long long>(1, remaining.count())));
  std::vector<config::Diagnostic> out;
  if (result != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_poll(rk, 0); // serves the error callback
    std::string why = !errors.last.empty()                ? errors.last
                      : !errors.last_brokers_down.empty() ? errors.last_brokers_down
                                                          : rd_kafka_err2str(result);
    out.push_back(at(config, source.bootstrap_servers_at,
                     "no broker answered at " + servers + " within " +
                         config::formatDuration(timeout) + ": " + why));
  } else {
    std::set<std::string> present;
    std::set<std::string> unauthorized;
    for (int i = 0; i < md->topic_cnt; ++i) {
      const auto& t = md->topics[i];
      if (t.err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
        unauthorized.insert(t.topic);
      } else if (t.err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        present.insert(t.topic); // e.g. a leader election in progress: the pollers wait for it
      }
    }
    rd_kafka_metadata_destroy(md);
    for (std::size_t i = 0; i < source.topics.size(); ++i) {
      const std::string& topic = source.topics[i];
      config::Location where = i < source.topics_at.size()
                                   ? source.topics_at[i]
                                   : config::Location{"source.topics[" + std::to_string(i) + "]"};
      if (unauthorized.count(topic) > 0) {
        out.push_back(at(config, where,
                         "topic '" + topic + "' on " + servers +
                             ": this client is not authorized to describe it"));
      } else if (present.count(topic) == 0) {
        out.push_back(at(config, where, "topic '" + topic + "' does not exist on " + servers));
      }
    }
    const std::string& destination = mapping.on_failure.destination_topic;
    if (!destination.empty() && present.count(destination) == 0) {
      out.push_back(at(config, mapping.on_failure.at,
                       "the onFailure topic '" + destination + "' does not exist on " + servers +
                           "; create it (kesm never creates topics)"));
    }
  }
  rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  if (out.empty()) {
    log(LogLevel::kDebug, "preflight", mapping.name, ": ", servers, " answered; ",
        source.topics.size(), " topic(s) exist");
  }
  return out;
}

} // namespace

std::vector<std::vector<config::Diagnostic>> preflightEach(const config::Config& config,
                                                           milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  // One client per mapping, all at once: the timeout bounds the whole preflight.
  std::vector<std::future<std::vector<config::Diagnostic>>> checks;
  for (const auto& mapping : config.mappings) {
    try {
      checks.push_back(std::async(std::launch::async, [&config, &mapping, deadline, timeout] {
        return checkMapping(config, mapping, deadline, timeout);
      }));
    } catch (const std::system_error& e) {
      throw ResourceError("cannot start the preflight of mapping " + mapping.name + ": " +
                          e.code().message() + " (" + describeResources() + ")");
    }
  }
  std::vector<std::vector<config::Diagnostic>> out;
  for (auto& check : checks) {
    out.push_back(check.get());
  }
  return out;
}

void preflight(const config::Config& config, milliseconds timeout) {
  std::vector<config::Diagnostic> diagnostics;
  for (auto& each : preflightEach(config, timeout)) {
    for (auto& d : each) {
      diagnostics.push_back(std::move(d));
    }
  }
  if (!diagnostics.empty()) {
    std::stable_sort(diagnostics.begin(), diagnostics.end(),
                     [](const config::Diagnostic& a, const config::Diagnostic& b) {
                       return std::pair(a.line, a.column) < std::pair(b.line, b.column);
                     });
    throw config::ConfigError(std::move(diagnostics));
  }
}

} // namespace kesm::app
