#pragma once

// librdkafka's built-in mock Kafka cluster (the real Kafka protocol on loopback sockets,
// no JVM) and a plain producer. Used by the embedded demo, the tests and the benchmarks.

#include "common/types.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kesm::app {

// Owns an in-process mock cluster; reachable by other processes on loopback.
class MockKafkaCluster {
public:
  explicit MockKafkaCluster(int brokers = 1);
  ~MockKafkaCluster();
  MockKafkaCluster(const MockKafkaCluster&) = delete;
  MockKafkaCluster& operator=(const MockKafkaCluster&) = delete;

  std::string bootstrapServers() const;
  void createTopic(const std::string& topic, int partitions);
  // The next requests of this Kafka API (e.g. 9 = OffsetFetch) fail with these error codes,
  // one per request, in order.
  void failNextRequests(std::int16_t api_key, const std::vector<int>& errors);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A librdkafka producer (acks=all, idempotent). Thread-safe.
class Producer {
public:
  // `settings` are librdkafka properties applied after the defaults, e.g.
  // {"message.max.bytes", "2000000"} to produce records above librdkafka's 1,000,000 bytes.
  explicit Producer(const std::string& bootstrap_servers,
                    const std::vector<std::pair<std::string, std::string>>& settings = {});
  ~Producer(); // flushes, bounded
  void produce(const std::string& topic, std::int32_t partition,
               const std::optional<std::string>& key, const std::optional<std::string>& value,
               const std::vector<Header>& headers = {}, std::int64_t timestamp_ms = 0);
  // Waits for every produced record to be acknowledged. Throws on a delivery failure.
  void flush(std::chrono::milliseconds timeout);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace kesm::app
