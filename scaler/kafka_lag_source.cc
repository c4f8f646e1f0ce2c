#include "common/log.h"
#include "common/resources.h"
#include "kafka/rdkafka_adapter.h"
#include "scaler/lag_source.h"

#include <algorithm>
#include <librdkafka/rdkafka.h>
#include <limits>
#include <map>
#include <stdexcept>
#include <vector>

namespace kesm::scaler {

namespace {

class KafkaLagSource final : public LagSource {
public:
  KafkaLagSource(const config::Mapping& mapping, std::chrono::milliseconds timeout,
                 std::shared_ptr<const PartitionsAtStart> at_start)
      : mapping_(mapping), timeout_ms_(static_cast<int>(timeout.count())),
        at_start_(std::move(at_start)) {
    // Security settings must reach this client too. A setting of the user's map this client
    // refuses is left out: the pollers' check reports it.
    rd_kafka_conf_t* conf =
        kafka::newConf(kafka::clientSettings(mapping.source), kafka::OnRefused::kSkip);
    kafka::applySettings(conf,
                         {{"client.id", "kesm-" + mapping.name + "-lag"},
                          // A consumer with a group of its own that it never joins: librdkafka
                          // 2.0.2 hands an OffsetFetch answered NOT_COORDINATOR to the client's
                          // consumer group, and crashes on a client without one (a producer, as
                          // this was), which a broker restart triggers.
                          {"group.id", mapping.source.consumer_group_id + ".kesm-lag-probe"},
                          {"enable.auto.commit", "false"},
                          {"allow.auto.create.topics", "false"},
                          {"log.connection.close", "false"},
                          {"log_level", "3"}},
                         kafka::OnRefused::kSkip);
    char err[512];
    rd_kafka_conf_set_log_cb(
        conf, [](const rd_kafka_t*, int level, const char* fac, const char* buf) {
          log(level <= 4 ? LogLevel::kWarn : LogLevel::kDebug, "lag", "kafka ", fac, ": ", buf);
        });
    rk_ = createKafkaClient(
        "the lag probe client of mapping " + mapping.name,
        static_cast<int>(mapping.source.bootstrap_servers.size()),
        [&] { return rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err); },
        [&] { rd_kafka_conf_destroy(conf); });
    if (rk_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string("lag probe client: ") + err);
    }
    queue_ = rd_kafka_queue_new(rk_);
  }

  ~KafkaLagSource() override {
    rd_kafka_queue_destroy(queue_);
    // Never subscribed: nothing to leave or commit, so no consumer close (which waits on Kafka).
    rd_kafka_destroy_flags(rk_, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  }

  ProbeResult probe() override {
    ProbeResult out;
    LagSample sample;
    sample.at = std::chrono::steady_clock::now();
    std::vector<TopicPartition> all;
    for (const auto& topic : mapping_.source.topics) {
      int partitions = partitionCount(topic, out.error, out.fatal);
      if (partitions < 0) {
        return out;
      }
      for (int p = 0; p < partitions; ++p) {
        all.push_back(TopicPartition{topic, Partition{p}});
      }
    }
    std::map<TopicPartition, std::int64_t> committed;
    if (!fetchCommitted(all, committed, out.error)) {
      return out;
    }
    // AT_TIMESTAMP: a partition the group never committed starts at the first offset at or
    // after the timestamp; only what follows it is lag.
    std::map<TopicPartition, std::int64_t> start_at;
    if (mapping_.source.starting_position == config::StartingPosition::kAtTimestamp &&
        !startOffsets(all, committed, start_at, out.error)) {
      return out;
    }
    for (const auto& tp : all) {
      PartitionLag pl;
      pl.tp = tp;
      rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
          rk_, tp.topic.c_str(), tp.partition.value(), &pl.low, &pl.high, timeout_ms_);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        out.error = "watermarks of " + tp.topic + "-" + std::to_string(tp.partition.value()) +
                    ": " + rd_kafka_err2str(err);
        return out;
      }
      auto it = committed.find(pl.tp);
      if (it != committed.end()) {
        pl.committed = it->second;
      }
      auto origin = at_start_ && at_start_->addedSince(pl.tp) ? PartitionOrigin::kAddedSince
                                                              : PartitionOrigin::kAtStart;
      pl.lag =
          partitionLag(pl.low, pl.high, pl.committed, mapping_.source.starting_position, origin);
      if (auto start = start_at.find(pl.tp); !pl.committed && start != start_at.end()) {
        pl.lag = std::max<std::int64_t>(0, pl.high - std::max(start->second, pl.low));
      }
      sample.total += pl.lag;
      sample.high_sum += pl.high;
      sample.max = std::max(sample.max, pl.lag);
      sample.lagging_partitions += pl.lag > 0 ? 1 : 0;
      sample.partitions.push_back(std::move(pl));
    }
    out.sample = std::move(sample);
    return out;
  }

private:
  int partitionCount(const std::string& topic, std::string& error, bool& fatal) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 0, rkt, &md, timeout_ms_);
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      error = "metadata of " + topic + ": " + rd_kafka_err2str(err);
      fatal = kafka::isAccessRefused(err);
      return -1;
    }
    int count = -1;
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (topic == md->topics[i].topic) {
        rd_kafka_resp_err_t terr = md->topics[i].err;
        if (terr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
          error = "topic " + topic + " does not exist";
          fatal = true;
        } else if (terr != RD_KAFKA_RESP_ERR_NO_ERROR) {
          error = "topic " + topic + ": " + rd_kafka_err2str(terr);
          fatal = kafka::isAccessRefused(terr);
        } else {
          count = md->topics[i].partition_cnt;
        }
      }
    }
    if (count < 0 && error.empty()) {
      error = "topic " + topic + " not in metadata";
    }
    rd_kafka_metadata_destroy(md);
    return count;
  }

  bool startOffsets(const std::vector<TopicPartition>& all,
                    const std::map<TopicPartition, std::int64_t>& committed,
                    std::map<TopicPartition, std::int64_t>& start_at, std::string& error) {
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(all.size()));
    for (const auto& tp : all) {
      if (!committed.count(tp)) {
        rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition.value())->offset =
            mapping_.source.starting_position_timestamp_ms;
      }
    }
    bool ok = true;
    if (list->cnt > 0) {
      rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk_, list, timeout_ms_);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error = std::string("offsets for the starting timestamp: ") + rd_kafka_err2str(err);
        ok = false;
      }
      for (int i = 0; ok && i < list->cnt; ++i) {
        const auto& e = list->elems[i];
        if (e.err == RD_KAFKA_RESP_ERR_NO_ERROR && e.offset >= 0) {
          start_at[TopicPartition{e.topic, Partition{e.partition}}] = e.offset;
        } else if (e.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          // No record at or after the timestamp: the consumer starts at the end.
          start_at[TopicPartition{e.topic, Partition{e.partition}}] =
              std::numeric_limits<std::int64_t>::max();
        }
      }
    }
    rd_kafka_topic_partition_list_destroy(list);
    return ok;
  }

  // Partitions are named explicitly: "all partitions of the group" (a null list) is not
  // answered by every broker (librdkafka's mock returns nothing for it).
  bool fetchCommitted(const std::vector<TopicPartition>& all,
                      std::map<TopicPartition, std::int64_t>& committed, std::string& error) {
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(all.size()));
    for (const auto& tp : all) {
      rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition.value());
    }
    rd_kafka_ListConsumerGroupOffsets_t* request =
        rd_kafka_ListConsumerGroupOffsets_new(mapping_.source.consumer_group_id.c_str(), list);
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_AdminOptions_t* options =
        rd_kafka_AdminOptions_new(rk_, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    char err[512];
    rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms_, err, sizeof err);
    rd_kafka_ListConsumerGroupOffsets(rk_, &request, 1, options, queue_);
    rd_kafka_ListConsumerGroupOffsets_destroy(request);
    rd_kafka_AdminOptions_destroy(options);

    rd_kafka_event_t* event = rd_kafka_queue_poll(queue_, timeout_ms_ + 1000);
    if (event == nullptr) {
      error = "ListConsumerGroupOffsets timed out";
      return false;
    }
    bool ok = true;
    if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      error = std::string("ListConsumerGroupOffsets: ") + rd_kafka_event_error_string(event);
      ok = false;
    } else if (const auto* result = rd_kafka_event_ListConsumerGroupOffsets_result(event)) {
      size_t count = 0;
      const rd_kafka_group_result_t** groups =
          rd_kafka_ListConsumerGroupOffsets_result_groups(result, &count);
      for (size_t g = 0; g < count && ok; ++g) {
        if (const rd_kafka_error_t* gerr = rd_kafka_group_result_error(groups[g])) {
          error = std::string("ListConsumerGroupOffsets: ") + rd_kafka_error_string(gerr);
          ok = false;
          break;
        }
        const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(groups[g]);
        for (int i = 0; parts != nullptr && i < parts->cnt; ++i) {
          const auto& e = parts->elems[i];
          if (e.err == RD_KAFKA_RESP_ERR_NO_ERROR && e.offset >= 0) {
            committed[TopicPartition{e.topic, Partition{e.partition}}] = e.offset;
          }
        }
      }
    }
    rd_kafka_event_destroy(event);
    return ok;
  }

  config::Mapping mapping_;
  int timeout_ms_;
  std::shared_ptr<const PartitionsAtStart> at_start_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;
};

} // namespace

std::unique_ptr<LagSource> makeKafkaLagSource(const config::Mapping& mapping,
                                              std::chrono::milliseconds timeout,
                                              std::shared_ptr<const PartitionsAtStart> at_start) {
  return std::make_unique<KafkaLagSource>(mapping, timeout, std::move(at_start));
}

} // namespace kesm::scaler
