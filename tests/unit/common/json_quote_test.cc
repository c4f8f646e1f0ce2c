// json::quote (common/json.h): any bytes in, a JSON string of valid UTF-8 out.

#include "common/json.h"

#include <catch2/catch.hpp>
#include <random>

using namespace kesm;

TEST_CASE("quote: well-formed UTF-8 passes through, quote and backslash are escaped", "[unit]") {
  struct Case {
    const char* name;
    std::string in;
    std::string out;
  };
  auto c = GENERATE(
      Case{.name = "empty", .in = "", .out = "\"\""},
      Case{.name = "ascii", .in = "orders-1.v2", .out = "\"orders-1.v2\""},
      Case{.name = "quote and backslash", .in = "a\"b\\c", .out = "\"a\\\"b\\\\c\""},
      Case{.name = "two bytes", .in = "caf\xc3\xa9", .out = "\"caf\xc3\xa9\""},
      Case{.name = "three bytes", .in = "\xe2\x82\xac", .out = "\"\xe2\x82\xac\""},
      Case{.name = "four bytes", .in = "\xf0\x9f\x98\x80", .out = "\"\xf0\x9f\x98\x80\""},
      Case{.name = "the highest code point",
           .in = "\xf4\x8f\xbf\xbf",
           .out = "\"\xf4\x8f\xbf\xbf\""},
      Case{.name = "DEL is not a control character in JSON", .in = "\x7f", .out = "\"\x7f\""},
      Case{.name = "slash is not escaped", .in = "a/b", .out = "\"a/b\""});
  INFO(c.name);
  CHECK(json::quote(c.in) == c.out);
}

TEST_CASE("quote: control characters become u00xx escapes", "[unit]") {
  CHECK(json::quote(std::string("\0", 1)) == "\"\\u0000\"");
  CHECK(json::quote("\n\t\r") == "\"\\u000a\\u0009\\u000d\"");
  CHECK(json::quote("\x1f") == "\"\\u001f\"");
}

TEST_CASE("quote: each byte of an ill-formed sequence becomes U+FFFD", "[unit]") {
  const std::string fffd = "\xef\xbf\xbd";
  struct Case {
    const char* name;
    std::string in;
    std::string out;
  };
  auto c = GENERATE_COPY(
      Case{.name = "a lone continuation byte", .in = "a\x80z", .out = "a" + fffd + "z"},
      Case{.name = "Latin-1", .in = "caf\xe9", .out = "caf" + fffd},
      Case{.name = "overlong '/'", .in = "\xc0\xaf", .out = fffd + fffd},
      Case{.name = "a truncated sequence", .in = "\xe2\x82", .out = fffd + fffd},
      Case{.name = "a truncated sequence then ASCII", .in = "\xe2\x82x", .out = fffd + fffd + "x"},
      Case{.name = "a UTF-16 surrogate", .in = "\xed\xa0\x80", .out = fffd + fffd + fffd},
      Case{.name = "above U+10FFFF", .in = "\xf4\x90\x80\x80", .out = fffd + fffd + fffd + fffd},
      Case{.name = "0xff", .in = "\xff", .out = fffd},
      Case{.name = "valid after invalid", .in = "\xff\xc3\xa9", .out = fffd + "\xc3\xa9"});
  INFO(c.name);
  CHECK(json::quote(c.in) == "\"" + c.out + "\"");
}

TEST_CASE("quote: any bytes give a JSON string the strict reader accepts", "[unit]") {
  std::mt19937 rng(14);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 2000; ++i) {
    std::string in(static_cast<std::size_t>(i % 40), '\0');
    for (auto& b : in) {
      b = static_cast<char>(byte(rng));
    }
    const std::string quoted = json::quote(in);
    json::Value v;
    REQUIRE_NOTHROW(v = json::parse(quoted));
    REQUIRE(v.kind == json::Value::Kind::kString);
    // What the reader decodes is well-formed already: quoting it again changes nothing.
    REQUIRE(json::quote(v.text) == quoted);
  }
}

TEST_CASE("quote: well-formed text round-trips through the reader", "[unit]") {
  const std::string text = "mapping \"a\\b\"\n\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x01";
  CHECK(json::parse(json::quote(text)).text == text);
}
