#include "poller/dead_letter.h"

#include "common/log.h"
#include "common/resources.h"
#include "kafka/rdkafka_adapter.h"

#include <algorithm>
#include <condition_variable>
#include <librdkafka/rdkafka.h>
#include <map>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace kesm::poller {

namespace {

using std::chrono::milliseconds;

// librdkafka's own defaults and bounds for the two settings.
constexpr std::int64_t kDefaultBatchSize = 1000000;
constexpr std::int64_t kMinMessageMaxBytes = 1000;
constexpr std::int64_t kMaxMessageMaxBytes = 1000000000;
// The client estimates a record's wire size from above: with this much over the topic's
// limit it never refuses a record the broker would take, and the broker has the last word.
constexpr std::int64_t kClientSlackBytes = 64 * 1024;
constexpr milliseconds kLookupTimeout{5000};

// Delivery reports of one write() call; each record's opaque is its slot.
struct Pending;
struct Slot {
  Pending* pending = nullptr;
  const Record* record = nullptr;
};
struct Pending {
  std::mutex mutex;
  int remaining = 0;
  rd_kafka_resp_err_t first_error = RD_KAFKA_RESP_ERR_NO_ERROR;
  const Record* failed = nullptr; // the record of first_error
  std::vector<Slot> slots;

  void fail(rd_kafka_resp_err_t err, const Record* record) {
    if (first_error == RD_KAFKA_RESP_ERR_NO_ERROR) {
      first_error = err;
      failed = record;
    }
  }
};

std::string iso8601(std::int64_t epoch_ms) {
  std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(epoch_ms % 1000));
  return buf;
}

std::size_t recordBytes(const Record& r) {
  std::size_t n = (r.key ? r.key->size() : 0) + (r.value ? r.value->size() : 0);
  for (const auto& h : r.headers) {
    n += h.key.size() + (h.value ? h.value->size() : 0);
  }
  return n;
}

rd_kafka_conf_t* clientConf(const config::Mapping& mapping, const std::string& client_id) {
  // The user's map may hold consumer-only settings; they do not apply to a producer.
  rd_kafka_conf_t* conf =
      kafka::newConf(kafka::clientSettings(mapping.source), kafka::OnRefused::kSkip);
  kafka::applySettings(conf,
                       {{"client.id", client_id},
                        {"allow.auto.create.topics", "false"},
                        {"log.connection.close", "false"}},
                       kafka::OnRefused::kSkip);
  rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t*, int level, const char* fac,
                                    const char* buf) {
    log(level <= 4 ? LogLevel::kWarn : LogLevel::kDebug, "on-failure", "kafka ", fac, ": ", buf);
  });
  return conf;
}

// max.message.bytes of each topic that answered, read with DescribeConfigs from any broker
// (the default target, the controller, is one the mock cluster never names: the request
// would wait out its timeout). `error` says why a topic is missing.
std::map<std::string, std::int64_t> describeMaxMessageBytes(const config::Mapping& mapping,
                                                            const std::vector<std::string>& topics,
                                                            std::string& error) {
  std::map<std::string, std::int64_t> out;
  char err[512];
  rd_kafka_conf_t* conf = clientConf(mapping, "kesm-" + mapping.name + "-on-failure-lookup");
  rd_kafka_t* rk = createKafkaClient(
      "the onFailure size lookup of mapping " + mapping.name,
      static_cast<int>(mapping.source.bootstrap_servers.size()),
      [&] { return rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err); },
      [&] { rd_kafka_conf_destroy(conf); });
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    error = err;
    return out;
  }
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t merr =
      rd_kafka_metadata(rk, 0, nullptr, &md, static_cast<int>(kLookupTimeout.count()));
  if (merr != RD_KAFKA_RESP_ERR_NO_ERROR || md->broker_cnt == 0) {
    error = std::string("metadata: ") + rd_kafka_err2str(merr);
    if (md != nullptr) {
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    return out;
  }
  int broker = md->brokers[0].id;
  rd_kafka_metadata_destroy(md);
  std::vector<rd_kafka_ConfigResource_t*> resources;
  for (const auto& t : topics) {
    resources.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t.c_str()));
  }
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  rd_kafka_AdminOptions_set_request_timeout(options, static_cast<int>(kLookupTimeout.count()), err,
                                            sizeof err);
  rd_kafka_AdminOptions_set_broker(options, broker, err, sizeof err);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_DescribeConfigs(rk, resources.data(), resources.size(), options, queue);
  rd_kafka_event_t* event =
      rd_kafka_queue_poll(queue, static_cast<int>(kLookupTimeout.count()) + 1000);
  if (event == nullptr) {
    error = "DescribeConfigs timed out";
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    error = std::string("DescribeConfigs: ") + rd_kafka_event_error_string(event);
  } else if (const auto* result = rd_kafka_event_DescribeConfigs_result(event)) {
    std::size_t count = 0;
    const rd_kafka_ConfigResource_t** described =
        rd_kafka_DescribeConfigs_result_resources(result, &count);
    for (std::size_t i = 0; i < count; ++i) {
      const char* name = rd_kafka_ConfigResource_name(described[i]);
      if (rd_kafka_ConfigResource_error(described[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* why = rd_kafka_ConfigResource_error_string(described[i]);
        error = std::string("DescribeConfigs of ") + name + ": " +
                (why ? why : rd_kafka_err2str(rd_kafka_ConfigResource_error(described[i])));
        continue;
      }
      std::size_t entries = 0;
      const rd_kafka_ConfigEntry_t** configs =
          rd_kafka_ConfigResource_configs(described[i], &entries);
      for (std::size_t j = 0; j < entries; ++j) {
        const char* value = rd_kafka_ConfigEntry_value(configs[j]);
        if (std::string(rd_kafka_ConfigEntry_name(configs[j])) == "max.message.bytes" && value) {
          try {
            out[name] = std::stoll(value);
          } catch (const std::exception&) {
            error = std::string("max.message.bytes of ") + name + ": '" + value + "'";
          }
        }
      }
    }
  }
  if (event != nullptr) {
    rd_kafka_event_destroy(event);
  }
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(options);
  for (auto* r : resources) {
    rd_kafka_ConfigResource_destroy(r);
  }
  rd_kafka_destroy(rk);
  return out;
}

// Looks the limits up and says in the log what the destination can hold.
ProducerLimits lookUpLimits(const config::Mapping& mapping) {
  const std::string& destination = mapping.on_failure.destination_topic;
  std::vector<std::string> topics{destination};
  for (const auto& t : mapping.source.topics) {
    topics.push_back(t);
  }
  std::string error;
  auto maxima = describeMaxMessageBytes(mapping, topics, error);
  auto dest = maxima.find(destination);
  if (dest == maxima.end()) {
    log(LogLevel::kWarn, "on-failure", mapping.name, ": cannot read max.message.bytes of ",
        destination, " (", error.empty() ? "not in the answer" : error,
        "); the broker alone decides which records it accepts");
    return producerLimits(std::nullopt);
  }
  // A record as large as the source takes, plus kesm's headers, needs the headroom; only a
  // destination below the source itself is worth a warning (Kafka's defaults are equal).
  for (const auto& t : mapping.source.topics) {
    auto source = maxima.find(t);
    if (source != maxima.end() && source->second > dest->second) {
      log(LogLevel::kWarn, "on-failure", mapping.name, ": source topic ", t,
          " accepts records up to ", source->second, " bytes, the onFailure topic ", destination,
          " only up to ", dest->second,
          " (max.message.bytes): a larger record given up cannot be written there and disables "
          "the mapping; give ",
          destination, " max.message.bytes >= ", source->second + kDestinationHeadroomBytes);
    }
  }
  ProducerLimits limits = producerLimits(dest->second);
  log(LogLevel::kInfo, "on-failure", mapping.name, ": ", destination, " accepts records up to ",
      dest->second, " bytes; producer message.max.bytes ", limits.message_max_bytes,
      ", batch.size ", limits.batch_size);
  return limits;
}

class KafkaDeadLetterSink final : public DeadLetterSink {
public:
  KafkaDeadLetterSink(const config::Mapping& mapping, milliseconds timeout)
      : topic_(mapping.on_failure.destination_topic) {
    ProducerLimits limits = lookUpLimits(mapping);
    rd_kafka_conf_t* conf = clientConf(mapping, "kesm-" + mapping.name + "-on-failure");
    try {
      kafka::applySettings(conf,
                           {{"acks", "all"},
                            {"enable.idempotence", "true"},
                            {"linger.ms", "5"},
                            {"message.timeout.ms", std::to_string(timeout.count())},
                            {"message.max.bytes", std::to_string(limits.message_max_bytes)},
                            {"batch.size", std::to_string(limits.batch_size)}},
                           kafka::OnRefused::kThrow);
    } catch (const kafka::SettingError& e) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error("on-failure producer: " + e.key() + ": " + e.reason());
    }
    char err[512];
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaDeadLetterSink::onDelivery);
    rk_ = createKafkaClient(
        "the onFailure producer of mapping " + mapping.name,
        static_cast<int>(mapping.source.bootstrap_servers.size()),
        [&] { return rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err); },
        [&] { rd_kafka_conf_destroy(conf); });
    if (rk_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string("on-failure producer: ") + err);
    }
    message_max_bytes_ = limits.message_max_bytes;
    // A topic handle makes librdkafka fetch the topic's metadata now, in the background:
    // known from the start, a topic deleted later fails a write at once (unknown partition)
    // instead of after message.timeout.ms.
    rkt_ = rd_kafka_topic_new(rk_, topic_.c_str(), nullptr);
  }

  ~KafkaDeadLetterSink() override {
    rd_kafka_flush(rk_, 5000);
    rd_kafka_topic_destroy(rkt_);
    rd_kafka_destroy(rk_);
  }

  WriteResult write(const Batch& batch, const FailureInfo& info) override {
    Pending pending;
    pending.slots.reserve(batch.records.size()); // stable: each is a record's opaque
    std::string failed_at = iso8601(info.failed_at_ms);
    std::string attempts = std::to_string(info.attempts);
    std::string error_header = info.error.substr(0, kMaxErrorHeaderBytes);
    for (const auto& r : batch.records) {
      rd_kafka_headers_t* headers = rd_kafka_headers_new(r.headers.size() + 8);
      for (const auto& h : r.headers) {
        rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()),
                            h.value ? h.value->data() : nullptr, h.value ? h.value->size() : 0);
      }
      auto add = [&](const char* name, const std::string& value) {
        rd_kafka_header_add(headers, name, -1, value.data(), static_cast<ssize_t>(value.size()));
      };
      add(kHeaderMapping, info.mapping);
      add(kHeaderTopic, r.topic);
      add(kHeaderPartition, std::to_string(r.partition.value()));
      add(kHeaderOffset, std::to_string(r.offset.value()));
      add(kHeaderTimestamp, std::to_string(r.timestamp_ms));
      add(kHeaderAttempts, attempts);
      add(kHeaderError, error_header);
      add(kHeaderFailedAt, failed_at);
      pending.slots.push_back(Slot{&pending, &r});
      {
        std::lock_guard lock(pending.mutex);
        pending.remaining++;
      }
      const void* key = r.key ? r.key->data() : nullptr;
      std::size_t key_size = r.key ? r.key->size() : 0;
      void* value = r.value ? const_cast<char*>(r.value->data()) : nullptr; // copied (F_COPY)
      std::size_t value_size = r.value ? r.value->size() : 0;
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_, RD_KAFKA_V_RKT(rkt_), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(key, key_size), RD_KAFKA_V_VALUE(value, value_size),
          RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(&pending.slots.back()), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(headers); // not taken over on failure
        std::lock_guard lock(pending.mutex);
        pending.remaining--;
        pending.fail(err, &r);
        break;
      }
    }
    // Serve delivery reports until every record of this call is settled: message.timeout.ms
    // bounds each record, so this ends, and `pending` outlives every report that names it.
    while (true) {
      {
        std::lock_guard lock(pending.mutex);
        if (pending.remaining == 0) {
          break;
        }
      }
      rd_kafka_poll(rk_, 50);
    }
    std::lock_guard lock(pending.mutex);
    WriteResult result;
    if (pending.first_error == RD_KAFKA_RESP_ERR_NO_ERROR) {
      return result;
    }
    result.status = isRefusedByDestination(pending.first_error) ? WriteStatus::kRefused
                                                                : WriteStatus::kRetriable;
    result.error = describeFailure(pending.first_error, *pending.failed);
    return result;
  }

private:
  std::string describeFailure(rd_kafka_resp_err_t err, const Record& r) const {
    std::string out = std::string(rd_kafka_err2str(err)) + " writing " + r.topic + "-" +
                      std::to_string(r.partition.value()) + "@" + std::to_string(r.offset.value()) +
                      " (" + std::to_string(recordBytes(r)) + " bytes of key, value and headers)";
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char why[512] = "";
      rd_kafka_fatal_error(rk_, why, sizeof why);
      out += ": " + std::string(why);
    } else if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
               err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE) {
      out += ": larger than " + topic_ + " accepts (max.message.bytes; producer limit " +
             std::to_string(message_max_bytes_) + ")";
    } else if (err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
               err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
               err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
      out += ": " + topic_ + " no longer exists (deleted?)";
    }
    return out;
  }

  static void onDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
    auto* slot = static_cast<Slot*>(msg->_private);
    std::lock_guard lock(slot->pending->mutex);
    slot->pending->remaining--;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      slot->pending->fail(msg->err, slot->record);
    }
  }

  std::string topic_;
  std::int64_t message_max_bytes_ = 0;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_topic_t* rkt_ = nullptr;
};

} // namespace

bool isRefusedByDestination(int librdkafka_error) {
  switch (static_cast<rd_kafka_resp_err_t>(librdkafka_error)) {
  case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_INVALID_RECORD: // e.g. no key for a compacted topic
  case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
  case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART: // only after librdkafka's own retries
  case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
  case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: // the topic was deleted
  case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
  case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
  case RD_KAFKA_RESP_ERR__AUTHENTICATION:
  case RD_KAFKA_RESP_ERR__FATAL: // the idempotent producer can write nothing more
    return true;
  default:
    return false;
  }
}

ProducerLimits producerLimits(std::optional<std::int64_t> topic_max) {
  ProducerLimits limits;
  if (!topic_max || *topic_max <= 0) {
    limits.message_max_bytes = kUnknownDestinationMessageMax;
    limits.batch_size = kDefaultBatchSize;
    return limits;
  }
  limits.message_max_bytes =
      std::clamp(*topic_max + kClientSlackBytes, kMinMessageMaxBytes, kMaxMessageMaxBytes);
  // A batch the broker refuses as a whole would fail records it accepts one by one.
  limits.batch_size = std::clamp<std::int64_t>(*topic_max, 1, kDefaultBatchSize);
  return limits;
}

std::shared_ptr<DeadLetterSink> makeKafkaDeadLetterSink(const config::Mapping& mapping,
                                                        milliseconds timeout) {
  return std::make_shared<KafkaDeadLetterSink>(mapping, timeout);
}

} // namespace kesm::poller
