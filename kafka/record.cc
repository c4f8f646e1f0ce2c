#include "kafka/rdkafka_adapter.h"

namespace kesm::kafka {

Record toRecord(const rd_kafka_message_t& m) {
  Record r;
  r.topic = rd_kafka_topic_name(m.rkt);
  r.partition = Partition{m.partition};
  r.offset = Offset{m.offset};
  rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
  r.timestamp_ms = rd_kafka_message_timestamp(&m, &type);
  switch (type) {
  case RD_KAFKA_TIMESTAMP_CREATE_TIME:
    r.timestamp_type = TimestampType::kCreateTime;
    break;
  case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME:
    r.timestamp_type = TimestampType::kLogAppendTime;
    break;
  default:
    r.timestamp_type = TimestampType::kNotAvailable;
  }
  if (m.key != nullptr) {
    r.key.emplace(static_cast<const char*>(m.key), m.key_len);
  }
  if (m.payload != nullptr) {
    r.value.emplace(static_cast<const char*>(m.payload), m.len);
  }
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      Header out;
      out.key = name;
      if (value != nullptr) {
        out.value.emplace(static_cast<const char*>(value), size);
      }
      r.headers.push_back(std::move(out));
    }
  }
  return r;
}

} // namespace kesm::kafka
