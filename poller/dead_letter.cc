#include "poller/dead_letter.h"

#include "common/log.h"
#include "common/resources.h"

#include <condition_variable>
#include <librdkafka/rdkafka.h>
#include <mutex>
#include <stdexcept>

namespace kesm::poller {

namespace {

// Delivery reports of one write() call.
struct Pending {
  std::mutex mutex;
  int remaining = 0;
  std::string first_error;
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

class KafkaDeadLetterSink final : public DeadLetterSink {
public:
  KafkaDeadLetterSink(const config::Mapping& mapping, std::chrono::milliseconds timeout)
      : topic_(mapping.on_failure.destination_topic) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    auto set = [&](const std::string& k, const std::string& v) {
      // The user's map may hold consumer-only settings; they do not apply to a producer.
      rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err);
    };
    for (const auto& [k, v] : config::kafkaClientSettings(mapping.source)) {
      set(k, v);
    }
    set("client.id", "kesm-" + mapping.name + "-on-failure");
    set("acks", "all");
    set("enable.idempotence", "true");
    set("linger.ms", "5");
    set("message.timeout.ms", std::to_string(timeout.count()));
    set("allow.auto.create.topics", "false");
    set("log.connection.close", "false");
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaDeadLetterSink::onDelivery);
    rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t*, int level, const char* fac,
                                      const char* buf) {
      log(level <= 4 ? LogLevel::kWarn : LogLevel::kDebug, "on-failure", "kafka ", fac, ": ", buf);
    });
    {
      // librdkafka aborts when it cannot start a thread of a new client: check for room first.
      std::lock_guard creating(kafkaClientCreation());
      try {
        ensureHeadroom(
            "the onFailure producer of mapping " + mapping.name,
            kafkaClientThreads(static_cast<int>(mapping.source.bootstrap_servers.size())), 0);
      } catch (const ResourceError&) {
        rd_kafka_conf_destroy(conf);
        throw;
      }
      rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    }
    if (rk_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string("on-failure producer: ") + err);
    }
  }

  ~KafkaDeadLetterSink() override {
    rd_kafka_flush(rk_, 5000);
    rd_kafka_destroy(rk_);
  }

  bool write(const Batch& batch, const FailureInfo& info, std::string& error) override {
    Pending pending;
    std::string failed_at = iso8601(info.failed_at_ms);
    std::string attempts = std::to_string(info.attempts);
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
      add(kHeaderError, info.error);
      add(kHeaderFailedAt, failed_at);
      {
        std::lock_guard lock(pending.mutex);
        pending.remaining++;
      }
      const void* key = r.key ? r.key->data() : nullptr;
      std::size_t key_size = r.key ? r.key->size() : 0;
      void* value = r.value ? const_cast<char*>(r.value->data()) : nullptr; // copied (F_COPY)
      std::size_t value_size = r.value ? r.value->size() : 0;
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_, RD_KAFKA_V_TOPIC(topic_.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(key, key_size), RD_KAFKA_V_VALUE(value, value_size),
          RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(&pending), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(headers); // not taken over on failure
        std::lock_guard lock(pending.mutex);
        pending.remaining--;
        if (pending.first_error.empty()) {
          pending.first_error = rd_kafka_err2str(err);
        }
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
    error = pending.first_error;
    return error.empty();
  }

private:
  static void onDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
    auto* pending = static_cast<Pending*>(msg->_private);
    std::lock_guard lock(pending->mutex);
    pending->remaining--;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR && pending->first_error.empty()) {
      pending->first_error = rd_kafka_err2str(msg->err);
    }
  }

  std::string topic_;
  rd_kafka_t* rk_ = nullptr;
};

} // namespace

std::shared_ptr<DeadLetterSink> makeKafkaDeadLetterSink(const config::Mapping& mapping,
                                                        std::chrono::milliseconds timeout) {
  return std::make_shared<KafkaDeadLetterSink>(mapping, timeout);
}

} // namespace kesm::poller
