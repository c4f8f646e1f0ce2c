#include "kafka/kafka.h"

#include <librdkafka/rdkafka.h>

namespace kesm::kafka {

std::optional<config::SettingRefusal> checkSetting(const std::string& name,
                                                   const std::string& value) {
  char err[512] = "";
  rd_kafka_conf_t* probe = rd_kafka_conf_new();
  const rd_kafka_conf_res_t res =
      rd_kafka_conf_set(probe, name.c_str(), value.c_str(), err, sizeof err);
  rd_kafka_conf_destroy(probe);
  if (res == RD_KAFKA_CONF_OK) {
    return std::nullopt;
  }
  return config::SettingRefusal{res == RD_KAFKA_CONF_UNKNOWN ? config::SettingRefusal::Part::kName
                                                             : config::SettingRefusal::Part::kValue,
                                err};
}

} // namespace kesm::kafka
