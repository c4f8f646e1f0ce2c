#include "kafka/kafka.h"
#include "kafka/rdkafka_adapter.h"

#include <algorithm>

namespace kesm::kafka {

std::string joinServers(const std::vector<std::string>& servers) {
  std::string out;
  for (const auto& s : servers) {
    out += (out.empty() ? "" : ",") + s;
  }
  return out;
}

SettingError::SettingError(std::string key, std::string reason)
    : std::runtime_error("librdkafka setting " + key + ": " + reason), key_(std::move(key)),
      reason_(std::move(reason)) {}

void applySettings(rd_kafka_conf_t* conf, const Settings& settings, OnRefused on_refused) {
  char err[512];
  for (const auto& [key, value] : settings) {
    err[0] = '\0';
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK &&
        on_refused == OnRefused::kThrow) {
      throw SettingError(key, err);
    }
  }
}

rd_kafka_conf_t* newConf(const Settings& settings, OnRefused on_refused) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  try {
    applySettings(conf, settings, on_refused);
  } catch (...) {
    rd_kafka_conf_destroy(conf);
    throw;
  }
  return conf;
}

bool isAccessRefused(int librdkafka_error) {
  switch (static_cast<rd_kafka_resp_err_t>(librdkafka_error)) {
  case RD_KAFKA_RESP_ERR__AUTHENTICATION:
  case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
  case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    return true;
  default:
    return false;
  }
}

Settings consumerSettings(const config::Mapping& mapping, const std::string& client_id) {
  const auto& s = mapping.source;
  Settings out{
      {"group.id", s.consumer_group_id},
      {"client.id", client_id},
      // Offsets are committed only after the function succeeded, as explicit lists.
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      // Where a partition without a usable committed offset starts when kesm did not choose
      // (LATEST and AT_TIMESTAMP choose at assignment), and where an offset retention deleted
      // resumes: never past records still in the log.
      {"auto.offset.reset", "earliest"},
      {"partition.assignment.strategy", s.partition_assignor},
      // Fast failover and rebalances; also what the mock cluster needs to form groups.
      {"session.timeout.ms", "6000"},
      {"heartbeat.interval.ms", "500"},
      // Bounded prefetch per partition (each has its own queue, see the poller's
      // intake()): about two
      // batches by count and 2 MiB by bytes, per partition and per poller, so memory stays
      // bounded when a poller owns many lagging partitions or many pollers run (8 MiB each
      // took 1.5 GB at 100 pollers); a fetch response is at most 4 MiB.
      {"queued.min.messages", std::to_string(std::max(100, 2 * mapping.batching.batch_size))},
      {"queued.max.messages.kbytes", "2048"},
      {"fetch.max.bytes", "4194304"},
      {"socket.nagle.disable", "true"},
      {"log.connection.close", "false"},
      // Partitions added to a topic reach the group within 5 s, not librdkafka's 5 min: one
      // small Metadata request (the subscribed topics) per poller every 5 s.
      {"topic.metadata.refresh.interval.ms", "5000"},
  };
  // The cluster's address and security, then the user's map, which may override the above.
  for (auto& kv : kafka::clientSettings(s)) {
    out.push_back(std::move(kv));
  }
  return out;
}

} // namespace kesm::kafka
