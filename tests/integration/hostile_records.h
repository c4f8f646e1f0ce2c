#pragma once

// Records that break naive encoders, shared by the mock-cluster and the real-Kafka tests:
// empty and null keys and values, a 1 MiB value, bytes that are not UTF-8, NUL and 0xff in
// header values, null header values, 100 headers, quotes, backslashes and control
// characters.

#include "harness.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kesm::test {

// A record as produced, and what the function must see of it.
struct Hostile {
  std::string what;
  std::optional<std::string> key{};
  std::optional<std::string> value{};
  std::vector<Header> headers{};          // as produced
  std::vector<Header> expected_headers{}; // as delivered; empty: same as `headers`
};

std::vector<Hostile> hostileRecords();
// `size` bytes holding every byte value in turn.
std::string allByteValues(std::size_t size);
// A readable rendering of bytes for failure messages.
std::string describe(const std::optional<std::string>& s);

enum class Nulls {
  kDefault, // function.nullValues left out: a tombstone arrives as "", a null header as []
  kOmit,    // function.nullValues: omit -- every null arrives as null
};

// Produces hostileRecords() to partition 0 of `topic`, runs the real kesm binary with the
// config `make_config(function_url)` (plus nullValues: omit for Nulls::kOmit) and checks with
// Catch that every record reached the sample function byte for byte, in offset order, in
// bodies its strict JSON reader accepted.
void checkHostileRecordsArrive(const std::string& bootstrap, const std::string& topic,
                               const std::function<ConfigYaml(const std::string&)>& make_config,
                               Nulls nulls = Nulls::kDefault);

} // namespace kesm::test
