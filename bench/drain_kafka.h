#pragma once

// bench/drain's Kafka side: the broker (a real Apache Kafka or librdkafka's mock cluster), the
// load producer, and the reader of the group's committed offsets.

#include "app/mock_kafka.h"
#include "bench/drain_options.h"
#include "bench/drain_util.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <librdkafka/rdkafka.h>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace kesm::bench::drain {

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using RdKafka = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;

// A client with bootstrap.servers, log_level 3 and `settings`; `prepare` (may be empty) sets
// callbacks on the conf before the client is made. Throws on a bad setting.
RdKafka newClient(rd_kafka_type_t type, const std::string& bootstrap,
                  const std::vector<std::pair<std::string, std::string>>& settings,
                  const std::function<void(rd_kafka_conf_t*)>& prepare = {});

// Low and high watermark per partition; nullopt when the topic does not exist.
std::optional<Watermarks> watermarks(const std::string& bootstrap, const std::string& topic);

// A fast producer for the load: acks=1, not idempotent, no compression, 1 MB batches with
// up to 50 ms linger (or none for the latency scenario, so a record's CreateTime is the
// moment it was sent). The value buffer is not copied: it must outlive flush(). One thread.
class LoadProducer {
public:
  LoadProducer(const std::string& bootstrap, bool low_latency);

  void produce(const std::string& topic, int partition, const char* value, std::size_t len);

  void poll() { rd_kafka_poll(rk_.get(), 0); }

  void flush();

private:
  static void onDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque);

  RdKafka rk_;
  std::atomic<std::int64_t> failures_{0};
  std::string last_error_;
  int since_poll_ = 0;
};

// The group's committed offsets, read with OffsetFetch by a client that has kesm's group.id
// but never subscribes, so it never joins the group. Owned by the sampler thread.
class CommittedReader {
public:
  CommittedReader(const std::string& bootstrap, const std::string& group)
      : rk_(newClient(RD_KAFKA_CONSUMER, bootstrap,
                      {{"group.id", group}, {"enable.auto.commit", "false"}})) {}

  // Sum over partitions of high - committed (a partition without a commit counts from low);
  // nullopt when the request failed.
  std::optional<std::int64_t> lag(const std::string& topic, const Watermarks& wm);

private:
  RdKafka rk_;
};

// The broker: tests/e2e/kafka.sh's real Apache Kafka, or librdkafka's mock cluster here.
class Broker {
public:
  Broker(Backend backend, const Options& o);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  const std::string& bootstrap() const { return bootstrap_; }
  bool isMock() const { return backend_ == Backend::kMock; }

  // The JVM's pid, for its CPU time; 0 for the mock (it runs in this process).
  pid_t pid() const;

  void createTopic(const std::string& topic, int partitions);

private:
  // tests/e2e/kafka.sh in the source tree.
  static std::string kafkaSh();

  Backend backend_;
  std::string dir_;
  std::string bootstrap_;
  bool started_ = false;
  std::unique_ptr<kesm::app::MockKafkaCluster> mock_;
};

// Records in the topic: the sum of high - low.
std::int64_t sumRecords(const Watermarks& wm);

// `bytes` pseudo-random bytes, the same every run.
std::string randomValue(int bytes);

// Produces `count` records round-robin over the partitions as fast as the producer goes.
double produceBurst(const std::string& bootstrap, const std::string& topic, int partitions,
                    std::int64_t count, const std::string& value);

} // namespace kesm::bench::drain
