// The onFailure producer's size limits and which write errors are for good
// (poller/dead_letter.h): pure decisions.

#include "poller/dead_letter.h"

#include <catch2/catch.hpp>
#include <librdkafka/rdkafka.h>

using namespace kesm::poller;

TEST_CASE("onFailure producer limits follow the destination topic's max.message.bytes", "[unit]") {
  struct Row {
    const char* name;
    std::optional<std::int64_t> topic_max;
    std::int64_t message_max_bytes;
    std::int64_t batch_size;
  };
  auto row = GENERATE(
      // Kafka's default: a record of 1,048,000 bytes passes the client (librdkafka's own
      // default, 1,000,000, refused it), and batches stay at librdkafka's 1,000,000.
      Row{"broker default", 1048588, 1048588 + 65536, 1000000},
      // A small topic limit: batches no larger than the topic takes.
      Row{"small topic", 20000, 20000 + 65536, 20000},
      Row{"large topic", 10485760, 10485760 + 65536, 1000000},
      // Unknown: the client lets the broker decide.
      Row{"unknown", std::nullopt, kUnknownDestinationMessageMax, 1000000},
      Row{"nonsense answer", 0, kUnknownDestinationMessageMax, 1000000},
      Row{"beyond librdkafka's range", 2000000000, 1000000000, 1000000});
  INFO(row.name);
  auto limits = producerLimits(row.topic_max);
  CHECK(limits.message_max_bytes == row.message_max_bytes);
  CHECK(limits.batch_size == row.batch_size);
}

TEST_CASE("onFailure write errors: refusals for good and errors a retry can fix", "[unit]") {
  for (auto err :
       {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
        RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_INVALID_RECORD, RD_KAFKA_RESP_ERR__FATAL}) {
    INFO(rd_kafka_err2str(err));
    CHECK(isRefusedByDestination(err));
  }
  for (auto err : {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                   RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR__QUEUE_FULL,
                   RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT}) {
    INFO(rd_kafka_err2str(err));
    CHECK_FALSE(isRefusedByDestination(err));
  }
}
