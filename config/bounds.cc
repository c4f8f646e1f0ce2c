#include "config/bounds.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <unistd.h>
#include <vector>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace kesm::config::detail {

namespace {

std::string mib(std::size_t bytes) { return std::to_string(bytes / (1024 * 1024)) + " MiB"; }

struct Size {
  std::size_t values = 0;
  std::size_t bytes = 0;
};

// Thrown out of the parser to stop it at the first value past a bound.
struct BoundPassed {
  YAML::Mark mark;
  bool at_alias = false;
};

// Sizes each anchored node as its events go by; an alias adds the size of what it names.
class ExpansionCounter : public YAML::EventHandler {
public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    leaf(mark, anchor, Size{1, 0});
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    add(mark, anchor < anchors_.size() ? anchors_[anchor] : Size{1, 0}, true);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    leaf(mark, anchor, Size{1, value.size()});
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnMapEnd() override { close(); }

private:
  struct Frame {
    YAML::anchor_t anchor = 0;
    Size size;
  };

  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor, Size size) {
    add(mark, size, false);
    remember(anchor, size);
  }

  // A collection counts itself in the document now, and in its parent when it closes.
  void open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    count(mark, Size{1, 0}, false);
    frames_.push_back(Frame{anchor, Size{1, 0}});
  }

  void close() {
    if (frames_.empty()) {
      return;
    }
    Frame frame = frames_.back();
    frames_.pop_back();
    remember(frame.anchor, frame.size);
    if (!frames_.empty()) {
      frames_.back().size.values += frame.size.values;
      frames_.back().size.bytes += frame.size.bytes;
    }
  }

  // A value, or what an alias expands to, in the document and in its collection.
  void add(const YAML::Mark& mark, Size size, bool alias) {
    if (!frames_.empty()) {
      frames_.back().size.values += size.values;
      frames_.back().size.bytes += size.bytes;
    }
    count(mark, size, alias);
  }

  // Every count is at most the document's, which stops one value past the bounds: no
  // count overflows.
  void count(const YAML::Mark& mark, Size size, bool alias) {
    total_.values += size.values;
    total_.bytes += size.bytes;
    if (total_.values > kMaxExpandedValues || total_.bytes > kMaxExpandedTextBytes) {
      throw BoundPassed{mark, alias};
    }
  }

  void remember(YAML::anchor_t anchor, Size size) {
    if (anchor == 0) {
      return;
    }
    if (anchors_.size() <= anchor) {
      anchors_.resize(anchor + 1);
    }
    anchors_[anchor] = size;
  }

  std::vector<Frame> frames_;
  std::vector<Size> anchors_; // by anchor id; yaml-cpp numbers anchors from 1
  Size total_;
};

} // namespace

std::string readCapped(const std::string& path) {
  auto unreadable = [&](int error) {
    return ConfigError(
        {Diagnostic{path, 0, 0, "", std::string("cannot read file: ") + std::strerror(error)}});
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw unreadable(errno);
  }
  std::string text;
  char buf[65536];
  while (text.size() <= kMaxConfigBytes) {
    std::size_t want = std::min(sizeof buf, kMaxConfigBytes + 1 - text.size());
    ssize_t n = ::read(fd, buf, want);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      int error = errno;
      ::close(fd);
      throw unreadable(error); // e.g. EISDIR for a directory
    }
    if (n == 0) {
      break;
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

std::optional<Diagnostic> checkSize(const std::string& text, const std::string& file) {
  if (text.size() <= kMaxConfigBytes) {
    return std::nullopt;
  }
  int line = 1;
  int column = 1;
  for (std::size_t i = 0; i < kMaxConfigBytes; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return Diagnostic{file, line, column, "",
                    "the file is larger than " + mib(kMaxConfigBytes) + " (" +
                        std::to_string(kMaxConfigBytes) +
                        " bytes), the most kesm reads; it passes the limit here"};
}

std::optional<Diagnostic> checkExpansion(const std::string& text, const std::string& file) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  ExpansionCounter counter;
  try {
    parser.HandleNextDocument(counter);
  } catch (const BoundPassed& passed) {
    const std::string bounds = std::to_string(kMaxExpandedValues) + " values or " +
                               mib(kMaxExpandedTextBytes) + " of text";
    std::string rule =
        passed.at_alias
            ? "this alias expands the file past " + bounds +
                  " (each use of an alias counts as a copy of what it names); write the values "
                  "out, or nest fewer aliases"
            : "the file holds more than " + bounds + ", the most kesm reads";
    return Diagnostic{file, passed.mark.line + 1, passed.mark.column + 1, "", std::move(rule)};
  } catch (const YAML::Exception&) {
    return std::nullopt; // invalid YAML: YAML::Load says where
  }
  return std::nullopt;
}

} // namespace kesm::config::detail
