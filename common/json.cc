#include "common/json.h"

#include <cstdint>
#include <cstring>
#include <utility>

namespace kesm::json {

const Value* Value::find(std::string_view name) const {
  if (kind != Kind::kObject) {
    return nullptr;
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) {
      return &items[i];
    }
  }
  return nullptr;
}

std::size_t utf8SequenceLength(std::string_view s, std::size_t i) {
  auto at = [&](std::size_t k) {
    return i + k < s.size() ? unsigned{static_cast<unsigned char>(s[i + k])} : 0u;
  };
  auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xbf) {
    return at(k) >= lo && at(k) <= hi;
  };
  const unsigned b = at(0);
  if (b >= 0xc2 && b <= 0xdf) {
    return cont(1) ? 2 : 0;
  }
  if (b == 0xe0) {
    return cont(1, 0xa0) && cont(2) ? 3 : 0;
  }
  if (b == 0xed) {
    return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0; // no UTF-16 surrogates
  }
  if (b >= 0xe1 && b <= 0xef) {
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (b == 0xf0) {
    return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  }
  if (b >= 0xf1 && b <= 0xf3) {
    return cont(1) && cont(2) && cont(3) ? 4 : 0;
  }
  if (b == 0xf4) {
    return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0; // nothing above U+10FFFF
  }
  return 0;
}

std::string quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b == '"' || b == '\\') {
      out += '\\';
      out += static_cast<char>(b);
      ++i;
    } else if (b < 0x20) {
      const char esc[6] = {'\\', 'u', '0', '0', kHex[b >> 4], kHex[b & 0xf]};
      out.append(esc, 6);
      ++i;
    } else if (b < 0x80) {
      out += static_cast<char>(b);
      ++i;
    } else if (std::size_t len = utf8SequenceLength(s, i); len > 0) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xef\xbf\xbd"; // U+FFFD REPLACEMENT CHARACTER, for this one byte
      ++i;
    }
  }
  out += '"';
  return out;
}

namespace {

class Reader {
public:
  explicit Reader(std::string_view text) : s_(text) {}

  Value document() {
    skipSpace();
    Value v = value(0);
    skipSpace();
    if (i_ != s_.size()) {
      fail("unexpected data after the JSON value");
    }
    return v;
  }

private:
  [[noreturn]] void fail(const std::string& rule) const {
    throw JsonError("invalid JSON at byte " + std::to_string(i_) + ": " + rule);
  }

  bool atEnd() const { return i_ >= s_.size(); }
  unsigned char peek() const { return static_cast<unsigned char>(s_[i_]); }

  void skipSpace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) {
      ++i_;
    }
  }

  void expect(char c) {
    if (atEnd() || s_[i_] != c) {
      fail(std::string("expected '") + c + "'");
    }
    ++i_;
  }

  void literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) {
      fail("unexpected character");
    }
    i_ += word.size();
  }

  Value value(std::size_t depth) {
    if (atEnd()) {
      fail("unexpected end of input");
    }
    Value v;
    switch (s_[i_]) {
    case '{':
      v.kind = Value::Kind::kObject;
      object(v, depth + 1);
      break;
    case '[':
      v.kind = Value::Kind::kArray;
      array(v, depth + 1);
      break;
    case '"':
      v.kind = Value::Kind::kString;
      v.text = string();
      break;
    case 't':
      literal("true");
      v.kind = Value::Kind::kBool;
      v.boolean = true;
      break;
    case 'f':
      literal("false");
      v.kind = Value::Kind::kBool;
      break;
    case 'n':
      literal("null");
      break;
    default:
      v.kind = Value::Kind::kNumber;
      v.text = number();
    }
    return v;
  }

  void object(Value& v, std::size_t depth) {
    if (depth > kMaxDepth) {
      fail("nested too deeply");
    }
    expect('{');
    skipSpace();
    if (!atEnd() && s_[i_] == '}') {
      ++i_;
      return;
    }
    while (true) {
      skipSpace();
      if (atEnd() || s_[i_] != '"') {
        fail("expected a member name in double quotes");
      }
      v.names.push_back(string());
      skipSpace();
      expect(':');
      skipSpace();
      v.items.push_back(value(depth));
      skipSpace();
      if (!atEnd() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      expect('}');
      return;
    }
  }

  void array(Value& v, std::size_t depth) {
    if (depth > kMaxDepth) {
      fail("nested too deeply");
    }
    expect('[');
    skipSpace();
    if (!atEnd() && s_[i_] == ']') {
      ++i_;
      return;
    }
    while (true) {
      skipSpace();
      v.items.push_back(value(depth));
      skipSpace();
      if (!atEnd() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      expect(']');
      return;
    }
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  std::string number() {
    const std::size_t start = i_;
    auto digits = [&] {
      std::size_t n = 0;
      while (!atEnd() && peek() >= '0' && peek() <= '9') {
        ++i_;
        ++n;
      }
      return n;
    };
    if (!atEnd() && s_[i_] == '-') {
      ++i_;
    }
    if (atEnd() || peek() < '0' || peek() > '9') {
      fail("unexpected character");
    }
    if (s_[i_] == '0') {
      ++i_;
    } else {
      digits();
    }
    if (!atEnd() && s_[i_] == '.') {
      ++i_;
      if (digits() == 0) {
        fail("a digit must follow the decimal point");
      }
    }
    if (!atEnd() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (!atEnd() && (s_[i_] == '+' || s_[i_] == '-')) {
        ++i_;
      }
      if (digits() == 0) {
        fail("a digit must follow the exponent");
      }
    }
    return std::string(s_.substr(start, i_ - start));
  }

  unsigned hex4() {
    if (s_.size() - i_ < 4) {
      fail("\\u needs four hex digits");
    }
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<unsigned>(c - 'A' + 10);
      } else {
        --i_;
        fail("\\u needs four hex digits");
      }
    }
    return v;
  }

  static void appendUtf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  std::size_t utf8Length() const { return utf8SequenceLength(s_, i_); }

  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      // Plain ASCII (no quote, backslash, control or non-ASCII byte) is copied a run at a
      // time: a base64 value is one run, and char-by-char appends were most of the
      // function's CPU in the drain benchmark.
      std::size_t run = i_;
      // Eight bytes at a time while none of them can end the run (SWAR: a byte below 0x20,
      // with the high bit, or equal to '"' or '\\' sets a high bit in `stop`).
      constexpr std::uint64_t kOnes = 0x0101010101010101ull;
      constexpr std::uint64_t kHigh = 0x8080808080808080ull;
      auto zero_byte = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
      while (run + 8 <= s_.size()) {
        std::uint64_t w;
        std::memcpy(&w, s_.data() + run, 8);
        const std::uint64_t stop = ((w - kOnes * 0x20) & ~w & kHigh) | (w & kHigh) |
                                   zero_byte(w ^ (kOnes * '"')) | zero_byte(w ^ (kOnes * '\\'));
        if (stop != 0) {
          break;
        }
        run += 8;
      }
      while (run < s_.size()) {
        const auto ch = static_cast<unsigned char>(s_[run]);
        if (ch < 0x20 || ch >= 0x80 || ch == '"' || ch == '\\') {
          break;
        }
        ++run;
      }
      out.append(s_.data() + i_, run - i_);
      i_ = run;
      if (atEnd()) {
        fail("unterminated string");
      }
      const unsigned char c = peek();
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c < 0x20) {
        fail("a control character must be escaped in a string");
      }
      if (c >= 0x80) {
        const std::size_t len = utf8Length();
        if (len == 0) {
          fail("a string is not well-formed UTF-8");
        }
        out.append(s_.substr(i_, len));
        i_ += len;
        continue;
      }
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        ++i_;
        continue;
      }
      ++i_;
      if (atEnd()) {
        fail("unterminated escape");
      }
      const char e = s_[i_++];
      switch (e) {
      case '"':
      case '\\':
      case '/':
        out.push_back(e);
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        std::uint32_t cp = hex4();
        if (cp >= 0xdc00 && cp <= 0xdfff) {
          fail("a lone low surrogate escape");
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
          if (s_.substr(i_, 2) != "\\u") {
            fail("a high surrogate escape without its low half");
          }
          i_ += 2;
          const std::uint32_t low = hex4();
          if (low < 0xdc00 || low > 0xdfff) {
            fail("a high surrogate escape without its low half");
          }
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        --i_;
        fail("unknown escape");
      }
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

} // namespace

Value parse(std::string_view text) { return Reader(text).document(); }

} // namespace kesm::json
