#include "app/demo.h"

#include "app/demo_config.h"
#include "app/mock_kafka.h"
#include "app/runtime.h"
#include "common/log.h"
#include "config/config.h"
#include "kafka/kafka.h"
#include "samplefn/sample_function.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

namespace kesm::app {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Waits up to `timeout` for SIGINT/SIGTERM. True when one arrived.
bool signalled(const sigset_t& signals, milliseconds timeout) {
  timespec ts{static_cast<time_t>(timeout.count() / 1000),
              static_cast<long>((timeout.count() % 1000) * 1000000)};
  return sigtimedwait(&signals, nullptr, &ts) > 0;
}

std::string option(const std::map<std::string, std::string>& options, const std::string& key,
                   const std::string& fallback) {
  auto it = options.find(key);
  return it == options.end() ? fallback : it->second;
}

// A whole number from 1 to max; 0 when the text is not one.
long whole(const std::string& text, long max) {
  char* end = nullptr;
  errno = 0;
  long value = std::strtol(text.c_str(), &end, 10);
  bool ok = !text.empty() && *end == '\0' && errno == 0 && value >= 1 && value <= max;
  return ok ? value : 0;
}

} // namespace

int runDemo(const std::map<std::string, std::string>& options, const sigset_t& signals) {
  // Without --config, the copy of examples/demo.yaml built into the binary: the demo runs
  // from any directory.
  auto given = options.find("config");
  const std::string config_path = given == options.end() ? kDemoConfigName : given->second;
  config::Config config =
      given == options.end()
          ? config::parseConfig(kDemoConfig, kDemoConfigName, kafka::checkSetting)
          : config::loadConfigFile(config_path, kafka::checkSetting);
  const long records = whole(option(options, "records", "20000"), 10'000'000);
  const int partitions = static_cast<int>(whole(option(options, "partitions", "8"), 1000));
  auto latency = config::parseDuration(option(options, "latency", "200ms"));
  if (!latency || *latency > std::chrono::minutes(1) || records <= 0 || partitions <= 0) {
    std::cerr << "kesm demo: --records must be from 1 to 10000000, --partitions from 1 to 1000, "
                 "--latency a duration up to 1m like 50ms\n";
    return 2;
  }
  config::Mapping& mapping = config.mappings.at(0);
  config.mappings.resize(1);
  const std::string topic = mapping.source.topics.at(0);
  mapping.source.topics = {topic};

  MockKafkaCluster cluster(1);
  cluster.createTopic(topic, partitions);

  std::mutex seen_mutex;
  std::set<std::pair<int, long long>> seen;
  std::atomic<long long> deliveries{0};
  samplefn::SampleFunctionOptions fn_options;
  fn_options.latency = *latency;
  fn_options.on_batch = [&](const std::vector<samplefn::ReceivedRecord>& batch) {
    std::lock_guard lock(seen_mutex);
    for (const auto& r : batch) {
      seen.emplace(r.partition, r.offset);
    }
    deliveries += static_cast<long long>(batch.size());
  };
  samplefn::SampleFunction function(fn_options);

  mapping.source.bootstrap_servers = {cluster.bootstrapServers()};
  mapping.function.url = function.url();
  std::printf("kesm demo: mock Kafka at %s, topic '%s' with %d partitions\n"
              "           sample function at %s (%lld ms per batch)\n"
              "           config %s (bootstrapServers and function.url replaced by the "
              "embedded ones)\n"
              "           pollers: minimum %d, maximum %d; batch size %d\n\n",
              cluster.bootstrapServers().c_str(), topic.c_str(), partitions, function.url().c_str(),
              static_cast<long long>(latency->count()), config_path.c_str(),
              mapping.scaling.minimum_pollers, mapping.scaling.maximum_pollers,
              mapping.batching.batch_size);
  std::fflush(stdout);

  RuntimeOptions runtime_options;
  runtime_options.live_line = true;
  Runtime runtime(config, std::move(runtime_options));
  runtime.start();

  // Let the first pollers join before the burst, so the live line shows the reaction.
  auto deadline = steady_clock::now() + std::chrono::seconds(60);
  while (steady_clock::now() < deadline) {
    auto snap = runtime.snapshot();
    if (!snap.empty() && snap[0].running > 0) {
      break;
    }
    if (signalled(signals, milliseconds(200))) {
      runtime.stop();
      return 130;
    }
  }

  std::printf("\n>>> burst: producing %ld records of 1 KiB\n\n", records);
  std::fflush(stdout);
  auto burst_start = steady_clock::now();
  {
    Producer producer(cluster.bootstrapServers());
    std::string value(1024, 'x');
    for (long i = 0; i < records; ++i) {
      std::string head = "{\"order\":" + std::to_string(i) + "}";
      value.replace(0, head.size(), head);
      producer.produce(topic, static_cast<int>(i % partitions), "order-" + std::to_string(i),
                       value);
    }
    producer.flush(milliseconds(60000));
  }

  // Drained: every record committed and the lag probe agrees.
  bool drained = false;
  int peak_pollers = 0;
  deadline = steady_clock::now() + std::chrono::minutes(10);
  double drain_seconds = 0;
  while (steady_clock::now() < deadline) {
    auto snap = runtime.snapshot().at(0);
    peak_pollers = std::max(peak_pollers, snap.active);
    if (snap.committed >= static_cast<double>(records) && snap.lag && !snap.lag_stale &&
        snap.lag->total == 0) {
      drained = true;
      drain_seconds = std::chrono::duration<double>(steady_clock::now() - burst_start).count();
      break;
    }
    if (signalled(signals, milliseconds(200))) {
      break;
    }
  }
  if (drained) {
    std::printf("\n>>> drained in %.1f s; waiting for pollers to return to the minimum\n\n",
                drain_seconds);
    std::fflush(stdout);
    deadline = steady_clock::now() + std::chrono::seconds(120);
    while (steady_clock::now() < deadline) {
      auto snap = runtime.snapshot().at(0);
      if (snap.active <= mapping.scaling.minimum_pollers && snap.stopping == 0) {
        break;
      }
      if (signalled(signals, milliseconds(200))) {
        break;
      }
    }
  }
  runtime.stop();

  long long unique = 0;
  {
    std::lock_guard lock(seen_mutex);
    unique = static_cast<long long>(seen.size());
  }
  std::printf("\nkesm demo: produced %ld, the function received %lld distinct records "
              "(%lld deliveries, %lld duplicates), peak pollers %d, %s\n",
              records, unique, deliveries.load(), deliveries.load() - unique, peak_pollers,
              drained ? "all drained" : "NOT drained");
  return drained && unique == records ? 0 : 1;
}

} // namespace kesm::app
