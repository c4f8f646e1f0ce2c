// kafka::checkSetting: librdkafka's own judgement of one setting, as config::parseConfig
// reports it.

#include "kafka/kafka.h"

#include <catch2/catch.hpp>
#include <string>

using kesm::config::SettingRefusal;
using kesm::kafka::checkSetting;

TEST_CASE("setting check: librdkafka accepts a known setting with a good value", "[unit]") {
  CHECK_FALSE(checkSetting("fetch.max.bytes", "1048576").has_value());
  CHECK_FALSE(checkSetting("client.rack", "r1").has_value());
}

TEST_CASE("setting check: an unknown name refuses the name", "[unit]") {
  auto refusal = checkSetting("fetch.max.byte", "1048576");
  REQUIRE(refusal.has_value());
  CHECK(refusal->part == SettingRefusal::Part::kName);
  CHECK_THAT(refusal->reason, Catch::Contains("fetch.max.byte"));
}

TEST_CASE("setting check: a bad value refuses the value", "[unit]") {
  auto refusal = checkSetting("socket.timeout.ms", "soon");
  REQUIRE(refusal.has_value());
  CHECK(refusal->part == SettingRefusal::Part::kValue);
  CHECK_FALSE(refusal->reason.empty());
  refusal = checkSetting("socket.timeout.ms", "1");
  REQUIRE(refusal.has_value()); // below librdkafka's minimum of 10
  CHECK(refusal->part == SettingRefusal::Part::kValue);
}
