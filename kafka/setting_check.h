#pragma once

// librdkafka's own judgement of one setting of a config's `librdkafka:` map: the
// config::SettingValidator that every real parse passes to config::parseConfig. Pure apart
// from a throwaway librdkafka conf object; any thread.

#include "config/config.h"

#include <optional>
#include <string>

namespace kesm::kafka {

// nullopt when librdkafka accepts `name` = `value` on a fresh conf; else which part it
// refuses (an unknown name, or a bad value) and librdkafka's reason.
std::optional<config::SettingRefusal> checkSetting(const std::string& name,
                                                   const std::string& value);

} // namespace kesm::kafka
