// Real AWS Lambda runtimes behind kesm: the Lambda Runtime Interface Emulator (RIE) running a
// Python handler (awslambdaric + aws-lambda-powertools) and a Go handler (aws-lambda-go),
// built by tests/e2e/lambda/runtimes.sh. The handlers write what their libraries decoded;
// these tests compare it, byte for byte, with what was produced to the real broker. Tagged
// [lambda]: ctest runs them after the fixture "e2e: build the Lambda runtimes".

#include "../integration/hostile_records.h"
#include "app/mock_kafka.h"
#include "common/json.h"
#include "e2e_harness.h"
#include "invoker/payload.h"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <optional>
#include <set>
#include <spawn.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using namespace kesm;
using namespace kesm::test;
using namespace kesm::test::e2e;

namespace {

std::string lambdaDir() { return KESM_LAMBDA_DIR; }
std::string handlerDir() { return std::string(KESM_SOURCE_DIR) + "/tests/e2e/lambda"; }

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool portOpen(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool open = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return open;
}

// One RIE running one handler as its child. Its own process group, so that the handler dies
// with it. One RIE serves one invoke at a time (a second concurrent invoke crashes this
// version with a nil dereference), so the mappings here run one poller and one batch.
class Rie {
public:
  Rie(const std::vector<std::string>& command, const std::map<std::string, std::string>& env,
      const std::string& log_path)
      : port_(freePort()), log_path_(log_path) {
    std::vector<std::string> args = {lambdaDir() + "/bin/aws-lambda-rie",
                                     "--runtime-interface-emulator-address",
                                     "127.0.0.1:" + std::to_string(port_),
                                     "--runtime-api-address",
                                     "127.0.0.1:" + std::to_string(freePort()),
                                     "--log-level",
                                     "info"};
    args.insert(args.end(), command.begin(), command.end());
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      env_strings.emplace_back(*e);
    }
    for (const auto& [k, v] : env) {
      env_strings.push_back(k + "=" + v);
    }
    std::vector<char*> argv, envp;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    for (auto& e : env_strings) {
      envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t empty;
    sigemptyset(&empty);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    int rc = posix_spawn(&pid_, argv[0], &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      throw std::runtime_error("cannot start " + args[0] +
                               " (run tests/e2e/lambda/runtimes.sh "
                               "setup)");
    }
    if (!waitUntil(30s, [&] { return portOpen(port_); })) {
      throw std::runtime_error("the Lambda emulator did not listen within 30 s:\n" +
                               readFile(log_path_));
    }
  }
  ~Rie() {
    ::kill(-pid_, SIGTERM);
    int status = 0;
    bool gone = waitUntil(
        5s, [&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, 50ms);
    if (!gone) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    ::kill(-pid_, SIGKILL); // the handler, should it have outlived the emulator
  }
  Rie(const Rie&) = delete;
  Rie& operator=(const Rie&) = delete;

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) +
           "/2015-03-31/functions/function/invocations";
  }
  std::string log() const { return readFile(log_path_); }

private:
  std::uint16_t port_;
  std::string log_path_;
  pid_t pid_ = -1;
};

std::vector<std::string> pythonHandler(const std::string& function) {
  return {lambdaDir() + "/venv/bin/python", "-m", "awslambdaric", "handlers." + function};
}

std::map<std::string, std::string> pythonEnv(const std::string& out) {
  return {{"KESM_LAMBDA_OUT", out},
          {"PYTHONPATH", handlerDir() + "/python"},
          {"PYTHONDONTWRITEBYTECODE", "1"}};
}

std::string unhex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// RFC 3629 UTF-8, as Python's strict decoder takes it.
bool validUtf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c >> 5) == 0x6) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c >> 4) == 0xe) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c >> 3) == 0x1e) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xc0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (b & 0x3f);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

std::vector<json::Value> readJsonLines(const std::string& path) {
  // Only whole lines: a handler may be appending the last one right now.
  std::vector<json::Value> lines;
  const std::string content = readFile(path);
  std::size_t start = 0;
  for (std::size_t end = content.find('\n'); end != std::string::npos;
       start = end + 1, end = content.find('\n', start)) {
    if (end > start) {
      lines.push_back(json::parse(std::string_view(content).substr(start, end - start)));
    }
  }
  return lines;
}

// One line a handler wrote: what one library decoded of one record. Absent fields: nullopt.
struct DecodedHeader {
  std::string name; // bytes, kesm's escape of non-UTF-8 names undone
  std::optional<std::string> value;
  std::string error;
};
struct Decoded {
  std::string api;
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::optional<std::string> key, value;
  std::string key_error, value_error, headers_error, record_error, envelope_error;
  std::vector<DecodedHeader> headers;
};

std::string text(const json::Value* v) {
  return v != nullptr && v->kind == json::Value::Kind::kString ? v->text : std::string();
}
std::optional<std::string> bytesOrNull(const json::Value* v) {
  if (v == nullptr || v->isNull()) {
    return std::nullopt;
  }
  return unhex(v->text);
}

std::vector<Decoded> readDecoded(const std::string& path) {
  std::vector<Decoded> out;
  for (const json::Value& v : readJsonLines(path)) {
    Decoded d;
    d.api = text(v.find("api"));
    d.topic = text(v.find("topic"));
    d.partition = std::stoi(v.find("partition")->text);
    d.offset = std::stoll(v.find("offset")->text);
    d.key = bytesOrNull(v.find("key"));
    d.value = bytesOrNull(v.find("value"));
    d.key_error = text(v.find("key_error"));
    d.value_error = text(v.find("value_error"));
    d.headers_error = text(v.find("headers_error"));
    d.record_error = text(v.find("record_error"));
    d.envelope_error = text(v.find("envelope_error"));
    if (const json::Value* hs = v.find("headers"); hs != nullptr) {
      for (const json::Value& h : hs->items) {
        DecodedHeader dh;
        dh.name = invoker::jsonStringBytes(unhex(h.items.at(0).text));
        dh.value = bytesOrNull(&h.items.at(1));
        dh.error = h.items.size() > 2 ? h.items[2].text : "";
        d.headers.push_back(dh);
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

// api -> (partition, offset) -> first decoding; and arrival order per api and partition.
struct Seen {
  std::map<std::string, std::map<std::pair<std::int32_t, std::int64_t>, Decoded>> first;
  std::map<std::string, std::map<std::int32_t, std::vector<std::int64_t>>> order;
};
Seen collect(const std::vector<Decoded>& lines) {
  Seen seen;
  for (const Decoded& d : lines) {
    seen.first[d.api].try_emplace({d.partition, d.offset}, d);
    seen.order[d.api][d.partition].push_back(d.offset);
  }
  return seen;
}

// How each library represents what it cannot tell apart or cannot decode (its own limits,
// found in its source; docs/reliability.md): a tombstone (null value) and a null header
// value. `api`: dataclass (powertools KafkaEvent through BatchProcessor), pydantic
// (KafkaRecordModel), consumer_records (kafka_consumer / ConsumerRecords), go
// (aws-lambda-go events.KafkaEvent).
void checkRecord(const std::string& api, const Hostile& h, const Decoded& got) {
  INFO("api " << api << ", partition " << got.partition << " offset " << got.offset << ": "
              << h.what);
  if (api == "pydantic") {
    INFO("envelope error: " << got.envelope_error);
    CHECK(got.envelope_error.empty());
    if (!got.record_error.empty()) {
      // The model needs a value that is UTF-8 text (kesm sends a tombstone as "" and a null
      // header value as [], which it reads).
      INFO("record error: " << got.record_error);
      CHECK((h.value && !validUtf8(*h.value)));
      return;
    }
  }
  // Key.
  std::optional<std::string> want_key = h.key;
  if (api == "go" && !want_key) {
    want_key = ""; // string field: absent and null decode to ""
  }
  if (api == "consumer_records") {
    if (want_key && want_key->empty()) {
      want_key.reset(); // ConsumerRecords: `if not key: return None`
    }
    if (want_key && !validUtf8(*want_key)) {
      INFO("key error: " << got.key_error);
      CHECK(!got.key_error.empty()); // its default deserializer decodes UTF-8 text only
      want_key.reset();
    }
  }
  if (got.key_error.empty()) {
    INFO("key sent " << describe(h.key) << ", decoded " << describe(got.key));
    CHECK(got.key == want_key);
  }
  // Value.
  if (!h.value) {
    // A tombstone: kesm sends "value":"" (function.nullValues: empty, the default), which
    // every one of these readers decodes as an empty value; none may raise.
    INFO("tombstone decoded as " << describe(got.value) << ", error " << got.value_error);
    CHECK(got.value_error.empty());
    CHECK(
        (got.value == std::optional<std::string>("") || (api == "consumer_records" && !got.value)));
  } else if (api == "consumer_records" && !validUtf8(*h.value)) {
    INFO("value error: " << got.value_error);
    CHECK(!got.value_error.empty());
  } else {
    INFO("value error: " << got.value_error);
    REQUIRE(got.value_error.empty());
    INFO("value sent " << describe(h.value) << ", decoded " << describe(got.value));
    CHECK(got.value == h.value);
  }
  if (api == "consumer_records") {
    return; // its headers are a case-insensitive dict; the other three read them in order
  }
  // Headers, in order, duplicates kept.
  INFO("headers error: " << got.headers_error);
  REQUIRE(got.headers_error.empty());
  const std::vector<Header>& want = h.expected_headers.empty() ? h.headers : h.expected_headers;
  REQUIRE(got.headers.size() == want.size());
  for (std::size_t k = 0; k < want.size(); ++k) {
    const DecodedHeader& g = got.headers[k];
    INFO("header " << k << ": name sent " << describe(want[k].key) << ", decoded "
                   << describe(g.name) << "; value sent " << describe(want[k].value) << ", decoded "
                   << describe(g.value) << " " << g.error);
    CHECK(g.name == want[k].key);
    // A null header value is sent as [] (the default nullValues): every reader gets "".
    CHECK(g.error.empty());
    CHECK(g.value == std::optional<std::string>(want[k].value.value_or("")));
  }
}

// One invocation at a time, 30 s for a cold runtime, no group debug log.
MappingYaml lambdaMapping(const std::string& name, const std::string& bootstrap,
                          const std::string& topic, const std::string& url) {
  MappingYaml m = e2eMapping(name, bootstrap, topic, url);
  m.librdkafka.erase("debug");
  m.function.set("timeout", "30s");
  m.scaling.set("maxConcurrentBatches", 1);
  return m;
}

} // namespace

TEST_CASE("Python and Go Lambda handlers decode every hostile record byte for byte",
          "[e2e][lambda]") {
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("lambda-hostile");
  constexpr int kPartitions = 2;
  createTopic(bootstrap, topic, kPartitions, {{"max.message.bytes", "4000000"}});
  const std::vector<Hostile> sent = hostileRecords();
  {
    app::Producer producer(bootstrap, {{"message.max.bytes", "4000000"}});
    for (int p = 0; p < kPartitions; ++p) {
      for (const Hostile& h : sent) {
        producer.produce(topic, p, h.key, h.value, h.headers);
      }
    }
    producer.flush(60s);
  }

  const std::string py_out = writeTempFile("lambda-py.jsonl", "");
  const std::string go_out = writeTempFile("lambda-go.jsonl", "");
  Rie python(pythonHandler("decode"), pythonEnv(py_out), writeTempFile("rie-py.log", ""));
  Rie go({lambdaDir() + "/bin/kesm-go-handler"}, {{"KESM_LAMBDA_OUT", go_out}},
         writeTempFile("rie-go.log", ""));

  std::vector<MappingYaml> specs;
  for (const auto& [suffix, rie] : {std::pair<std::string, Rie*>{"py", &python}, {"go", &go}}) {
    specs.push_back(lambdaMapping(topic + "-" + suffix, bootstrap, topic, rie->url()));
  }
  const std::uint16_t port = freePort();
  const std::string config = writeTempFile("lambda.yaml", e2eConfigYaml(port, specs));
  const std::string kesm_log = writeTempFile("lambda-kesm.log", "");
  DumpLogOnFailure dump(kesm_log);

  const std::vector<std::string> apis = {"dataclass", "pydantic", "consumer_records", "go"};
  const std::size_t want = sent.size() * kPartitions;
  KesmProcess kesm({"run", "--verbose", "--config", config}, kesm_log);
  auto decoded = [&] {
    Seen seen = collect(readDecoded(py_out));
    Seen go_seen = collect(readDecoded(go_out));
    seen.first["go"] = go_seen.first["go"];
    seen.order["go"] = go_seen.order["go"];
    return seen;
  };
  waitUntil(60s, [&] {
    Seen seen = decoded();
    for (const std::string& api : apis) {
      if (seen.first[api].size() < want) {
        return false;
      }
    }
    return true;
  });
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);

  INFO("Python emulator log:\n" << python.log().substr(0, 20000));
  INFO("Go emulator log:\n" << go.log().substr(0, 20000));
  Seen seen = decoded();
  for (const std::string& api : apis) {
    // Every record: a library that failed the whole event (the Go runtime does when it cannot
    // unmarshal it) decoded none.
    INFO(api << " decoded " << seen.first[api].size() << " of " << want << " records");
    CHECK(seen.first[api].size() == want);
    if (seen.first[api].size() != want) {
      continue;
    }
    // Per partition in offset order: first deliveries come 0, 1, 2, ... (a retry may repeat).
    for (const auto& [partition, offsets] : seen.order[api]) {
      std::int64_t next = 0;
      for (std::int64_t offset : offsets) {
        INFO(api << " partition " << partition << ": offset " << offset << " arrived when " << next
                 << " was next");
        REQUIRE(offset <= next);
        next = std::max(next, offset + 1);
      }
    }
    for (int p = 0; p < kPartitions; ++p) {
      for (std::size_t i = 0; i < sent.size(); ++i) {
        const Decoded& got = seen.first[api].at({p, static_cast<std::int64_t>(i)});
        CHECK(got.topic == topic);
        checkRecord(api, sent[i], got);
      }
    }
  }
}

TEST_CASE("A raising Python handler's records are retried and not committed until it stops",
          "[e2e][lambda]") {
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("lambda-raising");
  createTopic(bootstrap, topic, 1);
  constexpr int kRecords = 5;
  produceNumbered(bootstrap, topic, 1, kRecords);

  const std::string out = writeTempFile("lambda-raising.jsonl", "");
  const std::string flag = writeTempFile("lambda-raising.flag", "raise");
  auto env = pythonEnv(out);
  env["KESM_LAMBDA_RAISE_FLAG"] = flag;
  Rie rie(pythonHandler("raising"), env, writeTempFile("rie-raising.log", ""));

  const std::string group = "kesm-" + topic;
  const std::string config = writeTempFile(
      "raising.yaml", e2eConfigYaml(0, {lambdaMapping(topic, bootstrap, topic, rie.url())}));
  const std::string kesm_log = writeTempFile("raising-kesm.log", "");
  DumpLogOnFailure dump(kesm_log);

  // Invocations that saw offset 0, and whether the handler raised in them.
  auto invocations = [&](bool raised) {
    int n = 0;
    for (const json::Value& v : readJsonLines(out)) {
      if (v.find("offset")->text == "0" && v.find("raised")->boolean == raised) {
        ++n;
      }
    }
    return n;
  };
  // The group's committed offset of partition 0; -1 when none (also before the group exists).
  auto committed = [&]() -> std::int64_t {
    try {
      auto rows = kafkaToolOffsets(sharedBrokerDir(), group, topic);
      return rows.count(0) != 0 ? rows[0].committed : -1;
    } catch (const std::runtime_error& e) {
      if (std::string(e.what()).find("GroupIdNotFoundException") != std::string::npos) {
        return -1;
      }
      throw;
    }
  };

  KesmProcess kesm({"run", "--verbose", "--config", config}, kesm_log);
  // Retried: the handler sees the batch again and again. A kesm that took the emulator's 200
  // as success would commit after the first attempt instead.
  waitUntil(
      60s, [&] { return invocations(true) >= 3 || committed() > 0; }, 2s);
  INFO("emulator log:\n" << rie.log().substr(0, 20000));
  INFO("raising invocations: " << invocations(true));
  const std::int64_t while_raising = committed();
  INFO("committed offset while the handler raises: " << while_raising);
  CHECK(while_raising <= 0);
  REQUIRE(invocations(true) >= 3);
  CHECK(invocations(false) == 0);

  // The handler stops raising: the same records arrive, and the group commits past them.
  std::remove(flag.c_str());
  REQUIRE(waitUntil(60s, [&] { return invocations(false) >= 1; }));
  REQUIRE(waitUntil(
      60s, [&] { return committed() == kRecords; }, 1s));
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);

  std::set<std::int64_t> delivered;
  for (const json::Value& v : readJsonLines(out)) {
    if (!v.find("raised")->boolean) {
      delivered.insert(std::stoll(v.find("offset")->text));
    }
  }
  CHECK(delivered == std::set<std::int64_t>{0, 1, 2, 3, 4});
}

TEST_CASE("powertools' BatchProcessor(EventType.Kafka) under the Lambda emulator: only each "
          "partition's rest from its first failed record is sent again, nothing is lost",
          "[e2e][lambda]") {
  const std::string bootstrap = sharedBroker();
  const std::string topic = uniqueName("lambda-partial");
  constexpr int kPartitions = 2;
  constexpr std::int64_t kRecords = 30; // per partition
  createTopic(bootstrap, topic, kPartitions);
  // Two failures in partition 0 (the lower is where it resumes), one in partition 1, each
  // failing the first time the handler sees it.
  const std::set<std::pair<int, std::int64_t>> fail_once = {{0, 4}, {0, 9}, {1, 21}};
  {
    app::Producer producer(bootstrap);
    for (std::int64_t i = 0; i < kRecords; ++i) {
      for (int p = 0; p < kPartitions; ++p) {
        std::string value = "p" + std::to_string(p) + "-" + std::to_string(i);
        producer.produce(topic, p, "k" + std::to_string(i),
                         fail_once.count({p, i}) ? value + " fail-once" : value);
      }
    }
    producer.flush(60s);
  }
  const std::string out = writeTempFile("lambda-partial.jsonl", "");
  auto env = pythonEnv(out);
  env["KESM_LAMBDA_FAILED"] = writeTempFile("lambda-partial.failed", "");
  Rie rie(pythonHandler("partial"), env, writeTempFile("rie-partial.log", ""));
  MappingYaml mapping = lambdaMapping(topic, bootstrap, topic, rie.url());
  mapping.extra_lines = "    functionResponseTypes: [ReportBatchItemFailures]\n";
  // Small batches, so that a failure has records after it in other batches too.
  mapping.batching.set("batchSize", 8);
  const std::string config = writeTempFile("partial.yaml", e2eConfigYaml(0, {mapping}));
  const std::string kesm_log = writeTempFile("partial-kesm.log", "");
  DumpLogOnFailure dump(kesm_log);

  const std::string group = "kesm-" + topic;
  auto committed = [&](int partition) -> std::int64_t {
    try {
      auto rows = kafkaToolOffsets(sharedBrokerDir(), group, topic);
      return rows.count(partition) != 0 ? rows[partition].committed : -1;
    } catch (const std::runtime_error& e) {
      if (std::string(e.what()).find("GroupIdNotFoundException") != std::string::npos) {
        return -1;
      }
      throw;
    }
  };
  KesmProcess kesm({"run", "--verbose", "--config", config}, kesm_log);
  bool done = waitUntil(
      120s, [&] { return committed(0) == kRecords && committed(1) == kRecords; }, 1s);
  INFO("emulator log:\n" << rie.log().substr(0, 20000));
  kesm.signal(SIGTERM);
  CHECK(kesm.wait(30s) == 0);
  REQUIRE(done);

  // Each invocation's records per partition, in the order the invocations ran.
  struct Slice {
    std::vector<std::int64_t> offsets;
    std::optional<std::int64_t> first_failure;
  };
  std::vector<std::string> order;
  std::map<std::string, std::map<int, Slice>> invocations;
  std::set<std::pair<int, std::int64_t>> succeeded;
  std::map<std::pair<int, std::int64_t>, int> failures;
  for (const json::Value& v : readJsonLines(out)) {
    const std::string id = v.find("invocation")->text;
    if (!invocations.count(id)) {
      order.push_back(id);
    }
    const int p = std::stoi(v.find("partition")->text);
    const std::int64_t offset = std::stoll(v.find("offset")->text);
    Slice& slice = invocations[id][p];
    slice.offsets.push_back(offset);
    if (v.find("failed")->boolean) {
      failures[{p, offset}]++;
      if (!slice.first_failure) {
        slice.first_failure = offset;
      }
    } else {
      succeeded.insert({p, offset});
    }
  }
  // Every record succeeded; the chosen ones failed exactly once first.
  CHECK(succeeded.size() == static_cast<std::size_t>(kPartitions * kRecords));
  for (const auto& f : fail_once) {
    CHECK(failures[f] == 1);
  }
  CHECK(failures.size() == fail_once.size());
  // Per partition: contiguous slices in offset order, each starting right after the previous
  // one, or at the previous one's first failure. So nothing before a failure was sent again,
  // and a partition without a failure was sent once.
  std::map<int, std::int64_t> next;
  std::map<int, std::size_t> sent;
  for (const std::string& id : order) {
    for (const auto& [p, slice] : invocations[id]) {
      INFO("invocation " << id << " partition " << p << " from " << slice.offsets.front());
      CHECK(slice.offsets.front() == next[p]);
      for (std::size_t i = 1; i < slice.offsets.size(); ++i) {
        CHECK(slice.offsets[i] == slice.offsets[i - 1] + 1);
      }
      next[p] = slice.first_failure ? *slice.first_failure : slice.offsets.back() + 1;
      sent[p] += slice.offsets.size();
    }
  }
  CHECK(next[0] == kRecords);
  CHECK(next[1] == kRecords);
  // Sent again: only records from a failure to the end of its batch's slice.
  CHECK(sent[0] > static_cast<std::size_t>(kRecords));
  CHECK(sent[1] > static_cast<std::size_t>(kRecords));
}
