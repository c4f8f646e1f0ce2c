// The sample function's JSON reader is strict, so that a test passing through it proves the
// event is JSON any runtime accepts (yaml-cpp, used before, took YAML and JavaScript-isms).

#include "common/json.h"
#include "samplefn/sample_function.h"

#include <catch2/catch.hpp>

using namespace kesm::samplefn;
namespace json = kesm::json;

TEST_CASE("strict JSON: rejects what RFC 8259 does not allow", "[unit]") {
  struct Case {
    const char* name;
    std::string text;
  };
  auto c = GENERATE(
      Case{"empty input", ""}, Case{"only whitespace", " \n"}, Case{"comment", "{} // done"},
      Case{"block comment", "/* */ {}"}, Case{"single quotes", "{'a':1}"},
      Case{"bare word", "{a:1}"}, Case{"trailing comma in object", R"({"a":1,})"},
      Case{"trailing comma in array", "[1,]"}, Case{"missing comma", "[1 2]"},
      Case{"two values", "{} {}"}, Case{"NaN", "NaN"}, Case{"Infinity", "[Infinity]"},
      Case{"leading zero", "[01]"}, Case{"leading plus", "[+1]"}, Case{"bare fraction", "[.5]"},
      Case{"dangling decimal point", "[1.]"}, Case{"empty exponent", "[1e]"},
      Case{"hex number", "[0x10]"}, Case{"byte order mark", "\xef\xbb\xbf{}"},
      Case{"YAML flow without quotes", "{a: b}"},
      Case{"raw control character in a string", "[\"a\tb\"]"},
      Case{"raw NUL in a string", std::string("[\"a\0b\"]", 7)},
      Case{"unknown escape", R"(["\x41"])"}, Case{"short unicode escape", R"(["\u12"])"},
      Case{"lone high surrogate", R"(["\ud800"])"}, Case{"lone low surrogate", R"(["\udcff"])"},
      Case{"high surrogate then non-surrogate", R"(["\ud800\u0041"])"},
      Case{"invalid UTF-8 byte", "[\"\xff\"]"}, Case{"overlong UTF-8", "[\"\xc0\xaf\"]"},
      Case{"UTF-8 surrogate", "[\"\xed\xa0\x80\"]"}, Case{"truncated UTF-8", "[\"\xe2\x82\"]"},
      Case{"unterminated string", "[\"abc"}, Case{"unterminated array", "[1"},
      Case{"unterminated object", R"({"a":1)"}, Case{"tru", "[tru]"},
      Case{"capitalised literal", "[True]"}, Case{"vertical tab as whitespace", "\v{}"},
      Case{"nesting too deep", std::string(65, '[') + std::string(65, ']')});
  CAPTURE(c.name);
  CHECK_THROWS_AS(json::parse(c.text), json::JsonError);
}

TEST_CASE("strict JSON: decodes escapes, surrogate pairs and UTF-8", "[unit]") {
  const auto v = json::parse(
      R"( {"s":"a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac\ud83d\ude00\u0000", "n":[-0,1.5e+3,0],)"
      "\"u\":\"caf\xc3\xa9\xf0\x9f\x98\x80\", \"t\":true,\"f\":false,\"z\":null,\"d\":1,\"d\":2} ");
  REQUIRE(v.kind == json::Value::Kind::kObject);
  CHECK(v.find("s")->text ==
        std::string("a\"b\\c/d\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") +
            std::string(1, '\0'));
  CHECK(v.find("n")->items.size() == 3);
  CHECK(v.find("n")->items[1].text == "1.5e+3");
  CHECK(v.find("u")->text == "caf\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(v.find("t")->boolean);
  CHECK(v.find("z")->isNull());
  CHECK(v.find("d")->text == "1"); // duplicates are kept; find() gives the first
  CHECK(v.names.size() == 8);
  CHECK(json::parse(std::string(64, '[') + std::string(64, ']')).kind == json::Value::Kind::kArray);
}

TEST_CASE("strict JSON: the event reader rejects malformed records", "[unit]") {
  struct Case {
    const char* name;
    std::string record; // the fields after topic and partition
  };
  auto c = GENERATE(
      Case{"base64 of wrong length", R"("offset":1,"timestamp":2,"key":"abc")"},
      Case{"base64 with a bad character", R"("offset":1,"timestamp":2,"key":"ab!=")"},
      Case{"non-canonical base64 padding bits", R"("offset":1,"timestamp":2,"value":"Zh==")"},
      // Signed bytes, as AWS (Java) sends them: 128..255 would be the unsigned spelling.
      Case{"header byte above 127", R"("offset":1,"timestamp":2,"headers":[{"h":[128]}])"},
      Case{"header byte below -128", R"("offset":1,"timestamp":2,"headers":[{"h":[-129]}])"},
      Case{"fractional header byte", R"("offset":1,"timestamp":2,"headers":[{"h":[1.0]}])"},
      Case{"header value as a string", R"("offset":1,"timestamp":2,"headers":[{"h":"aGk="}])"},
      Case{"offset as a string", R"("offset":"1","timestamp":2)"},
      Case{"offset with an exponent", R"("offset":1e3,"timestamp":2)"},
      Case{"timestamp missing", R"("offset":1)"});
  CAPTURE(c.name);
  const std::string body = R"({"records":{"t-0":[{"topic":"t","partition":0,)" + c.record + "}]}}";
  CHECK_THROWS(parseLambdaKafkaEvent(body));
}

TEST_CASE("strict JSON: the event reader reads null keys, values and header values", "[unit]") {
  const auto records = parseLambdaKafkaEvent(
      R"({"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"timestamp":2,)"
      R"("key":null,"value":"","headers":[{"n":null},{"e":[]},{"\uefff":[0,-1]}]}]}})");
  REQUIRE(records.size() == 1);
  CHECK_FALSE(records[0].key.has_value());
  CHECK(records[0].value == std::string());
  REQUIRE(records[0].headers.size() == 3);
  CHECK_FALSE(records[0].headers[0].value.has_value());
  CHECK(records[0].headers[1].value == std::string());
  CHECK(records[0].headers[2].key == "\xff");
  CHECK(records[0].headers[2].value == std::string("\x00\xff", 2));
}

// The string reader copies plain ASCII eight bytes at a time: a byte that ends or breaks the
// run must be seen at every position of a word.
TEST_CASE("strict JSON: a special byte is seen at every position of a long string", "[unit]") {
  for (std::size_t at = 0; at < 24; ++at) {
    CAPTURE(at);
    auto with = [&](const std::string& special) {
      return "[\"" + std::string(at, 'a') + special + std::string(24 - at, 'b') + "\"]";
    };
    CHECK_THROWS_AS(json::parse(with("\t")), json::JsonError);
    CHECK_THROWS_AS(json::parse(with(std::string(1, '\0'))), json::JsonError);
    CHECK_THROWS_AS(json::parse(with("\xff")), json::JsonError);
    CHECK(json::parse(with("\\n")).items.at(0).text ==
          std::string(at, 'a') + "\n" + std::string(24 - at, 'b'));
    CHECK(json::parse(with("\\\"")).items.at(0).text ==
          std::string(at, 'a') + "\"" + std::string(24 - at, 'b'));
    CHECK(json::parse(with("\xc3\xa9")).items.at(0).text ==
          std::string(at, 'a') + "\xc3\xa9" + std::string(24 - at, 'b'));
    // A quote ends the string there; what follows is then not JSON.
    CHECK_THROWS_AS(json::parse(with("\"")), json::JsonError);
    CHECK(json::parse("[\"" + std::string(at, 'a') + "\"]").items.at(0).text ==
          std::string(at, 'a'));
  }
}

TEST_CASE("strict JSON: base64 values of every length decode, a bad character anywhere fails",
          "[unit]") {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  auto encode = [&](const std::string& bytes) {
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
      std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
      if (i + 1 < bytes.size()) {
        v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
      }
      if (i + 2 < bytes.size()) {
        v |= static_cast<unsigned char>(bytes[i + 2]);
      }
      out += alphabet[(v >> 18) & 63];
      out += alphabet[(v >> 12) & 63];
      out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
      out += i + 2 < bytes.size() ? alphabet[v & 63] : '=';
    }
    return out;
  };
  auto event = [](const std::string& b64) {
    return R"({"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"timestamp":2,"value":")" +
           b64 + "\"}]}}";
  };
  for (std::size_t n = 0; n < 40; ++n) {
    CAPTURE(n);
    std::string bytes;
    for (std::size_t i = 0; i < n; ++i) {
      bytes += static_cast<char>((i * 37 + n) & 0xff);
    }
    const std::string b64 = encode(bytes);
    auto records = parseLambdaKafkaEvent(event(b64));
    REQUIRE(records.size() == 1);
    CHECK(records[0].value == bytes);
    for (std::size_t at = 0; at < b64.size() && b64[at] != '='; ++at) {
      std::string bad = b64;
      bad[at] = '*';
      CAPTURE(at);
      CHECK_THROWS(parseLambdaKafkaEvent(event(bad)));
    }
  }
}
