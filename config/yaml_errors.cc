#include "config/yaml_errors.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string_view>
#include <yaml-cpp/eventhandler.h>

namespace kesm::config::detail {

namespace {

// The first mark of each document, seen through the parser's events.
class FirstMarks : public YAML::EventHandler {
public:
  std::optional<YAML::Mark> first;

  void OnDocumentStart(const YAML::Mark& mark) override {
    first.reset();
    see(mark);
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { see(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { see(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    see(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    see(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    see(mark);
  }
  void OnMapEnd() override {}

private:
  void see(const YAML::Mark& mark) {
    if (!first) {
      first = mark;
    }
  }
};

// yaml-cpp names what its parser expected ("end of sequence flow not found") and where it gave
// up, often the end of the file. To say which bracket or quote is never closed, follow the
// brackets and quotes of the text up to that point. A heuristic, used for messages only: a
// '[', '{' or quote opens something where a value starts (after "key: ", "- ", ',', another
// bracket or at the start of a line); block scalars (| and >) are not followed.
struct Opened {
  char c = 0;
  Pos pos;
};

struct FlowState {
  std::vector<Opened> brackets; // still open, innermost last
  std::optional<Opened> quote;  // a quoted string still open
};

FlowState followFlow(const std::string& text, std::size_t end) {
  FlowState state;
  Pos pos = kFileStart;
  end = std::min(end, text.size());
  auto value_starts = [&](std::size_t i) {
    std::size_t j = i;
    while (j > 0 && (text[j - 1] == ' ' || text[j - 1] == '\t')) {
      --j;
    }
    if (j == 0 || text[j - 1] == '\n') {
      return true;
    }
    char before = text[j - 1];
    if (before == ',' || before == '[' || before == '{') {
      return true;
    }
    // An indicator counts only when a space follows it: "a:b" and "a-b" are plain text.
    return (before == ':' || before == '-' || before == '?') && j < i;
  };
  // Columns count bytes, as yaml-cpp's marks do.
  auto step = [&](std::size_t at) {
    if (text[at] == '\n') {
      ++pos.line;
      pos.column = 1;
    } else {
      ++pos.column;
    }
  };
  for (std::size_t i = 0; i < end; step(i), ++i) {
    char c = text[i];
    if (state.quote) {
      bool escape = c == '\\' && state.quote->c == '"' && i + 1 < end;
      bool doubled = c == '\'' && state.quote->c == '\'' && i + 1 < end && text[i + 1] == '\'';
      if (escape || doubled) {
        step(i++); // the next character is part of the string: "\"" or 'it''s'
      } else if (c == state.quote->c) {
        state.quote.reset();
      }
    } else if (c == '#' &&
               (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t' || text[i - 1] == '\n')) {
      while (i + 1 < end && text[i + 1] != '\n') {
        step(i++);
      }
    } else if ((c == '\'' || c == '"') && value_starts(i)) {
      state.quote = Opened{c, pos};
    } else if ((c == '[' || c == '{') && value_starts(i)) {
      state.brackets.push_back(Opened{c, pos});
    } else if ((c == ']' || c == '}') && !state.brackets.empty() &&
               state.brackets.back().c == (c == ']' ? '[' : '{')) {
      state.brackets.pop_back();
    }
  }
  return state;
}

std::string closerOf(char open) { return open == '[' ? "']'" : "'}'"; }

std::string where(const Opened& o) {
  return "line " + std::to_string(o.pos.line) + ", column " + std::to_string(o.pos.column);
}

} // namespace

std::optional<Diagnostic> checkText(const std::string& text, const std::string& file) {
  auto starts_with = [&](std::string_view bom) { return text.compare(0, bom.size(), bom) == 0; };
  using namespace std::string_view_literals;
  if (starts_with("\xFF\xFE"sv) || starts_with("\xFE\xFF"sv) || starts_with("\x00\x00\xFE\xFF"sv)) {
    return std::nullopt; // UTF-16 or UTF-32 with a byte order mark: yaml-cpp decodes it
  }
  int line = 1;
  int column = 1;
  std::size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t length = 1;
    if (c == 0) {
      return Diagnostic{file, line, column, "",
                        "the file is not text: it contains a NUL byte; is it a binary file?"};
    }
    if (c >= 0x80) {
      std::uint32_t min = 0;
      if ((c & 0xE0) == 0xC0) {
        length = 2;
        min = 0x80;
      } else if ((c & 0xF0) == 0xE0) {
        length = 3;
        min = 0x800;
      } else if ((c & 0xF8) == 0xF0) {
        length = 4;
        min = 0x10000;
      } else {
        length = 0;
      }
      std::uint32_t code = length == 0 ? 0 : c & (0xFF >> (length + 1));
      bool ok = length != 0 && i + length <= text.size();
      for (std::size_t k = 1; ok && k < length; ++k) {
        auto next = static_cast<unsigned char>(text[i + k]);
        ok = (next & 0xC0) == 0x80;
        code = (code << 6) | (next & 0x3F);
      }
      ok = ok && code >= min && code <= 0x10FFFF && (code < 0xD800 || code > 0xDFFF);
      if (!ok) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", c);
        return Diagnostic{file, line, column, "",
                          std::string("the file is not UTF-8 text: invalid byte ") + buf +
                              "; save it as UTF-8"};
      }
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += length;
  }
  return std::nullopt;
}

DocumentScan scanDocuments(const std::string& text) {
  constexpr std::size_t kMaxDocuments = 10000;
  std::istringstream in(text);
  YAML::Parser parser(in);
  FirstMarks marks;
  DocumentScan scan;
  while (scan.documents.size() < kMaxDocuments && parser.HandleNextDocument(marks)) {
    YAML::Mark mark = marks.first.value_or(YAML::Mark::null_mark());
    if (!scan.documents.empty() && mark.pos == scan.documents.back().pos) {
      scan.stuck_at = mark;
      break;
    }
    scan.documents.push_back(mark);
  }
  return scan;
}

std::pair<Pos, std::string> explainYamlError(const YAML::Exception& e, const std::string& text) {
  Pos pos = e.mark.is_null() ? kFileStart : Pos{e.mark.line + 1, e.mark.column + 1};
  std::size_t at =
      e.mark.is_null() || e.mark.pos < 0 ? text.size() : static_cast<std::size_t>(e.mark.pos);
  char here = at < text.size() ? text[at] : '\0';
  const std::string& msg = e.msg;
  if (msg == YAML::ErrorMsg::END_OF_SEQ_FLOW || msg == YAML::ErrorMsg::END_OF_MAP_FLOW) {
    FlowState state = followFlow(text, text.size());
    if (!state.brackets.empty()) {
      const Opened& open = state.brackets.back();
      return {open.pos, "invalid YAML: this '" + std::string(1, open.c) + "' is never closed; a " +
                            closerOf(open.c) + " is missing"};
    }
    char open = msg == YAML::ErrorMsg::END_OF_SEQ_FLOW ? '[' : '{';
    return {pos, "invalid YAML: a '" + std::string(1, open) + "' is never closed; a " +
                     closerOf(open) + " is missing"};
  }
  if (msg == YAML::ErrorMsg::FLOW_END && (here == ']' || here == '}')) {
    FlowState state = followFlow(text, at);
    std::string rule = "invalid YAML: unexpected '" + std::string(1, here) + "'";
    if (state.brackets.empty()) {
      return {pos, rule + ": no '" + (here == ']' ? "[" : "{") + "' is open here"};
    }
    const Opened& open = state.brackets.back();
    return {pos, rule + ": the '" + std::string(1, open.c) + "' opened at " + where(open) +
                     " must be closed with " + closerOf(open.c) + " first"};
  }
  if (msg == YAML::ErrorMsg::BLOCK_ENTRY) {
    FlowState state = followFlow(text, at);
    if (!state.brackets.empty()) {
      const Opened& open = state.brackets.back();
      return {pos, "invalid YAML: a '- ' list entry cannot stand inside the '" +
                       std::string(1, open.c) + "' opened at " + where(open) + "; is its " +
                       closerOf(open.c) + " missing?"};
    }
    return {pos, "invalid YAML: a '- ' list entry cannot start here; check its indentation"};
  }
  if (msg == YAML::ErrorMsg::EOF_IN_SCALAR) {
    FlowState state = followFlow(text, text.size());
    if (state.quote) {
      return {state.quote->pos,
              std::string("invalid YAML: this quoted string is never closed; a closing ") +
                  state.quote->c + " is missing"};
    }
  }
  if (msg == YAML::ErrorMsg::END_OF_MAP) {
    return {pos, "invalid YAML: this line does not fit the map above it; check its indentation"};
  }
  if (msg == YAML::ErrorMsg::END_OF_SEQ) {
    return {pos, "invalid YAML: this line does not fit the list above it; check its indentation"};
  }
  if (msg == YAML::ErrorMsg::MAP_VALUE) {
    std::size_t line_start = text.rfind('\n', at == 0 ? 0 : at - 1);
    line_start = line_start == std::string::npos ? 0 : line_start + 1;
    std::size_t indent_end = text.find_first_not_of(" \t", line_start);
    if (text.find('\t', line_start) < std::min(indent_end, text.size())) {
      return {Pos{pos.line, 1}, "invalid YAML: a tab in the indentation; indent with spaces"};
    }
    return {pos, "invalid YAML: unexpected ':'; quote a value that holds ': ', like 'a: b'"};
  }
  return {pos, "invalid YAML: " + msg};
}

} // namespace kesm::config::detail
