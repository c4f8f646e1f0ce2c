// Bad config files through the real kesm binary. For each: the exact message on stderr
// (FILE:LINE:COLUMN: KEY: RULE), nothing on stdout, exit status 2. Static mistakes and the
// cluster preflight alike: unreachable brokers and topics that do not exist, against
// librdkafka's mock cluster.

#include "harness.h"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <optional>
#include <random>
#include <spawn.h>
#include <sstream>
#include <stdexcept>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using namespace kesm;
using namespace kesm::test;

namespace {

// What one run of kesm left behind.
struct Outcome {
  int status = -1; // exit status; -1 when it had not exited within the timeout
  std::string out;
  std::string err;
  long max_rss_kb = 0; // the child's peak resident memory
  std::chrono::milliseconds took{0};
};

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs the kesm binary to its end, stdout and stderr each to its own file.
Outcome runKesm(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 60s,
                const std::string& cwd = "") {
  static int runs = 0;
  std::string out_path = writeTempFile("run-" + std::to_string(++runs) + ".out", "");
  std::string err_path = writeTempFile("run-" + std::to_string(runs) + ".err", "");
  std::string binary = KESM_BINARY;
  std::vector<std::string> copy = args;
  std::vector<char*> argv{binary.data()};
  for (auto& a : copy) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_TRUNC, 0);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_TRUNC, 0);
  if (!cwd.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, binary.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    throw std::runtime_error("cannot start " + binary);
  }
  int wstatus = 0;
  rusage usage{};
  auto started = std::chrono::steady_clock::now();
  bool exited = waitUntil(
      timeout, [&] { return wait4(pid, &wstatus, WNOHANG, &usage) == pid; }, 10ms);
  Outcome outcome;
  outcome.took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  outcome.max_rss_kb = usage.ru_maxrss;
  if (!exited) {
    ::kill(pid, SIGKILL);
    waitpid(pid, &wstatus, 0);
  } else {
    outcome.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  }
  outcome.out = readAll(out_path);
  outcome.err = readAll(err_path);
  ::unlink(out_path.c_str());
  ::unlink(err_path.c_str());
  return outcome;
}

// Every "$NAME" of the text replaced by its value.
std::string fill(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [name, value] : values) {
    for (auto at = text.find(name); at != std::string::npos;
         at = text.find(name, at + value.size())) {
      text.replace(at, name.size(), value);
    }
  }
  return text;
}

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) {
    out.push_back(w);
  }
  return out;
}

// One mock cluster for every case, holding the topic "orders" only.
app::MockKafkaCluster& cluster() {
  static app::MockKafkaCluster mock(1);
  static const bool created = (mock.createTopic("orders", 2), true);
  (void)created;
  return mock;
}

// A loopback address nobody listens on: a port bound once to find a free one, then closed.
std::string closedAddress() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t length = sizeof addr;
  bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0;
  if (fd >= 0) {
    ::close(fd);
  }
  if (!ok) {
    throw std::runtime_error("cannot find a free port");
  }
  return "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

// 512 bytes from a seeded Mersenne Twister (its output is fixed by the C++ standard), with a
// NUL byte among them for certain.
std::string binaryGarbage() {
  std::mt19937 random(20240601);
  std::string bytes;
  for (int i = 0; i < 512; ++i) {
    bytes += static_cast<char>(random() & 0xFF);
  }
  bytes[100] = '\0';
  return bytes;
}

// A valid mapping on the mock cluster in 9 lines; the lines a case appends start at line 10,
// inside the mapping's function section (indent 6) or as a new section of it (indent 4).
std::string valid(const std::string& more, const std::string& servers = "$BOOTSTRAP",
                  const std::string& topics = "[orders]") {
  std::string yaml = "server:\n"                       // 1
                     "  listen: 127.0.0.1:0\n"         // 2
                     "mappings:\n"                     // 3
                     "  - name: orders\n"              // 4
                     "    source:\n";                  // 5
  yaml += "      bootstrapServers: " + servers + "\n"; // 6
  yaml += "      topics: " + topics + "\n";            // 7
  yaml += "    function:\n"                            // 8
          "      url: http://127.0.0.1:9/invoke\n";    // 9
  return yaml + more;
}

// How kesm is run: $FILE is the config file.
const std::string kValidate = "validate --config $FILE --connect";
const std::string kRun = "run --config $FILE";

// No file is written: $FILE names a path that does not exist.
const std::optional<std::string> kNoFile = std::nullopt;

struct BadConfig {
  const char* name;
  std::optional<std::string> yaml; // $BOOTSTRAP: the mock cluster; $CLOSED: nobody listens
  std::string command;
  std::string stderr_text; // all of stderr, one diagnostic a line; $FILE: the config's path
};

const std::vector<BadConfig>& badConfigs() {
  static const std::vector<BadConfig> cases{
      // ---- wrong types ----
      {.name = "a string where an integer belongs",
       .yaml = valid("    batching:\n      batchSize: many\n"),
       .command = kValidate,
       .stderr_text = "$FILE:11:18: mappings[0].batching.batchSize: must be an integer from 1 to "
                      "10000, got 'many'\n"},
      {.name = "a list where a map belongs",
       .yaml = valid("    batching: [100]\n"),
       .command = kValidate,
       .stderr_text = "$FILE:10:15: mappings[0].batching: must be a map with batchSize and "
                      "maximumBatchingWindow, got a list\n"},
      {.name = "a map where a string belongs",
       .yaml = "mappings:\n"
               "  - name: {first: orders}\n"
               "    source: {bootstrapServers: $BOOTSTRAP, topics: [orders]}\n"
               "    function: {url: 'http://127.0.0.1:9/invoke'}\n",
       .command = kValidate,
       .stderr_text = "$FILE:2:11: mappings[0].name: must be a name of 1 to 64 letters, digits, "
                      "'.', '_' or '-', got a map\n"},
      // ---- values out of range ----
      {.name = "batchSize 0",
       .yaml = valid("    batching:\n      batchSize: 0\n"),
       .command = kValidate,
       .stderr_text = "$FILE:11:18: mappings[0].batching.batchSize: must be an integer from 1 to "
                      "10000, got 0\n"},
      {.name = "batchSize 10001",
       .yaml = valid("    batching:\n      batchSize: 10001\n"),
       .command = kValidate,
       .stderr_text = "$FILE:11:18: mappings[0].batching.batchSize: must be an integer from 1 to "
                      "10000, got 10001\n"},
      {.name = "maximumBatchingWindow 301s",
       .yaml = valid("    batching:\n      maximumBatchingWindow: 301s\n"),
       .command = kValidate,
       .stderr_text = "$FILE:11:30: mappings[0].batching.maximumBatchingWindow: must be a duration "
                      "from 0 to 300s, got 301s\n"},
      {.name = "minimumPollers 0",
       .yaml = valid("    scaling:\n      minimumPollers: 0\n"),
       .command = kValidate,
       .stderr_text = "$FILE:11:23: mappings[0].scaling.minimumPollers: must be an integer from 1 "
                      "to 200, got 0\n"},
      {.name = "maximumPollers 2001",
       .yaml = valid("    scaling:\n      maximumPollers: 2001\n"),
       .command = kValidate,
       .stderr_text = "$FILE:11:23: mappings[0].scaling.maximumPollers: must be an integer from 1 "
                      "to 2000, got 2001\n"},
      {.name = "maximumPollers below minimumPollers",
       .yaml = valid("    scaling:\n      minimumPollers: 10\n      maximumPollers: 5\n"),
       .command = kValidate,
       .stderr_text = "$FILE:12:23: mappings[0].scaling.maximumPollers: must be at least "
                      "minimumPollers (10), got 5\n"},
      {.name = "a negative duration",
       .yaml = valid("    scaling:\n      gracePeriod: -5s\n"),
       .command = kValidate,
       .stderr_text = "$FILE:11:20: mappings[0].scaling.gracePeriod: must be a duration from 0 to "
                      "10m; a duration is never negative, got '-5s'\n"},
      {.name = "a duration with an unknown unit",
       .yaml = valid("      timeout: 5x\n"),
       .command = kValidate,
       .stderr_text = "$FILE:10:16: mappings[0].function.timeout: must be a duration from 1ms to "
                      "15m; 'x' is not a unit, use ms, s, m or h, got '5x'\n"},
      // ---- unknown keys ----
      {.name = "an unknown key at the top level",
       .yaml = valid("logging: debug\n"),
       .command = kValidate,
       .stderr_text = "$FILE:10:1: logging: unknown key; the keys allowed at the top level are "
                      "server, leaderElection, mappings\n"},
      {.name = "an unknown key in source",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source:\n"
               "      bootstrapServers: $BOOTSTRAP\n"
               "      topics: [orders]\n"
               "      startingPostion: LATEST\n"
               "    function:\n"
               "      url: http://127.0.0.1:9/invoke\n",
       .command = kValidate,
       .stderr_text = "$FILE:6:7: mappings[0].source.startingPostion: unknown key, did you mean "
                      "'startingPosition'?\n"},
      {.name = "an unknown key in function",
       .yaml = valid("      timout: 5s\n"),
       .command = kValidate,
       .stderr_text = "$FILE:10:7: mappings[0].function.timout: unknown key, did you mean "
                      "'timeout'?\n"},
      {.name = "an unknown key in batching (batchsize)",
       .yaml = valid("    batching:\n      batchsize: 10\n"),
       .command = kValidate,
       .stderr_text = "$FILE:11:7: mappings[0].batching.batchsize: unknown key, did you mean "
                      "'batchSize'?\n"},
      {.name = "an unknown key in scaling",
       .yaml = valid("    scaling:\n      minimumPoller: 2\n"),
       .command = kValidate,
       .stderr_text = "$FILE:11:7: mappings[0].scaling.minimumPoller: unknown key, did you mean "
                      "'minimumPollers'?\n"},
      // ---- function ----
      {.name = "the function URL missing",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source: {bootstrapServers: $BOOTSTRAP, topics: [orders]}\n"
               "    function:\n"
               "      timeout: 5s\n",
       .command = kValidate,
       .stderr_text = "$FILE:5:7: mappings[0].function.url: required key is missing; give the "
                      "function's URL, like http://my-fn:8080/invoke\n"},
      {.name = "an ftp:// URL",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source: {bootstrapServers: $BOOTSTRAP, topics: [orders]}\n"
               "    function: {url: 'ftp://fn/invoke'}\n",
       .command = kValidate,
       .stderr_text = "$FILE:4:21: mappings[0].function.url: must be an http:// or https:// "
                      "URL like https://host:8443/path, got 'ftp://fn/invoke'\n"},
      {.name = "a URL without a host",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source: {bootstrapServers: $BOOTSTRAP, topics: [orders]}\n"
               "    function: {url: 'http://:8080/invoke'}\n",
       .command = kValidate,
       .stderr_text = "$FILE:4:21: mappings[0].function.url: must be an http:// or https:// "
                      "URL like https://host:8443/path, got 'http://:8080/invoke'\n"},
      // ---- source ----
      {.name = "bootstrapServers missing",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source:\n"
               "      topics: [orders]\n"
               "    function: {url: 'http://127.0.0.1:9/invoke'}\n",
       .command = kValidate,
       .stderr_text = "$FILE:4:7: mappings[0].source.bootstrapServers: required key is missing; "
                      "list the Kafka brokers, like kafka-0:9092\n"},
      {.name = "topics missing",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source:\n"
               "      bootstrapServers: $BOOTSTRAP\n"
               "    function: {url: 'http://127.0.0.1:9/invoke'}\n",
       .command = kValidate,
       .stderr_text = "$FILE:4:7: mappings[0].source.topics: required key is missing; list the "
                      "topics to read, like [orders]\n"},
      {.name = "an empty topics list",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source:\n"
               "      topics: []\n"
               "      bootstrapServers: $BOOTSTRAP\n"
               "    function: {url: 'http://127.0.0.1:9/invoke'}\n",
       .command = kValidate,
       .stderr_text = "$FILE:4:15: mappings[0].source.topics: must list at least one topic, got "
                      "an empty list\n"},
      {.name = "startingPosition in lower case",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source:\n"
               "      startingPosition: latest\n"
               "      bootstrapServers: $BOOTSTRAP\n"
               "      topics: [orders]\n"
               "    function: {url: 'http://127.0.0.1:9/invoke'}\n",
       .command = kValidate,
       .stderr_text = "$FILE:4:25: mappings[0].source.startingPosition: must be TRIM_HORIZON, "
                      "LATEST or AT_TIMESTAMP, got 'latest' (the values are upper case)\n"},
      {.name = "a librdkafka setting librdkafka does not know",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source:\n"
               "      librdkafka: {fetch.max.byte: 1048576}\n"
               "      bootstrapServers: $BOOTSTRAP\n"
               "      topics: [orders]\n"
               "    function: {url: 'http://127.0.0.1:9/invoke'}\n",
       .command = kValidate,
       .stderr_text = "$FILE:4:20: mappings[0].source.librdkafka.fetch.max.byte: librdkafka "
                      "refuses it: No such configuration property: \"fetch.max.byte\"\n"},
      {.name = "a librdkafka value librdkafka refuses",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source:\n"
               "      librdkafka:\n"
               "        socket.timeout.ms: soon\n"
               "      bootstrapServers: $BOOTSTRAP\n"
               "      topics: [orders]\n"
               "    function: {url: 'http://127.0.0.1:9/invoke'}\n",
       .command = kValidate,
       .stderr_text = "$FILE:5:28: mappings[0].source.librdkafka.socket.timeout.ms: librdkafka "
                      "refuses it: Invalid value for configuration property "
                      "\"socket.timeout.ms\", got 'soon'\n"},
      // ---- mappings ----
      {.name = "two mappings with one name",
       .yaml = valid("  - name: orders\n"
                     "    source: {bootstrapServers: $BOOTSTRAP, topics: [orders]}\n"
                     "    function: {url: 'http://127.0.0.1:9/other'}\n"),
       .command = kValidate,
       .stderr_text = "$FILE:10:11: mappings[1].name: mapping name 'orders' is already used by "
                      "mappings[0]\n"},
      {.name = "a mapping name with a '/'",
       .yaml = "mappings:\n"
               "  - name: orders/eu\n"
               "    source: {bootstrapServers: $BOOTSTRAP, topics: [orders]}\n"
               "    function: {url: 'http://127.0.0.1:9/invoke'}\n",
       .command = kValidate,
       .stderr_text = "$FILE:2:11: mappings[0].name: must be a name of 1 to 64 letters, digits, "
                      "'.', '_' or '-', got 'orders/eu'\n"},
      // ---- the file as a whole ----
      {.name = "an empty file",
       .yaml = "",
       .command = kValidate,
       .stderr_text =
           "$FILE:1:1: the file is empty; a kesm config needs at least a mappings list\n"},
      {.name = "a file with only a comment",
       .yaml = "# mappings to come\n",
       .command = kValidate,
       .stderr_text =
           "$FILE:1:1: the file is empty; a kesm config needs at least a mappings list\n"},
      {.name = "a '[' never closed, block entries after it",
       .yaml = "mappings: [\n"
               "  - name: orders\n",
       .command = kValidate,
       .stderr_text = "$FILE:2:3: invalid YAML: a '- ' list entry cannot stand inside the '[' "
                      "opened at line 1, column 11; is its ']' missing?\n"},
      {.name = "a '[' never closed",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source:\n"
               "      bootstrapServers: $BOOTSTRAP\n"
               "      topics: [orders\n"
               "    function:\n"
               "      url: http://127.0.0.1:9/invoke\n",
       .command = kValidate,
       .stderr_text = "$FILE:5:15: invalid YAML: this '[' is never closed; a ']' is missing\n"},
      {.name = "a '[' closed with '}'",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source:\n"
               "      bootstrapServers: $BOOTSTRAP\n"
               "      topics: [orders}\n",
       .command = kValidate,
       .stderr_text = "$FILE:5:22: invalid YAML: unexpected '}': the '[' opened at line 5, "
                      "column 15 must be closed with ']' first\n"},
      {.name = "binary garbage",
       .yaml = binaryGarbage(),
       .command = kValidate,
       .stderr_text =
           "$FILE:1:6: the file is not UTF-8 text: invalid byte 0xca; save it as UTF-8\n"},
      {.name = "a config file that does not exist",
       .yaml = kNoFile,
       .command = kValidate,
       .stderr_text = "$FILE: cannot read file: No such file or directory\n"},
      // ---- the cluster preflight ----
      {.name = "bootstrap servers nobody answers at",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source:\n"
               "      bootstrapServers: $CLOSED\n"
               "      topics: [orders]\n"
               "    function: {url: 'http://127.0.0.1:9/invoke'}\n",
       .command = kValidate + " --preflight-timeout 1s",
       .stderr_text = "$FILE:4:25: mappings[0].source.bootstrapServers: no broker answered at "
                      "$CLOSED within 1s: Connect to ipv4#$CLOSED failed: Connection refused\n"},
      {.name = "a topic that does not exist",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source:\n"
               "      bootstrapServers: $BOOTSTRAP\n"
               "      topics: [nope]\n"
               "    function: {url: 'http://127.0.0.1:9/invoke'}\n",
       .command = kValidate,
       .stderr_text = "$FILE:5:16: mappings[0].source.topics[0]: topic 'nope' does not exist on "
                      "$BOOTSTRAP\n"},
      {.name = "the second of two topics does not exist",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source:\n"
               "      bootstrapServers: $BOOTSTRAP\n"
               "      topics:\n"
               "        - orders\n"
               "        - ordrs\n"
               "    function: {url: 'http://127.0.0.1:9/invoke'}\n",
       .command = kValidate,
       .stderr_text = "$FILE:7:11: mappings[0].source.topics[1]: topic 'ordrs' does not exist on "
                      "$BOOTSTRAP\n"},
      {.name = "every mapping is checked: one unreachable, one topic missing",
       .yaml = "mappings:\n"
               "  - name: a\n"
               "    source: {topics: [orders], bootstrapServers: $CLOSED}\n"
               "    function: {url: 'http://127.0.0.1:9/a'}\n"
               "  - name: b\n"
               "    source:\n"
               "      bootstrapServers: $BOOTSTRAP\n"
               "      topics: [orders, nope]\n"
               "    function: {url: 'http://127.0.0.1:9/b'}\n",
       .command = kValidate + " --preflight-timeout 1s",
       .stderr_text = "$FILE:3:50: mappings[0].source.bootstrapServers: no broker answered at "
                      "$CLOSED within 1s: Connect to ipv4#$CLOSED failed: Connection refused\n"
                      "$FILE:8:24: mappings[1].source.topics[1]: topic 'nope' does not exist on "
                      "$BOOTSTRAP\n"},
      // ---- bounded work (issue 13) ----
      {.name = "aliases of nested maps inside one filter pattern (4^9 leaves)",
       .yaml = valid("    filters:\n"
                     "      - value:\n"
                     "          a: &a {x: [1], y: [2], z: [3], w: [4]}\n"
                     "          b: &b {p: *a, q: *a, r: *a, s: *a}\n"
                     "          c: &c {p: *b, q: *b, r: *b, s: *b}\n"
                     "          d: &d {p: *c, q: *c, r: *c, s: *c}\n"
                     "          e: &e {p: *d, q: *d, r: *d, s: *d}\n"
                     "          f: &f {p: *e, q: *e, r: *e, s: *e}\n"
                     "          g: &g {p: *f, q: *f, r: *f, s: *f}\n"
                     "          h: &h {p: *g, q: *g, r: *g, s: *g}\n"
                     "          i: &i {p: *h, q: *h, r: *h, s: *h}\n"
                     "          j: &j {p: *i, q: *i, r: *i, s: *i}\n"),
       .command = kValidate,
       .stderr_text = "$FILE:19:35: this alias expands the file past 250000 values or 4 MiB of "
                      "text (each use of an alias counts as a copy of what it names); write the "
                      "values out, or nest fewer aliases\n"},
      {.name = "a device that never ends as the config",
       .yaml = "",
       .command = "validate --config /dev/zero",
       .stderr_text = "/dev/zero:1:1048577: the file is larger than 1 MiB (1048576 bytes), the "
                      "most kesm reads; it passes the limit here\n"},
      {.name = "a function URL with credentials: the password is never printed",
       .yaml = "mappings:\n"
               "  - name: orders\n"
               "    source: {bootstrapServers: $BOOTSTRAP, topics: [orders]}\n"
               "    function: {url: 'http://admin:s3cret@127.0.0.1:9/invoke'}\n",
       .command = kValidate,
       .stderr_text = "$FILE:4:21: mappings[0].function.url: must not hold credentials "
                      "(user:password@ before the host): kesm sends no credentials to the "
                      "function; got 'http://***@127.0.0.1:9/invoke'\n"},
      // ---- kesm run refuses the same before it starts anything ----
      {.name = "run: a topic that does not exist",
       .yaml = valid("", "$BOOTSTRAP", "[nope]"),
       .command = kRun,
       .stderr_text = "$FILE:7:16: mappings[0].source.topics[0]: topic 'nope' does not exist on "
                      "$BOOTSTRAP\n"},
      {.name = "run: bootstrap servers nobody answers at",
       .yaml = valid("", "$CLOSED"),
       .command = kRun + " --preflight-timeout 1s",
       .stderr_text = "$FILE:6:25: mappings[0].source.bootstrapServers: no broker answered at "
                      "$CLOSED within 1s: Connect to ipv4#$CLOSED failed: Connection refused\n"},
      {.name = "run: leader election forced on outside a Kubernetes pod",
       .yaml = valid("") + "leaderElection:\n  enabled: true\n",
       .command = kRun,
       .stderr_text = "$FILE:11:12: leaderElection.enabled: is true, but kesm does not run in a "
                      "Kubernetes pod (KUBERNETES_SERVICE_HOST is not set); set it to auto to run "
                      "without leader election outside Kubernetes\n"},
      {.name = "run: batchSize 0",
       .yaml = valid("    batching:\n      batchSize: 0\n"),
       .command = kRun,
       .stderr_text = "$FILE:11:18: mappings[0].batching.batchSize: must be an integer from 1 to "
                      "10000, got 0\n"},
  };
  return cases;
}

// The values every case's $NAMEs stand for, but $FILE.
const std::map<std::string, std::string>& places() {
  static const std::map<std::string, std::string> values{
      {"$BOOTSTRAP", cluster().bootstrapServers()},
      {"$CLOSED", closedAddress()},
  };
  return values;
}

std::string configPath(const std::string& name) {
  std::string file;
  for (char c : name) {
    file += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  }
  return writeTempFile("bad-" + file + ".yaml", "");
}

} // namespace

TEST_CASE("config errors: every bad file gets one exact message per problem and exit 2",
          "[integration][config]") {
  cluster(); // created and given its topic before the first case runs
  auto c = GENERATE(from_range(badConfigs()));
  std::string path = configPath(c.name);
  if (c.yaml) {
    std::ofstream(path, std::ios::binary) << fill(*c.yaml, places());
  } else {
    ::unlink(path.c_str());
    path += ".missing";
  }
  auto values = places();
  values["$FILE"] = path;
  INFO("case: " << c.name << "\n--- " << path << " ---\n" << (c.yaml ? fill(*c.yaml, values) : ""));
  Outcome outcome = runKesm(words(fill(c.command, values)));
  CHECK(outcome.err == fill(c.stderr_text, values));
  CHECK(outcome.out == "");
  CHECK(outcome.status == 2);
  ::unlink(path.c_str());
}

TEST_CASE("config errors: a valid file whose topic exists passes validate --connect",
          "[integration][config]") {
  std::string path = writeTempFile("good.yaml", fill(valid(""), places()));
  Outcome outcome = runKesm({"validate", "--config", path, "--connect"});
  CHECK(outcome.err == "");
  CHECK(outcome.out == path + ": valid, 1 mapping(s); brokers answered and every topic exists\n");
  CHECK(outcome.status == 0);
  ::unlink(path.c_str());
}

TEST_CASE("config errors: the preflight never creates the topic it looks for",
          "[integration][config]") {
  // The mock cluster creates a topic that a client asks about by name when the client allows
  // it; asking twice shows whether the first check created it.
  std::string path =
      writeTempFile("made-up.yaml", fill(valid("", "$BOOTSTRAP", "[made-up]"), places()));
  for (int attempt = 1; attempt <= 2; ++attempt) {
    INFO("attempt " << attempt);
    Outcome outcome = runKesm({"validate", "--config", path, "--connect"});
    CHECK(outcome.err == path +
                             ":7:16: mappings[0].source.topics[0]: topic 'made-up' does not "
                             "exist on " +
                             cluster().bootstrapServers() + "\n");
    CHECK(outcome.status == 2);
  }
  ::unlink(path.c_str());
}

TEST_CASE("config errors: files that once took gigabytes are refused fast, in little memory",
          "[integration][config]") {
  // Before the bounds (issue 13): an alias bomb of 900 bytes and a 44 MB list of topics took
  // gigabytes, /dev/zero grew without end.
  std::string bomb = "mappings:\n"
                     "  - name: orders\n"
                     "    source: {bootstrapServers: k:9092, topics: [orders]}\n"
                     "    function: {url: 'http://fn:8080/'}\n"
                     "    filters:\n"
                     "      - value:\n"
                     "          l0: &l0 {x: [1], y: [2], z: [3], w: [4]}\n";
  for (int i = 1; i <= 14; ++i) {
    std::string prev = "*l" + std::to_string(i - 1);
    bomb += "          l" + std::to_string(i) + ": &l" + std::to_string(i) + " {p: " + prev +
            ", q: " + prev + ", r: " + prev + ", s: " + prev + "}\n";
  }
  std::string topics = "mappings:\n"
                       "  - name: orders\n"
                       "    function: {url: 'http://fn:8080/'}\n"
                       "    source:\n"
                       "      bootstrapServers: k:9092\n"
                       "      topics:\n";
  topics.reserve(45'000'000);
  for (int i = 0; topics.size() < 44'000'000; ++i) {
    topics += "        - topic-" + std::to_string(i) + "\n";
  }
  struct Case {
    const char* name;
    std::string path;
  };
  std::vector<Case> cases{
      {"alias bomb", writeTempFile("bomb.yaml", bomb)},
      {"44 MB of topics", writeTempFile("topics.yaml", topics)},
      {"/dev/zero", "/dev/zero"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    Outcome outcome = runKesm({"validate", "--config", c.path}, 30s);
    CHECK(outcome.status == 2);
    CHECK(outcome.err.find("the file") != std::string::npos); // one of the bounds' messages
    CHECK(outcome.took < 10s);
    CHECK(outcome.max_rss_kb < 64 * 1024);
    if (c.path != "/dev/zero") {
      ::unlink(c.path.c_str());
    }
  }
}

// ---- the command line (issue 13) ----

TEST_CASE("command line: --help and -h print the usage and exit 0 for every command",
          "[integration][cli]") {
  auto command =
      GENERATE(as<std::string>{}, "run", "validate", "demo", "sample-function", "version", "help");
  auto flag = GENERATE(as<std::string>{}, "--help", "-h");
  INFO(command << " " << flag);
  Outcome outcome = runKesm({command, flag});
  CHECK(outcome.status == 0);
  CHECK(outcome.out.rfind("kesm — a Kafka event source mapping", 0) == 0);
  CHECK(outcome.err == "");
}

TEST_CASE("command line: usage errors say what is wrong and exit 2", "[integration][cli]") {
  struct Case {
    std::vector<std::string> args;
    std::string first_line; // of stderr; the usage follows
  };
  auto c = GENERATE(values<Case>({
      {{"run", "--x"}, "kesm run: unknown option --x"},
      {{"run", "--config"}, "kesm run: option --config needs a value"},
      {{"validate", "--conect"}, "kesm validate: unknown option --conect"},
      {{"run", "--live=yes", "--config", "k.yaml"}, "kesm run: option --live takes no value"},
      {{"sample-function", "9000"}, "kesm sample-function: unexpected argument '9000'"},
      {{"frobnicate"}, "kesm: unknown command 'frobnicate'"},
  }));
  std::string joined;
  for (const auto& a : c.args) {
    joined += a + " ";
  }
  INFO(joined);
  Outcome outcome = runKesm(c.args);
  CHECK(outcome.status == 2);
  CHECK(outcome.err.substr(0, outcome.err.find('\n')) == c.first_line);
  CHECK(outcome.err.find("usage:") != std::string::npos);
  CHECK(outcome.out == "");
}

TEST_CASE("command line: a preflight timeout of hundreds of hours is refused, not overflowed",
          "[integration][cli]") {
  std::string path = writeTempFile("timeout.yaml", fill(valid(""), places()));
  for (std::string value : {"500h", "61m", "0"}) {
    Outcome outcome =
        runKesm({"validate", "--config", path, "--connect", "--preflight-timeout", value});
    CHECK(outcome.status == 2);
    CHECK(outcome.err == "kesm validate: --preflight-timeout: expected a duration from 1ms to 1h "
                         "like 10s, got '" +
                             value + "'\n");
  }
  Outcome outcome =
      runKesm({"validate", "--config", path, "--connect", "--preflight-timeout", "1h"});
  CHECK(outcome.status == 0);
  ::unlink(path.c_str());
}

TEST_CASE("command line: sample-function exits 2 on a --listen it cannot use",
          "[integration][cli]") {
  for (std::string listen : {"abc", "127.0.0.1:99999"}) {
    Outcome outcome = runKesm({"sample-function", "--listen", listen}, 10s);
    CHECK(outcome.status == 2);
    CHECK(outcome.err.rfind("kesm sample-function: listen address '" + listen + "'", 0) == 0);
  }
}

TEST_CASE("command line: kesm demo runs from any directory, with its built-in config",
          "[integration][cli]") {
  Outcome outcome =
      runKesm({"demo", "--records", "200", "--partitions", "2", "--latency", "1ms"}, 120s, "/");
  INFO(outcome.err);
  CHECK(outcome.status == 0);
  CHECK(outcome.out.find("config examples/demo.yaml (built in)") != std::string::npos);
  CHECK(outcome.out.find("produced 200, the function received 200 distinct records") !=
        std::string::npos);
}
