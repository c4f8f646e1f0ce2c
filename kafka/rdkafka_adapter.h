#pragma once

// Internal to the librdkafka adapters (poller/, scaler/kafka_lag_source.cc, app/preflight.cc,
// the onFailure producer): settings onto a librdkafka conf, and a message as kesm's Record.
// Not for public headers: it exposes librdkafka types.

#include "common/types.h"
#include "kafka/kafka.h"

#include <librdkafka/rdkafka.h>

namespace kesm::kafka {

enum class OnRefused {
  kThrow, // a refused setting is an error: SettingError
  kSkip,  // left out: settings that do not apply to this kind of client (the user's consumer
          // settings on a producer)
};

// The one way kesm sets librdkafka settings: applies `settings` to `conf` in order. kThrow
// throws SettingError at the first one refused; the conf stays the caller's either way.
void applySettings(rd_kafka_conf_t* conf, const Settings& settings, OnRefused on_refused);

// A new conf holding `settings` (see applySettings); destroyed again when it throws. The
// caller owns it.
rd_kafka_conf_t* newConf(const Settings& settings, OnRefused on_refused);

// A fetched message as kesm's Record. Bytes are copied verbatim.
Record toRecord(const rd_kafka_message_t& m);

} // namespace kesm::kafka
