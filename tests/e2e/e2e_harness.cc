#include "e2e_harness.h"

#include "app/mock_kafka.h"
#include "net/http.h"

#include <arpa/inet.h>
#include <array>
#include <cmath>
#include <cstdio>
#include <deque>
#include <exception>
#include <fstream>
#include <iostream>
#include <librdkafka/rdkafka.h>
#include <memory>
#include <netinet/in.h>
#include <random>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace kesm::test::e2e {

namespace {

std::string kafkaSh() { return std::string(KESM_SOURCE_DIR) + "/tests/e2e/kafka.sh"; }

std::string lastLine(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) {
      last = line;
    }
  }
  return last;
}

std::string startBroker(const std::string& dir, const std::string& kafka_version = "") {
  int status = 0;
  std::string version = kafka_version.empty() ? "" : " --kafka-version " + kafka_version;
  std::string out = runCommand(kafkaSh() + " start" + version + " --dir '" + dir + "'", status);
  if (status != 0) {
    throw std::runtime_error("kafka.sh start --dir " + dir + " failed (status " +
                             std::to_string(status) + ")");
  }
  return lastLine(out);
}

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using RdKafka = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;

RdKafka adminClient(const std::string& bootstrap) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    throw std::runtime_error(std::string("rd_kafka_new: ") + err);
  }
  return RdKafka(rk);
}

} // namespace

std::string runCommand(const std::string& command, int& status) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) {
    throw std::runtime_error("popen failed: " + command);
  }
  std::string out;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    out.append(buf.data(), n);
  }
  int rc = ::pclose(pipe);
  status = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  return out;
}

std::string sharedBrokerDir() {
  if (const char* dir = std::getenv("KESM_E2E_KAFKA_DIR"); dir && *dir) {
    return dir;
  }
  return KESM_E2E_KAFKA_DIR;
}

std::string brokerListener(const std::string& dir, const std::string& listener) {
  int status = 0;
  std::string out =
      runCommand(kafkaSh() + " bootstrap --listener " + listener + " --dir '" + dir + "'", status);
  if (status != 0) {
    throw std::runtime_error("the broker in " + dir + " has no " + listener + " listener");
  }
  return lastLine(out);
}

std::string brokerTlsDir(const std::string& dir) {
  int status = 0;
  std::string out = runCommand(kafkaSh() + " tls-dir --dir '" + dir + "'", status);
  if (status != 0) {
    throw std::runtime_error("the broker in " + dir + " has no TLS material");
  }
  return lastLine(out);
}

std::map<std::int32_t, std::int64_t> committedNow(const config::Mapping& mapping) {
  try {
    return committedOffsets(mapping);
  } catch (const std::exception&) {
    return {};
  }
}

std::string sharedBroker() {
  static const std::string bootstrap = startBroker(sharedBrokerDir());
  return bootstrap;
}

OwnBroker::OwnBroker(std::string dir, const std::string& kafka_version) : dir_(std::move(dir)) {
  int status = 0;
  runCommand(kafkaSh() + " stop --dir '" + dir_ + "' 2>/dev/null", status);
  bootstrap_ = startBroker(dir_, kafka_version);
}

OwnBroker::~OwnBroker() {
  int status = 0;
  runCommand(kafkaSh() + " stop --dir '" + dir_ + "'", status);
}

void OwnBroker::stopKeepingData() {
  int status = 0;
  runCommand(kafkaSh() + " stop --keep --dir '" + dir_ + "'", status);
  if (status != 0) {
    throw std::runtime_error("kafka.sh stop --keep failed");
  }
}

void OwnBroker::resume() {
  std::string bootstrap = startBroker(dir_);
  if (bootstrap != bootstrap_) {
    throw std::runtime_error("broker resumed on " + bootstrap + ", not " + bootstrap_);
  }
}

// Waits for the answer to one CreateTopics, DeleteTopics or CreatePartitions request on
// `queue`: "" when every topic succeeded, else the reason.
static std::string topicsResultError(rd_kafka_queue_t* queue) {
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 60000);
  if (!ev) {
    return "no answer within 60 s";
  }
  std::string error;
  if (rd_kafka_event_error(ev)) {
    error = rd_kafka_event_error_string(ev);
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** results = nullptr;
    if (const auto* created = rd_kafka_event_CreateTopics_result(ev)) {
      results = rd_kafka_CreateTopics_result_topics(created, &n);
    } else if (const auto* deleted = rd_kafka_event_DeleteTopics_result(ev)) {
      results = rd_kafka_DeleteTopics_result_topics(deleted, &n);
    } else if (const auto* grown = rd_kafka_event_CreatePartitions_result(ev)) {
      results = rd_kafka_CreatePartitions_result_topics(grown, &n);
    }
    for (size_t i = 0; i < n; ++i) {
      if (rd_kafka_topic_result_error(results[i])) {
        error = rd_kafka_topic_result_error_string(results[i]);
      }
    }
  }
  rd_kafka_event_destroy(ev);
  return error;
}

void deleteTopic(const std::string& bootstrap, const std::string& topic) {
  auto rk = adminClient(bootstrap);
  char err[512];
  rd_kafka_DeleteTopic_t* dt = rd_kafka_DeleteTopic_new(topic.c_str());
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk.get());
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_DELETETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, 30000, err, sizeof err);
  rd_kafka_DeleteTopics(rk.get(), &dt, 1, options, queue);
  std::string error = topicsResultError(queue);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_DeleteTopic_destroy(dt);
  rd_kafka_queue_destroy(queue);
  if (!error.empty()) {
    throw std::runtime_error("delete topic " + topic + ": " + error);
  }
}

// Metadata reaches every listener a little after CreateTopics or CreatePartitions answers.
static void waitForLeaders(rd_kafka_t* rk, const std::string& topic, int partitions) {
  bool led = waitUntil(30s, [&] {
    rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    bool ok = rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topics[0].partition_cnt == partitions;
    if (ok) {
      for (int i = 0; i < partitions; ++i) {
        ok = ok && md->topics[0].partitions[i].leader >= 0;
      }
    }
    if (md) {
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(t);
    return ok;
  });
  if (!led) {
    throw std::runtime_error("topic " + topic + " has no leaders after 30 s");
  }
}

void createTopic(const std::string& bootstrap, const std::string& topic, int partitions,
                 const std::map<std::string, std::string>& configs) {
  auto rk = adminClient(bootstrap);
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof err);
  if (!nt) {
    throw std::runtime_error(std::string("NewTopic: ") + err);
  }
  for (const auto& [name, value] : configs) {
    rd_kafka_NewTopic_set_config(nt, name.c_str(), value.c_str());
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk.get());
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, 30000, err, sizeof err);
  rd_kafka_CreateTopics(rk.get(), &nt, 1, options, queue);
  std::string error = topicsResultError(queue);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(queue);
  if (!error.empty()) {
    throw std::runtime_error("create topic " + topic + ": " + error);
  }
  waitForLeaders(rk.get(), topic, partitions);
}

void addPartitions(const std::string& bootstrap, const std::string& topic, int partitions) {
  auto rk = adminClient(bootstrap);
  char err[512];
  rd_kafka_NewPartitions_t* np =
      rd_kafka_NewPartitions_new(topic.c_str(), static_cast<size_t>(partitions), err, sizeof err);
  if (!np) {
    throw std::runtime_error(std::string("NewPartitions: ") + err);
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk.get());
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
  rd_kafka_AdminOptions_set_operation_timeout(options, 30000, err, sizeof err);
  rd_kafka_CreatePartitions(rk.get(), &np, 1, options, queue);
  std::string error = topicsResultError(queue);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewPartitions_destroy(np);
  rd_kafka_queue_destroy(queue);
  if (!error.empty()) {
    throw std::runtime_error("add partitions to " + topic + ": " + error);
  }
  waitForLeaders(rk.get(), topic, partitions);
}

std::map<std::int32_t, std::int64_t> highWatermarks(const std::string& bootstrap,
                                                    const std::string& topic, int partitions) {
  auto rk = adminClient(bootstrap);
  std::map<std::int32_t, std::int64_t> out;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    auto err = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &low, &high, 10000);
    if (err) {
      throw std::runtime_error(std::string("watermarks: ") + rd_kafka_err2str(err));
    }
    out[p] = high;
  }
  return out;
}

std::map<std::int32_t, ToolRow> kafkaToolOffsets(const std::string& broker_dir,
                                                 const std::string& group,
                                                 const std::string& topic) {
  int status = 0;
  std::string out =
      runCommand(kafkaSh() + " group-lag --dir '" + broker_dir + "' '" + group + "'", status);
  if (status != 0) {
    throw std::runtime_error("ConsumerGroupCommand failed:\n" + out);
  }
  // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
  auto number = [](const std::string& field) -> std::int64_t {
    return field == "-" ? -1 : std::stoll(field);
  };
  std::map<std::int32_t, ToolRow> rows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string g, t, partition, current, end, lag;
    if (!(fields >> g >> t >> partition >> current >> end >> lag) || g != group || t != topic) {
      continue;
    }
    rows[std::stoi(partition)] = {number(current), number(end), number(lag)};
  }
  return rows;
}

std::uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string uniqueName(const std::string& prefix) {
  std::random_device rd;
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 100000);
}

Get httpGet(std::uint16_t port, const std::string& target) {
  net::HttpClient client(net::parseHttpUrl("http://127.0.0.1:" + std::to_string(port) + "/"));
  auto result = client.request("GET", target, "", {}, 3s);
  if (!result.transportOk()) {
    return {};
  }
  return {result.response.status, result.response.body};
}

double metric(const std::string& exposition, const std::string& name,
              const std::map<std::string, std::string>& labels) {
  std::istringstream in(exposition);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size() ||
        (line[name.size()] != '{' && line[name.size()] != ' ')) {
      continue;
    }
    bool all = true;
    for (const auto& [key, value] : labels) {
      if (line.find(key + "=\"" + value + "\"") == std::string::npos) {
        all = false;
        break;
      }
    }
    if (all) {
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return std::nan("");
}

MappingYaml e2eMapping(const std::string& name, const std::string& bootstrap,
                       const std::string& topic, const std::string& url, int min_pollers,
                       int max_pollers) {
  MappingYaml m = testMapping(name, bootstrap, topic, url, min_pollers, max_pollers);
  m.source.set("startingPosition", "TRIM_HORIZON");
  m.librdkafka.set("session.timeout.ms", 6000).set("debug", "cgrp");
  m.scaling.set("evaluationInterval", "1s").set("scaleDownStabilization", "10s");
  m.retry.set("initialBackoff", "100ms").set("maximumBackoff", "1s");
  return m;
}

std::string e2eConfigYaml(std::uint16_t port, const std::vector<MappingYaml>& mappings) {
  return ConfigYaml{.listen = "127.0.0.1:" + std::to_string(port), .mappings = mappings}.str();
}

DumpLogOnFailure::~DumpLogOnFailure() {
  if (std::uncaught_exceptions() == 0) {
    return;
  }
  std::ifstream in(path_);
  std::deque<std::string> tail;
  for (std::string line; std::getline(in, line);) {
    tail.push_back(line);
    if (tail.size() > 150) {
      tail.pop_front();
    }
  }
  std::cerr << "---- last " << tail.size() << " lines of " << path_ << " ----\n";
  for (const auto& line : tail) {
    std::cerr << line << "\n";
  }
}

} // namespace kesm::test::e2e
