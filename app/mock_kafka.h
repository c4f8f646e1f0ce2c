#pragma once

// librdkafka's built-in mock Kafka cluster (the real Kafka protocol on loopback sockets,
// no JVM) and a plain producer. Used by the embedded demo, the tests and the benchmarks.

#include "common/types.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
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

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A librdkafka producer (acks=all, idempotent). Thread-safe.
class Producer {
public:
  explicit Producer(const std::string& bootstrap_servers);
  ~Producer(); // flushes, bounded
  void produce(const std::string& topic, std::int32_t partition,
               const std::optional<std::string>& key, const std::optional<std::string>& value,
               const std::vector<Header>& headers = {});
  // Waits for every produced record to be acknowledged. Throws on a delivery failure.
  void flush(std::chrono::milliseconds timeout);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace kesm::app
