#pragma once

// Internal to poller/: a librdkafka message as kesm's Record. Bytes are copied verbatim.

#include "common/types.h"

#include <librdkafka/rdkafka.h>

namespace kesm::poller {

Record toRecord(const rd_kafka_message_t& m);

} // namespace kesm::poller
