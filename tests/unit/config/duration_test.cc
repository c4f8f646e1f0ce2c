#include "config/config.h"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

using namespace kesm::config;
using namespace std::chrono_literals;

TEST_CASE("parseDuration: accepted forms", "[unit]") {
  struct Case {
    std::string text;
    Millis want;
  };
  auto c = GENERATE(from_range(std::vector<Case>{
      {.text = "500ms", .want = 500ms},
      {.text = "5s", .want = 5s},
      {.text = "2m", .want = 2min},
      {.text = "1h", .want = 1h},
      {.text = "0", .want = 0ms},
      {.text = "0ms", .want = 0ms},
      {.text = "0s", .want = 0ms},
      {.text = "1.5s", .want = 1500ms},
      {.text = "0.25m", .want = 15s},
      {.text = ".5s", .want = 500ms},
      {.text = "2.000s", .want = 2s},
      {.text = "1m30s", .want = 90s},
      {.text = "1h30m", .want = 90min},
      {.text = "900s", .want = 15min},
      {.text = "007s", .want = 7s},
  }));
  INFO(c.text);
  auto got = parseDuration(c.text);
  REQUIRE(got.has_value());
  CHECK(*got == c.want);
}

TEST_CASE("parseDuration: rejected forms", "[unit]") {
  struct Case {
    std::string text;
    const char* why;
  };
  auto c = GENERATE(from_range(std::vector<Case>{
      {.text = "", .why = "empty"},
      {.text = "500", .why = "no unit"},
      {.text = "ms", .why = "no number"},
      {.text = "5S", .why = "units are lower case"},
      {.text = "5 s", .why = "space inside"},
      {.text = " 5s", .why = "leading space"},
      {.text = "-5s", .why = "negative"},
      {.text = "+5s", .why = "sign"},
      {.text = "5d", .why = "days are not a unit"},
      {.text = "5sec", .why = "long unit names"},
      {.text = "1.5ms", .why = "finer than a millisecond"},
      {.text = "5.s", .why = "a point without digits"},
      {.text = "1e3ms", .why = "exponent"},
      {.text = "5s5", .why = "trailing number"},
      {.text = "0x10s", .why = "hex"},
      {.text = "99999999999999999999h", .why = "overflow"},
      {.text = "9999999999999h", .why = "overflow after the unit"},
      {.text = "0.0000000000001s", .why = "too many decimals"},
  }));
  INFO(c.text << " (" << c.why << ")");
  CHECK_FALSE(parseDuration(c.text).has_value());
}
