#include "bench/drain_kafka.h"

#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace kesm::bench::drain {

using namespace std::chrono_literals;

RdKafka newClient(rd_kafka_type_t type, const std::string& bootstrap,
                  const std::vector<std::pair<std::string, std::string>>& settings,
                  const std::function<void(rd_kafka_conf_t*)>& prepare) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& key, const std::string& value) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error("librdkafka " + key + ": " + err);
    }
  };
  set("bootstrap.servers", bootstrap);
  set("log_level", "3");
  for (const auto& [key, value] : settings) {
    set(key, value);
  }
  if (prepare) {
    prepare(conf);
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("rd_kafka_new: ") + err);
  }
  return RdKafka(rk);
}

namespace {

// CreateTopics with the Admin API (replication factor 1), then waits for every leader.
void createKafkaTopic(const std::string& bootstrap, const std::string& topic, int partitions) {
  auto rk = newClient(RD_KAFKA_PRODUCER, bootstrap, {});
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof err);
  if (nt == nullptr) {
    throw std::runtime_error(std::string("NewTopic: ") + err);
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk.get());
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, 30000, err, sizeof err);
  rd_kafka_CreateTopics(rk.get(), &nt, 1, options, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 60000);
  std::string error;
  if (ev == nullptr) {
    error = "no answer within 60 s";
  } else if (rd_kafka_event_error(ev)) {
    error = rd_kafka_event_error_string(ev);
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      if (rd_kafka_topic_result_error(results[i])) {
        error = rd_kafka_topic_result_error_string(results[i]);
      }
    }
  }
  if (ev != nullptr) {
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(queue);
  if (!error.empty()) {
    throw std::runtime_error("create topic " + topic + ": " + error);
  }
  auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline) {
    rd_kafka_topic_t* t = rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    bool ok = rd_kafka_metadata(rk.get(), 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topics[0].partition_cnt == partitions;
    for (int i = 0; ok && i < partitions; ++i) {
      ok = md->topics[0].partitions[i].leader >= 0;
    }
    if (md != nullptr) {
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(t);
    if (ok) {
      return;
    }
    std::this_thread::sleep_for(200ms);
  }
  throw std::runtime_error("topic " + topic + " has no leaders after 30 s");
}

} // namespace

std::optional<Watermarks> watermarks(const std::string& bootstrap, const std::string& topic) {
  auto rk = newClient(RD_KAFKA_PRODUCER, bootstrap, {});
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk.get(), 0, t, &md, 10000);
  rd_kafka_topic_destroy(t);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(std::string("metadata: ") + rd_kafka_err2str(err));
  }
  int partitions = 0;
  bool exists = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR;
  if (exists) {
    partitions = md->topics[0].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  if (!exists) {
    return std::nullopt;
  }
  Watermarks out;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    // Right after CreateTopics a partition may still answer NOT_LEADER: retry a while.
    auto deadline = Clock::now() + 15s;
    while ((err = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &low, &high,
                                                   10000)) != RD_KAFKA_RESP_ERR_NO_ERROR &&
           Clock::now() < deadline) {
      std::this_thread::sleep_for(200ms);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error(std::string("watermarks: ") + rd_kafka_err2str(err));
    }
    out.emplace_back(low, high);
  }
  return out;
}

LoadProducer::LoadProducer(const std::string& bootstrap, bool low_latency)
    : rk_(newClient(RD_KAFKA_PRODUCER, bootstrap,
                    {{"acks", "1"},
                     {"enable.idempotence", "false"},
                     {"compression.codec", "none"},
                     {"linger.ms", low_latency ? "0" : "50"},
                     {"batch.num.messages", "10000"},
                     {"batch.size", "1000000"},
                     {"queue.buffering.max.messages", "1000000"},
                     {"queue.buffering.max.kbytes", "1048576"},
                     {"log.connection.close", "false"},
                     // Nagle would hold a small produce request behind an unacknowledged
                     // one: delay measured as kesm's in the latency scenario.
                     {"socket.nagle.disable", low_latency ? "true" : "false"}},
                    [this](rd_kafka_conf_t* conf) {
                      rd_kafka_conf_set_dr_msg_cb(conf, &LoadProducer::onDelivery);
                      rd_kafka_conf_set_opaque(conf, this);
                    })) {}

void LoadProducer::produce(const std::string& topic, int partition, const char* value,
                           std::size_t len) {
  while (true) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_VALUE(const_cast<char*>(value), len), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk_.get(), 5);
      continue;
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(err));
    }
    break;
  }
  if (++since_poll_ >= 1000) {
    rd_kafka_poll(rk_.get(), 0);
    since_poll_ = 0;
  }
}

void LoadProducer::flush() {
  if (rd_kafka_flush(rk_.get(), 300000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("producer flush: records still unacknowledged after 300 s");
  }
  if (failures_ > 0) {
    throw std::runtime_error(std::to_string(failures_.load()) +
                             " records failed to produce: " + last_error_);
  }
}

void LoadProducer::onDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    auto* self = static_cast<LoadProducer*>(opaque);
    if (self->failures_++ == 0) {
      self->last_error_ = rd_kafka_err2str(m->err);
    }
  }
}

std::optional<std::int64_t> CommittedReader::lag(const std::string& topic, const Watermarks& wm) {
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(wm.size()));
  for (std::size_t p = 0; p < wm.size(); ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), static_cast<std::int32_t>(p));
  }
  rd_kafka_resp_err_t err = rd_kafka_committed(rk_.get(), list, 5000);
  std::optional<std::int64_t> sum;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    sum = 0;
    for (int i = 0; i < list->cnt; ++i) {
      const auto& [low, high] = wm[static_cast<std::size_t>(list->elems[i].partition)];
      std::int64_t committed = list->elems[i].offset < 0 ? low : list->elems[i].offset;
      *sum += std::max<std::int64_t>(0, high - std::max(committed, low));
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  return sum;
}

std::string Broker::kafkaSh() { return std::string(KESM_SOURCE_DIR) + "/tests/e2e/kafka.sh"; }

Broker::Broker(Backend backend, const Options& o) : backend_(backend), dir_(o.broker_dir) {
  if (backend_ == Backend::kMock) {
    mock_ = std::make_unique<kesm::app::MockKafkaCluster>();
    bootstrap_ = mock_->bootstrapServers();
    return;
  }
  int status = 0;
  std::string out = runCommand(kafkaSh() + " status --dir '" + dir_ + "' 2>/dev/null", status);
  if (status == 0) {
    std::istringstream words(out);
    std::string running;
    words >> running >> bootstrap_;
    note("using the broker already running in ", dir_, " (", bootstrap_, "); it is left running");
  } else {
    note("starting a Kafka broker in ", dir_, " (the first start fetches the jars with Maven)");
    out = runCommand(kafkaSh() + " start --dir '" + dir_ + "'", status);
    if (status != 0) {
      throw std::runtime_error("tests/e2e/kafka.sh start --dir " + dir_ + " failed");
    }
    bootstrap_ = lastLine(out);
    started_ = !o.keep_broker;
  }
}

Broker::~Broker() {
  if (started_) {
    int status = 0;
    runCommand(kafkaSh() + " stop --dir '" + dir_ + "' 2>&1", status);
  }
}

pid_t Broker::pid() const {
  if (backend_ == Backend::kMock) {
    return 0;
  }
  std::ifstream in(dir_ + "/kafka.pid");
  pid_t pid = 0;
  in >> pid;
  return pid;
}

void Broker::createTopic(const std::string& topic, int partitions) {
  if (mock_) {
    mock_->createTopic(topic, partitions);
  } else {
    createKafkaTopic(bootstrap_, topic, partitions);
  }
}

std::int64_t sumRecords(const Watermarks& wm) {
  std::int64_t sum = 0;
  for (const auto& [low, high] : wm) {
    sum += high - low;
  }
  return sum;
}

std::string randomValue(int bytes) {
  std::string value(static_cast<std::size_t>(bytes), '\0');
  std::mt19937 rng(42);
  for (auto& c : value) {
    c = static_cast<char>(rng() & 0xff);
  }
  return value;
}

// Produces `count` records round-robin over the partitions as fast as the producer goes.
double produceBurst(const std::string& bootstrap, const std::string& topic, int partitions,
                    std::int64_t count, const std::string& value) {
  auto t0 = Clock::now();
  LoadProducer producer(bootstrap, false);
  for (std::int64_t i = 0; i < count && !g_interrupted; ++i) {
    producer.produce(topic, static_cast<int>(i % partitions), value.data(), value.size());
  }
  producer.flush();
  return secondsSince(t0, Clock::now());
}

} // namespace kesm::bench::drain
