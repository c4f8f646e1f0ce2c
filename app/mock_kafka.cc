#include "app/mock_kafka.h"

#include <librdkafka/rdkafka.h>
// rdkafka_mock.h needs rdkafka.h first.
#include <atomic>
#include <librdkafka/rdkafka_mock.h>
#include <stdexcept>
#include <thread>

namespace kesm::app {

namespace {
void setOrThrow(rd_kafka_conf_t* conf, const char* key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key, value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    throw std::runtime_error(std::string("librdkafka ") + key + ": " + err);
  }
}
} // namespace

struct MockKafkaCluster::Impl {
  rd_kafka_t* rk = nullptr;
  rd_kafka_mock_cluster_t* cluster = nullptr;
};

MockKafkaCluster::MockKafkaCluster(int brokers) : impl_(std::make_unique<Impl>()) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  setOrThrow(conf, "log_level", "3");
  char err[512];
  impl_->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (impl_->rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("mock cluster handle: ") + err);
  }
  impl_->cluster = rd_kafka_mock_cluster_new(impl_->rk, brokers);
  if (impl_->cluster == nullptr) {
    rd_kafka_destroy(impl_->rk);
    throw std::runtime_error("cannot start librdkafka's mock cluster");
  }
}

MockKafkaCluster::~MockKafkaCluster() {
  rd_kafka_mock_cluster_destroy(impl_->cluster);
  rd_kafka_destroy(impl_->rk);
}

std::string MockKafkaCluster::bootstrapServers() const {
  return rd_kafka_mock_cluster_bootstraps(impl_->cluster);
}

void MockKafkaCluster::createTopic(const std::string& topic, int partitions) {
  rd_kafka_resp_err_t err =
      rd_kafka_mock_topic_create(impl_->cluster, topic.c_str(), partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("mock topic " + topic + ": " + rd_kafka_err2str(err));
  }
}

void MockKafkaCluster::failNextRequests(std::int16_t api_key, const std::vector<int>& errors) {
  std::vector<rd_kafka_resp_err_t> codes;
  for (int e : errors) {
    codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  }
  rd_kafka_mock_push_request_errors_array(impl_->cluster, api_key, codes.size(), codes.data());
}

struct Producer::Impl {
  rd_kafka_t* rk = nullptr;
  std::atomic<int> failures{0};
  std::string last_error;

  static void onDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      auto* self = static_cast<Impl*>(opaque);
      self->failures++;
      self->last_error = rd_kafka_err2str(m->err);
    }
  }
};

Producer::Producer(const std::string& bootstrap_servers,
                   const std::vector<std::pair<std::string, std::string>>& settings)
    : impl_(std::make_unique<Impl>()) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  try {
    setOrThrow(conf, "bootstrap.servers", bootstrap_servers);
    setOrThrow(conf, "enable.idempotence", "true");
    setOrThrow(conf, "linger.ms", "5");
    setOrThrow(conf, "queue.buffering.max.messages", "1000000");
    setOrThrow(conf, "log.connection.close", "false");
    for (const auto& [key, value] : settings) {
      setOrThrow(conf, key.c_str(), value);
    }
  } catch (...) {
    rd_kafka_conf_destroy(conf);
    throw;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, &Impl::onDelivery);
  rd_kafka_conf_set_opaque(conf, impl_.get());
  char err[512];
  impl_->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (impl_->rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("producer: ") + err);
  }
}

Producer::~Producer() {
  rd_kafka_flush(impl_->rk, 10000);
  rd_kafka_destroy(impl_->rk);
}

void Producer::produce(const std::string& topic, std::int32_t partition,
                       const std::optional<std::string>& key,
                       const std::optional<std::string>& value, const std::vector<Header>& headers,
                       std::int64_t timestamp_ms) {
  rd_kafka_headers_t* hdrs = nullptr;
  if (!headers.empty()) {
    hdrs = rd_kafka_headers_new(headers.size());
    for (const auto& h : headers) {
      rd_kafka_header_add(hdrs, h.key.data(), static_cast<ssize_t>(h.key.size()),
                          h.value ? h.value->data() : nullptr,
                          h.value ? static_cast<ssize_t>(h.value->size()) : 0);
    }
  }
  const void* key_ptr = key ? key->data() : nullptr;
  std::size_t key_len = key ? key->size() : 0;
  void* value_ptr = value ? const_cast<char*>(value->data()) : nullptr;
  std::size_t value_len = value ? value->size() : 0;
  while (true) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        impl_->rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key_ptr, key_len),
        RD_KAFKA_V_VALUE(value_ptr, value_len), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_END); // 0: now
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(impl_->rk, 10); // local queue full: wait for acknowledgements
      continue;
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (hdrs != nullptr) {
        rd_kafka_headers_destroy(hdrs);
      }
      throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(err));
    }
    break; // the message now owns hdrs
  }
  rd_kafka_poll(impl_->rk, 0);
}

void Producer::flush(std::chrono::milliseconds timeout) {
  rd_kafka_resp_err_t err = rd_kafka_flush(impl_->rk, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("flush timed out with records still unacknowledged");
  }
  if (impl_->failures.load() > 0) {
    throw std::runtime_error("produce failed: " + impl_->last_error);
  }
}

} // namespace kesm::app
