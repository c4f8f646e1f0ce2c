#include "poller/poller.h"

#include "common/log.h"
#include "common/resources.h"
#include "filter/filter.h"
#include "invoker/payload.h"
#include "invoker/retry_policy.h"
#include "poller/batcher.h"
#include "poller/failure_policy.h"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <poll.h>
#include <random>
#include <set>
#include <stdexcept>
#include <sys/eventfd.h>
#include <thread>
#include <unistd.h>

namespace kesm::poller {

using std::chrono::milliseconds;
using time_point = Clock::time_point;

const char* toString(PollerState state) {
  switch (state) {
  case PollerState::kStarting:
    return "starting";
  case PollerState::kRunning:
    return "running";
  case PollerState::kStopping:
    return "stopping";
  case PollerState::kStopped:
    return "stopped";
  }
  return "unknown";
}

namespace {

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) {
      out += sep;
    }
    out += item;
  }
  return out;
}

// Runs one invocation attempt at a time on its own thread, so that the poller thread keeps
// serving the consumer (heartbeats, rebalances) while a slow function runs.
class InvokeWorker {
public:
  struct Outcome {
    invoker::InvokeResult result;
    std::chrono::duration<double> elapsed{};
  };

  InvokeWorker(std::unique_ptr<invoker::FunctionInvoker> invoker, std::function<void()> wake)
      : invoker_(std::move(invoker)), wake_(std::move(wake)), thread_([this] { run(); }) {}

  ~InvokeWorker() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    // Bounded: an attempt in flight ends at the latest at the function timeout.
    thread_.join();
  }

  void submit(std::shared_ptr<const Batch> batch) { submitJob(Job{std::move(batch), {}}); }

  // Any other blocking step of a batch (the write to the on-failure destination).
  void submitTask(std::function<invoker::InvokeResult()> task) {
    submitJob(Job{nullptr, std::move(task)});
  }

  bool busy() const {
    std::lock_guard lock(mutex_);
    return busy_;
  }

  std::optional<Outcome> take() {
    std::lock_guard lock(mutex_);
    auto out = std::move(result_);
    result_.reset();
    return out;
  }

  // Waits until the current attempt has finished or the deadline passes.
  std::optional<Outcome> waitFor(time_point deadline) {
    std::unique_lock lock(mutex_);
    cv_.wait_until(lock, deadline, [this] { return !busy_; });
    auto out = std::move(result_);
    result_.reset();
    return out;
  }

  // The result of the attempt now running will be dropped (its batch was abandoned).
  void discardCurrent() {
    std::lock_guard lock(mutex_);
    discard_ = busy_;
    result_.reset();
  }

private:
  struct Job {
    std::shared_ptr<const Batch> batch;
    std::function<invoker::InvokeResult()> task;
  };

  void submitJob(Job job) {
    {
      std::lock_guard lock(mutex_);
      job_ = std::move(job);
      busy_ = true;
      result_.reset();
    }
    cv_.notify_all();
  }

  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || job_.has_value(); });
      if (stop_) {
        return;
      }
      Job job = std::move(*job_);
      job_.reset();
      lock.unlock();
      auto started = std::chrono::steady_clock::now();
      invoker::InvokeResult result = job.task ? job.task() : invoker_->invoke(*job.batch);
      auto elapsed = std::chrono::steady_clock::now() - started;
      lock.lock();
      if (!discard_) {
        result_ = Outcome{std::move(result), elapsed};
      }
      discard_ = false;
      busy_ = false;
      cv_.notify_all();
      if (wake_) {
        wake_();
      }
    }
  }

  std::unique_ptr<invoker::FunctionInvoker> invoker_;
  std::function<void()> wake_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<Job> job_;
  std::optional<Outcome> result_;
  bool busy_ = false;
  bool discard_ = false;
  bool stop_ = false;
  std::thread thread_;
};

Record toRecord(const rd_kafka_message_t& m) {
  Record r;
  r.topic = rd_kafka_topic_name(m.rkt);
  r.partition = Partition{m.partition};
  r.offset = Offset{m.offset};
  rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
  r.timestamp_ms = rd_kafka_message_timestamp(&m, &type);
  switch (type) {
  case RD_KAFKA_TIMESTAMP_CREATE_TIME:
    r.timestamp_type = TimestampType::kCreateTime;
    break;
  case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME:
    r.timestamp_type = TimestampType::kLogAppendTime;
    break;
  default:
    r.timestamp_type = TimestampType::kNotAvailable;
  }
  if (m.key != nullptr) {
    r.key.emplace(static_cast<const char*>(m.key), m.key_len);
  }
  if (m.payload != nullptr) {
    r.value.emplace(static_cast<const char*>(m.payload), m.len);
  }
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      Header out;
      out.key = name;
      if (value != nullptr) {
        out.value.emplace(static_cast<const char*>(value), size);
      }
      r.headers.push_back(std::move(out));
    }
  }
  return r;
}

// How a write to the onFailure topic comes back through the invoke worker.
constexpr auto kDestinationRetriable = invoker::InvokeOutcome::kConnectionError;
constexpr auto kDestinationRefused = invoker::InvokeOutcome::kHttpError;

// What librdkafka writes to the eventfd when a queue becomes non-empty: an eventfd takes
// exactly one 8-byte counter increment per write.
const std::uint64_t kWakeValue = 1;

// The poller thread sleeps on one eventfd, signalled by librdkafka (consumer and partition
// queues) and by other threads (invocation finished, stop requested).
class WakeFd {
public:
  WakeFd() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) {
      throw ResourceError(std::string("cannot create a poller's eventfd: ") + std::strerror(errno) +
                          " (" + describeResources() + ")");
    }
  }
  ~WakeFd() { close(fd_); }
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;

  int get() const { return fd_; }

  void signal() {
    std::uint64_t one = 1;
    (void)!write(fd_, &one, sizeof one);
  }

  // Waits until signalled or the timeout passes, and resets the signal.
  void wait(milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) > 0) {
      std::uint64_t value = 0;
      (void)!read(fd_, &value, sizeof value);
    }
  }

private:
  int fd_;
};

struct PartitionRange {
  Offset first;
  Offset last;
  std::size_t records = 0; // in the batch; fewer than last - first + 1 where offsets have gaps
};

std::map<TopicPartition, PartitionRange> rangesOf(const Batch& batch) {
  std::map<TopicPartition, PartitionRange> ranges;
  for (const auto& r : batch.records) {
    TopicPartition tp{r.topic, r.partition};
    auto it = ranges.find(tp);
    if (it == ranges.end()) {
      ranges.emplace(tp, PartitionRange{r.offset, r.offset, 1});
    } else {
      it->second.last = r.offset;
      it->second.records++;
    }
  }
  return ranges;
}

} // namespace

void PartitionNotes::set(const TopicPartition& tp, std::string note) {
  std::lock_guard lock(mutex_);
  notes_[tp] = std::move(note);
}

void PartitionNotes::clear(const TopicPartition& tp) {
  std::lock_guard lock(mutex_);
  notes_.erase(tp);
}

std::map<TopicPartition, std::string> PartitionNotes::snapshot() const {
  std::lock_guard lock(mutex_);
  return notes_;
}

invoker::EventFormat eventFormat(const config::Mapping& mapping) {
  invoker::EventFormat format;
  format.nulls = mapping.function.null_values == config::NullValues::kOmit
                     ? invoker::NullStyle::kOmit
                     : invoker::NullStyle::kEmpty;
  return format;
}

std::vector<std::pair<std::string, std::string>> consumerSettings(const config::Mapping& mapping,
                                                                  const std::string& client_id) {
  const auto& s = mapping.source;
  std::vector<std::pair<std::string, std::string>> out{
      {"group.id", s.consumer_group_id},
      {"client.id", client_id},
      // Offsets are committed only after the function succeeded, as explicit lists.
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      // Where a partition without a usable committed offset starts when kesm did not choose
      // (LATEST and AT_TIMESTAMP choose at assignment), and where an offset retention deleted
      // resumes: never past records still in the log.
      {"auto.offset.reset", "earliest"},
      {"partition.assignment.strategy", s.partition_assignor},
      // Fast failover and rebalances; also what the mock cluster needs to form groups.
      {"session.timeout.ms", "6000"},
      {"heartbeat.interval.ms", "500"},
      // Bounded prefetch per partition (each has its own queue, see intake()): about two
      // batches by count and 2 MiB by bytes, per partition and per poller, so memory stays
      // bounded when a poller owns many lagging partitions or many pollers run (8 MiB each
      // took 1.5 GB at 100 pollers); a fetch response is at most 4 MiB.
      {"queued.min.messages", std::to_string(std::max(100, 2 * mapping.batching.batch_size))},
      {"queued.max.messages.kbytes", "2048"},
      {"fetch.max.bytes", "4194304"},
      {"socket.nagle.disable", "true"},
      {"log.connection.close", "false"},
      // Partitions added to a topic reach the group within 5 s, not librdkafka's 5 min: one
      // small Metadata request (the subscribed topics) per poller every 5 s.
      {"topic.metadata.refresh.interval.ms", "5000"},
  };
  // The cluster's address and security, then the user's map, which may override the above.
  for (auto& kv : config::kafkaClientSettings(s)) {
    out.push_back(std::move(kv));
  }
  return out;
}

struct Poller::Impl : public RdKafka::RebalanceCb, public RdKafka::EventCb {
  Impl(Poller& owner, PollerContext context)
      : owner_(owner), ctx_(std::move(context)),
        batcher_(BatcherLimits{static_cast<std::size_t>(ctx_.mapping.batching.batch_size),
                               ctx_.mapping.batching.maximum_batching_window,
                               ctx_.mapping.batching.maximum_payload_bytes},
                 makeSizer()),
        backoff_{ctx_.mapping.retry.initial_backoff, ctx_.mapping.retry.maximum_backoff,
                 ctx_.mapping.retry.backoff_multiplier, ctx_.mapping.retry.jitter},
        rng_(std::random_device{}()) {}

  PayloadSizer makeSizer() const {
    std::string servers = join(ctx_.mapping.source.bootstrap_servers, ",");
    PayloadSizer sizer;
    sizer.envelope_bytes = invoker::encodedEnvelopeOverhead(servers);
    sizer.record_bytes = [format = eventFormat(ctx_.mapping)](const Record& r) {
      return r.filtered ? std::size_t{0} : invoker::encodedRecordSize(r, format);
    };
    sizer.partition_bytes = [](const TopicPartition& tp) {
      return invoker::encodedPartitionOverhead(tp.topic, tp.partition);
    };
    return sizer;
  }

  // --- thread entry -------------------------------------------------------------------------

  void run() {
    try {
      runConsumer();
    } catch (const std::exception& e) {
      log(LogLevel::kError, "poller", ctx_.client_id, ": stopped on error: ", e.what());
    }
    in_flight_.clear();
    workers_.clear(); // joins: an attempt still running ends by the function timeout
    owner_.assigned_ = 0;
    owner_.state_ = PollerState::kStopped;
    {
      std::lock_guard lock(stopped_mutex_);
      stopped_ = true;
    }
    stopped_cv_.notify_all();
  }

  void runConsumer() {
    concurrency_limit_ = maxConcurrent();
    std::string err;
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    for (const auto& [key, value] : consumerSettings(ctx_.mapping, ctx_.client_id)) {
      if (conf->set(key, value, err) != RdKafka::Conf::CONF_OK) {
        throw std::runtime_error("librdkafka setting " + key + ": " + err);
      }
    }
    conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(this), err);
    conf->set("event_cb", static_cast<RdKafka::EventCb*>(this), err);
    consumer_.reset(createKafkaClient(
        "the Kafka client of poller " + ctx_.client_id,
        static_cast<int>(ctx_.mapping.source.bootstrap_servers.size()),
        [&] { return RdKafka::KafkaConsumer::create(conf.get(), err); }, [] {}));
    if (!consumer_) {
      throw std::runtime_error("cannot create consumer: " + err);
    }
    consumer_queue_ = rd_kafka_queue_get_consumer(consumer_->c_ptr());
    // Rebalances, errors and stray messages arrive on the consumer queue; it signals the
    // same eventfd as the partition queues and the invoke worker.
    rd_kafka_queue_io_event_enable(consumer_queue_, wake_fd_.get(), &kWakeValue, sizeof kWakeValue);
    commit_queue_ = rd_kafka_queue_new(consumer_->c_ptr());
    rd_kafka_queue_io_event_enable(commit_queue_, wake_fd_.get(), &kWakeValue, sizeof kWakeValue);

    RdKafka::ErrorCode code = consumer_->subscribe(ctx_.mapping.source.topics);
    if (code != RdKafka::ERR_NO_ERROR) {
      throw std::runtime_error("subscribe failed: " + RdKafka::err2str(code));
    }
    log(LogLevel::kInfo, "poller", ctx_.client_id, ": joining group ",
        ctx_.mapping.source.consumer_group_id);

    while (!stop_requested_.load()) {
      step();
    }
    shutdown();
  }

  // Called from any thread: the worker when an attempt ends, requestStop().
  void wake() { wake_fd_.signal(); }

  // One turn of the loop: wait for an event or a timer, serve the consumer, settle finished
  // attempts, take records the batcher has room for, and send what is due.
  void step() {
    wake_fd_.wait(pollTimeout(clock_.now()));
    serveConsumerQueue();
    serveCommitQueue(milliseconds(0));
    settleAttempts();
    dispatch();
    intake();
    dispatch();
    flushCommits();
    more_to_take_ = readableQueueLeft();
  }

  // librdkafka signals a queue's io event only when the queue goes from empty to non-empty,
  // so records intake left in a queue (no room then) never wake the poller again: without
  // this check they would wait for an unrelated event or the 100 ms poll timeout.
  bool readableQueueLeft() const {
    if (owner_.state_.load() != PollerState::kRunning || batcher_.size() >= holdLimit() ||
        batcher_.pendingBytes() >= holdBytesLimit()) {
      return false;
    }
    const auto per_partition =
        std::max<std::size_t>(1, static_cast<std::size_t>(ctx_.mapping.batching.batch_size));
    for (const auto& [tp, q] : partition_queues_) {
      if (batcher_.pendingOf(tp) < per_partition && rd_kafka_queue_length(q) > 0) {
        return true;
      }
    }
    return false;
  }

  // Serves rebalance callbacks and errors (and any message that reached the consumer queue
  // before its partition queue was split off) without blocking.
  void serveConsumerQueue() {
    for (int i = 0; i < 10000; ++i) {
      std::unique_ptr<RdKafka::Message> msg(consumer_->consume(0));
      if (msg->err() == RdKafka::ERR__TIMED_OUT) {
        return;
      }
      if (const auto* raw = static_cast<const rd_kafka_message_t*>(msg->c_ptr())) {
        handleMessage(*raw);
      } else {
        ctx_.probe->kafka_errors.Increment();
        log(LogLevel::kWarn, "poller", ctx_.client_id, ": consume error: ", msg->errstr());
      }
    }
  }

  // Reads from each owned partition's own queue only as much as the batcher has room for.
  // What stays in a partition queue counts against librdkafka's per-partition prefetch
  // bounds (queued.min.messages, queued.max.messages.kbytes), so fetching stops by itself
  // when the function is slower than Kafka: no pause/resume, which would drop the prefetch.
  void intake() {
    if (owner_.state_.load() != PollerState::kRunning || partition_queues_.empty()) {
      return;
    }
    const std::size_t cap = holdLimit();
    const std::size_t per_partition =
        std::max<std::size_t>(1, static_cast<std::size_t>(ctx_.mapping.batching.batch_size));
    std::vector<rd_kafka_message_t*> buffer(per_partition);
    // Rotate the starting partition so that a busy partition cannot starve the others.
    auto it = partition_queues_.upper_bound(intake_cursor_);
    for (std::size_t visited = 0; visited < partition_queues_.size(); ++visited, ++it) {
      if (it == partition_queues_.end()) {
        it = partition_queues_.begin();
      }
      if (batcher_.size() >= cap || batcher_.pendingBytes() >= holdBytesLimit()) {
        return;
      }
      intake_cursor_ = it->first;
      // At most one batch's worth per partition: a partition whose batch is in flight must
      // not fill the poller's hold and starve the partitions that could run meanwhile.
      std::size_t held = batcher_.pendingOf(it->first);
      if (held >= per_partition) {
        continue;
      }
      std::size_t want = std::min(per_partition - held, cap - batcher_.size());
      ssize_t n = rd_kafka_consume_batch_queue(it->second, 0, buffer.data(), want);
      for (ssize_t i = 0; i < n; ++i) {
        handleMessage(*buffer[static_cast<std::size_t>(i)]);
        rd_kafka_message_destroy(buffer[static_cast<std::size_t>(i)]);
      }
    }
  }

  milliseconds pollTimeout(time_point now) const {
    if (more_to_take_) {
      return milliseconds(0);
    }
    time_point next = now + milliseconds(100);
    for (const auto& f : in_flight_) {
      if (!f.running) {
        next = std::min(next, f.retry_at);
      }
    }
    if (in_flight_.size() < maxConcurrent()) {
      next = std::min(next, batcher_.windowDeadline(busyPartitions()));
    }
    if (hold_until_) {
      next = std::max(next, std::min(*hold_until_, now + milliseconds(100)));
    }
    auto wait = std::chrono::duration_cast<milliseconds>(next - now);
    return std::clamp(wait, milliseconds(0), milliseconds(100));
  }

  // Records a poller holds outside librdkafka: one batch per concurrent slot and the next one.
  std::size_t holdLimit() const {
    return (maxConcurrent() + 1) * static_cast<std::size_t>(ctx_.mapping.batching.batch_size);
  }

  std::size_t holdBytesLimit() const {
    return (maxConcurrent() + 1) * ctx_.mapping.batching.maximum_payload_bytes;
  }

  std::size_t maxConcurrent() const {
    return static_cast<std::size_t>(std::max(1, ctx_.mapping.scaling.max_concurrent_batches));
  }

  void handleMessage(const rd_kafka_message_t& msg) {
    switch (msg.err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      break;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
      return;
    default:
      ctx_.probe->kafka_errors.Increment();
      log(LogLevel::kWarn, "poller", ctx_.client_id,
          ": consume error: ", rd_kafka_message_errstr(&msg));
      if (isAccessRefused(msg.err)) {
        accessRefused(std::string("the cluster refused access: ") + rd_kafka_message_errstr(&msg));
      }
      return;
    }
    access_refused_since_.reset(); // a record arrived: access works
    if (owner_.state_.load() == PollerState::kStopping) {
      return; // not fetched for a batch any more; the next owner reads it again
    }
    TopicPartition tp{rd_kafka_topic_name(msg.rkt), Partition{msg.partition}};
    if (!owned_.count(tp)) {
      return; // a late message of a partition revoked meanwhile
    }
    auto expected = next_expected_.find(tp);
    if (expected != next_expected_.end() && msg.offset < expected->second.value()) {
      return; // already held: refetched after a rewind
    }
    next_expected_[tp] = Offset{msg.offset + 1};
    ctx_.probe->events_polled.Increment();
    Record record = toRecord(msg);
    if (ctx_.mapping.filters && !ctx_.mapping.filters->matches(record)) {
      record.filtered = true;
      // Only the offset matters now: keep no bytes for it.
      record.key.reset();
      record.value.reset();
      record.headers.clear();
    }
    batcher_.add(std::move(record), clock_.now());
  }

  // --- the batch in flight -------------------------------------------------------------------

  // A batch from its cut until it is committed or abandoned; it keeps its worker (and so
  // its HTTP connection) across retries. No two batches in flight share a partition. A batch
  // being bisected is a list of pieces, attempted one after the other, in offset order.
  struct InFlight {
    std::deque<std::shared_ptr<const Batch>> pieces;  // front: the piece being attempted
    std::map<TopicPartition, PartitionRange> ranges;  // what is still uncommitted
    std::map<TopicPartition, PartitionRange> covered; // the whole cut, filtered records too
    std::size_t filtered = 0;                         // records of the cut never sent
    int attempts = 0;                                 // attempts of the front piece, of any outcome
    int counted_failures = 0; // failures of the front piece that count as retries
    bool running = false;
    bool to_destination = false; // the front piece was given up: being written to onFailure
    int destination_attempts = 0;
    bool held = false; // can neither succeed nor be given up: sent nothing, holds its partitions
    std::string last_error;
    time_point retry_at{};
    InvokeWorker* worker = nullptr;
    const Batch& piece() const { return *pieces.front(); }
  };

  std::set<TopicPartition> busyPartitions() const {
    std::set<TopicPartition> busy;
    for (const auto& f : in_flight_) {
      for (const auto& [tp, range] : f.ranges) {
        busy.insert(tp);
      }
    }
    return busy;
  }

  // A worker no batch in flight holds and with no abandoned attempt still running on it;
  // created on demand, so a poller that never runs batches concurrently has one.
  InvokeWorker* freeWorker() {
    for (const auto& w : workers_) {
      bool held = std::any_of(in_flight_.begin(), in_flight_.end(),
                              [&](const InFlight& f) { return f.worker == w.get(); });
      if (!held && !w->busy()) {
        return w.get();
      }
    }
    // Abandoned attempts can keep workers busy until the function timeout: bounded still.
    if (workers_.size() >= 2 * maxConcurrent()) {
      return nullptr;
    }
    try {
      workers_.push_back(std::make_unique<InvokeWorker>(ctx_.make_invoker(), [this] { wake(); }));
    } catch (const std::system_error& e) {
      if (workers_.empty()) {
        throw ResourceError("cannot start the invoke worker of poller " + ctx_.client_id + ": " +
                            e.code().message() + " (" + describeResources() + ")");
      }
      // Out of threads: the batch waits for a worker this poller already has.
      if (!worker_refused_) {
        log(LogLevel::kWarn, "poller", ctx_.client_id, ": cannot start another invoke worker (",
            e.code().message(), "); batches wait for the ", workers_.size(), " it has");
      }
      worker_refused_ = true;
      return nullptr;
    }
    worker_refused_ = false;
    return workers_.back().get();
  }

  void submitAttempt(InFlight& f) {
    f.running = true;
    if (f.to_destination) {
      f.destination_attempts++;
      auto piece = f.pieces.front();
      FailureInfo info{ctx_.mapping.name, f.attempts, f.last_error, epochMillisNow()};
      auto sink = ctx_.dead_letters;
      f.worker->submitTask([sink, piece, info] {
        WriteResult written = sink->write(*piece, info);
        invoker::InvokeResult result;
        if (!written.ok()) {
          result.outcome =
              written.status == WriteStatus::kRefused ? kDestinationRefused : kDestinationRetriable;
          result.detail = written.error;
        }
        return result;
      });
      return;
    }
    f.attempts++;
    const Batch& piece = f.piece();
    ctx_.probe->events_invoked.Increment(static_cast<double>(piece.records.size()));
    if (f.attempts == 1) {
      ctx_.probe->batch_records.Observe(static_cast<double>(piece.records.size()));
      ctx_.probe->batch_bytes.Observe(static_cast<double>(piece.payload_bytes));
    }
    f.worker->submit(f.pieces.front());
  }

  void dispatch() {
    auto now = clock_.now();
    if (owner_.state_.load() != PollerState::kRunning || fatal_) {
      return;
    }
    if (hold_until_ && now < *hold_until_) {
      return;
    }
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      if (!it->running && !it->held && now >= it->retry_at && startAttempt(*it)) {
        it = in_flight_.erase(it);
      } else {
        ++it;
      }
    }
    while (in_flight_.size() < concurrencyLimit()) {
      auto busy = busyPartitions();
      if (!batcher_.ready(now, busy)) {
        return;
      }
      InvokeWorker* worker = freeWorker();
      if (worker == nullptr) {
        return;
      }
      Batch cut = batcher_.cut(busy);
      InFlight f;
      f.ranges = rangesOf(cut);
      f.covered = f.ranges;
      // Records that matched no filter are committed with their batch, never sent.
      auto sent = std::make_shared<Batch>();
      sent->payload_bytes = cut.payload_bytes;
      for (auto& r : cut.records) {
        if (r.filtered) {
          f.filtered++;
        } else {
          sent->records.push_back(std::move(r));
        }
      }
      if (f.filtered > 0) {
        ctx_.probe->events_filtered.Increment(static_cast<double>(f.filtered));
      }
      if (sent->records.empty()) {
        markCovered(f);
        flushCommits();
        continue;
      }
      f.pieces.push_back(std::move(sent));
      f.worker = worker;
      in_flight_.push_back(std::move(f));
      if (startAttempt(in_flight_.back())) {
        in_flight_.pop_back();
      }
    }
  }

  // Before sending: a record whose event alone passes the payload limit is never sent, and
  // records past maximumRecordAge are given up unsent (AWS discards them). True when the
  // batch is finished (given up and committed).
  bool startAttempt(InFlight& f) {
    if (!f.to_destination) {
      const Batch& piece = f.piece();
      if (piece.records.size() == 1 &&
          eventBytes(piece.records.front()) > ctx_.mapping.batching.maximum_payload_bytes) {
        return tooLarge(f, "");
      }
      // Only a bound needs the ages: no scan of the records on the usual path.
      if (ctx_.mapping.retry.maximum_record_age) {
        auto age = oldestAge(piece);
        if (expiredBeforeAttempt(ctx_.mapping.retry, age)) {
          f.last_error =
              "records " + std::to_string(age.count()) + " ms old, past maximumRecordAge: not sent";
          return giveUp(f);
        }
      }
    }
    submitAttempt(f);
    return false;
  }

  // The exact size of the event holding only this record.
  std::size_t eventBytes(const Record& r) const {
    return sizer_.envelope_bytes + sizer_.partition_bytes(TopicPartition{r.topic, r.partition}) +
           sizer_.record_bytes(r);
  }

  // One record that cannot be invoked (its event passes the limit, or the function answered
  // 413 for it alone): to onFailure, dropped when retries are bounded, else held visibly.
  bool tooLarge(InFlight& f, const std::string& answer) {
    const Record& r = f.piece().records.front();
    ctx_.probe->records_oversized.Increment();
    f.last_error = answer.empty()
                       ? "record too large: its event is " + std::to_string(eventBytes(r)) +
                             " bytes, above the " +
                             std::to_string(ctx_.mapping.batching.maximum_payload_bytes) +
                             "-byte invocation payload limit; never sent"
                       : "the function refuses this record as too large (" + answer + ")";
    log(LogLevel::kError, "poller", ctx_.client_id, ": ", r.topic, "-", r.partition.value(), "@",
        r.offset.value(), ": ", f.last_error);
    FailedAttempt failed;
    failed.failure = FailureClass::kTooLarge;
    failed.records = 1;
    failed.oldest_record_age = oldestAge(f.piece());
    if (nextStep(ctx_.mapping.retry, ctx_.dead_letters != nullptr, failed) == NextStep::kHold) {
      hold(f);
      return false;
    }
    return giveUp(f);
  }

  // Nothing can move this batch: no attempt, no commit past it, said in /status and the log.
  void hold(InFlight& f) {
    f.held = true;
    f.retry_at = time_point::max();
    note(f, "HELD: " + f.last_error +
                "; nothing after it is committed. Set onFailure, maximumRetryAttempts or "
                "maximumRecordAge and restart");
    log(LogLevel::kError, "poller", ctx_.client_id, ": partition(s) ", describe(f.ranges),
        " HELD: ", f.last_error,
        "; set onFailure, maximumRetryAttempts or maximumRecordAge and restart kesm");
  }

  void note(const InFlight& f, const std::string& text) {
    if (ctx_.notes) {
      for (const auto& [tp, range] : f.ranges) {
        ctx_.notes->set(tp, text);
      }
    }
  }

  void clearNotes(const std::map<TopicPartition, PartitionRange>& ranges) {
    if (ctx_.notes) {
      for (const auto& [tp, range] : ranges) {
        ctx_.notes->clear(tp);
      }
    }
  }

  // Takes finished attempts' results: commit on success, schedule a retry else.
  void settleAttempts() {
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      std::optional<InvokeWorker::Outcome> outcome;
      if (it->running) {
        outcome = it->worker->take();
      }
      if (outcome && settle(*it, *outcome)) {
        it = in_flight_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // True when every piece of the batch is settled and committed (the caller forgets it).
  bool settle(InFlight& f, const InvokeWorker::Outcome& outcome) {
    f.running = false;
    const auto& result = outcome.result;
    if (f.to_destination) {
      return settleDestinationWrite(f, result);
    }
    ctx_.probe->invocations(result.outcome).Increment();
    ctx_.probe->invocation_duration.Observe(outcome.elapsed.count());
    if (ctx_.invocations) {
      ctx_.invocations->add(outcome.elapsed.count());
    }
    const Batch& piece = f.piece();
    std::size_t n = piece.records.size();
    if (result.ok()) {
      if (concurrency_limit_ < maxConcurrent()) {
        concurrency_limit_++; // additive increase after a throttle
      }
      return pieceSucceeded(f);
    }
    ctx_.probe->events_failed.Increment(static_cast<double>(n));
    f.last_error = std::string(invoker::toString(result.outcome)) +
                   (result.detail.empty() ? "" : ": " + result.detail);
    FailedAttempt failed;
    failed.failure = classify(result);
    failed.records = n;
    failed.oldest_record_age = oldestAge(piece);
    if (failed.failure == FailureClass::kThrottled) {
      ctx_.probe->invocations_throttled.Increment();
      concurrency_limit_ = std::max<std::size_t>(1, concurrency_limit_ / 2);
    } else if (failed.failure != FailureClass::kFatal) {
      f.counted_failures++;
    }
    failed.counted_failures = f.counted_failures;
    switch (nextStep(ctx_.mapping.retry, ctx_.dead_letters != nullptr, failed)) {
    case NextStep::kDisable:
      reportFatal("the function answered HTTP " + std::to_string(result.http_status) + " (" +
                  result.detail + "): retrying cannot fix it");
      return false; // kept uncommitted; abandoned when the poller stops
    case NextStep::kBisect:
      bisect(f);
      return false;
    case NextStep::kGiveUp:
      return failed.failure == FailureClass::kTooLarge ? tooLarge(f, result.detail) : giveUp(f);
    case NextStep::kHold:
      return tooLarge(f, result.detail);
    case NextStep::kRetry:
      break;
    }
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    auto delay = invoker::nextBackoff(backoff_, f.attempts, unit(rng_));
    if (result.outcome == invoker::InvokeOutcome::kTimeout) {
      // kesm closed the connection, but a function need not stop on that: give it one more
      // timeout to finish before the same records are sent again, so that by kesm's choice
      // no two attempts of a batch run at the function at once.
      delay =
          std::max(delay, std::chrono::duration_cast<milliseconds>(ctx_.mapping.function.timeout));
    }
    f.retry_at = clock_.now() + delay;
    note(f, "retrying since attempt 1 failed; attempt " + std::to_string(f.attempts) + ": " +
                f.last_error);
    // The first failure and then every tenth, so a long outage does not flood the log.
    if (f.attempts == 1 || f.attempts % 10 == 0) {
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": batch of ", n, " records (",
          describe(rangesOf(piece)), ") failed attempt ", f.attempts, ": ", f.last_error,
          "; retrying in ", delay.count(), " ms");
    }
    return false;
  }

  // The front piece succeeded (or was given up and dealt with): commit it, go on to the next.
  bool pieceSucceeded(InFlight& f) {
    auto piece_ranges = rangesOf(f.piece());
    clearNotes(piece_ranges);
    markSucceeded(piece_ranges, f.attempts);
    for (const auto& [tp, range] : piece_ranges) {
      auto it = f.ranges.find(tp);
      if (it == f.ranges.end()) {
        continue;
      }
      it->second.first = Offset{range.last.value() + 1};
      if (it->second.first > it->second.last) {
        f.ranges.erase(it);
      }
    }
    f.pieces.pop_front();
    if (f.pieces.empty()) {
      markCovered(f); // filtered records after the last one sent
    }
    flushCommits();
    f.attempts = 0;
    f.counted_failures = 0;
    f.to_destination = false;
    f.destination_attempts = 0;
    f.retry_at = clock_.now();
    return f.pieces.empty();
  }

  // Two halves in place of the front piece, in order; each starts with fresh attempts.
  void bisect(InFlight& f) {
    auto whole = f.pieces.front();
    f.pieces.pop_front();
    auto [left, right] = bisectBatch(*whole);
    std::size_t half = left.records.size();
    f.pieces.push_front(std::make_shared<Batch>(std::move(right)));
    f.pieces.push_front(std::make_shared<Batch>(std::move(left)));
    ctx_.probe->batches_bisected.Increment();
    log(LogLevel::kWarn, "poller", ctx_.client_id, ": batch of ", whole->records.size(),
        " records (", describe(rangesOf(*whole)), ") failed: ", f.last_error, "; bisecting into ",
        half, " + ", whole->records.size() - half);
    f.attempts = 0;
    f.counted_failures = 0;
    f.retry_at = clock_.now();
  }

  // Retries exhausted: to the on-failure destination, or dropped when there is none (only
  // possible when the user bounded the retries). Either way nothing is skipped silently.
  bool giveUp(InFlight& f) {
    const Batch& piece = f.piece();
    if (ctx_.dead_letters) {
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": giving up ", piece.records.size(),
          " records (", describe(rangesOf(piece)), ") after ", f.attempts,
          " attempt(s): ", f.last_error, "; writing them to ",
          ctx_.mapping.on_failure.destination_topic);
      f.to_destination = true;
      f.retry_at = clock_.now();
      return false;
    }
    ctx_.probe->events_dropped.Increment(static_cast<double>(piece.records.size()));
    log(LogLevel::kError, "poller", ctx_.client_id, ": DROPPED ", piece.records.size(),
        " records (", describe(rangesOf(piece)), ") after ", f.attempts,
        " attempt(s): ", f.last_error, "; no onFailure destination is configured");
    return pieceSucceeded(f);
  }

  bool settleDestinationWrite(InFlight& f, const invoker::InvokeResult& result) {
    const Batch& piece = f.piece();
    if (result.ok()) {
      ctx_.probe->events_on_failure_delivered.Increment(static_cast<double>(piece.records.size()));
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": wrote ", piece.records.size(),
          " failed records (", describe(rangesOf(piece)), ") to ",
          ctx_.mapping.on_failure.destination_topic);
      return pieceSucceeded(f);
    }
    ctx_.probe->on_failure_delivery_errors.Increment();
    if (result.outcome == kDestinationRefused) {
      // Writing again cannot help, and skipping the records would lose them: stop the mapping
      // with the reason, commit nothing of the batch.
      reportFatal("the onFailure topic " + ctx_.mapping.on_failure.destination_topic +
                  " refused records given up (" + describe(rangesOf(piece)) +
                  "): " + result.detail);
      return false;
    }
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    auto delay = invoker::nextBackoff(backoff_, f.destination_attempts, unit(rng_));
    f.retry_at = clock_.now() + delay;
    // The first failure and then every tenth, so a long outage does not flood the log.
    if (f.destination_attempts == 1 || f.destination_attempts % 10 == 0) {
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": writing ", piece.records.size(),
          " failed records (", describe(rangesOf(piece)), ") to ",
          ctx_.mapping.on_failure.destination_topic, " failed, attempt ", f.destination_attempts,
          " (", result.detail, "); nothing is committed; retrying in ", delay.count(), " ms");
    }
    return false;
  }

  static std::chrono::milliseconds oldestAge(const Batch& piece) {
    std::int64_t oldest = std::numeric_limits<std::int64_t>::max();
    for (const auto& r : piece.records) {
      if (r.timestamp_type != TimestampType::kNotAvailable && r.timestamp_ms > 0) {
        oldest = std::min(oldest, r.timestamp_ms);
      }
    }
    if (oldest == std::numeric_limits<std::int64_t>::max()) {
      return std::chrono::milliseconds(0);
    }
    return std::chrono::milliseconds(std::max<std::int64_t>(0, epochMillisNow() - oldest));
  }

  static std::int64_t epochMillisNow() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // librdkafka reports a refused login or a missing ACL at every reconnect. Only a refusal
  // that lasts disables the mapping: a broker that is restarting can refuse a login or two
  // while it loads its credentials, and disabling on that would need a restart to undo.
  void accessRefused(const std::string& reason) {
    auto now = clock_.now();
    // Refusals come at each reconnect (librdkafka backs off up to 10 s): a longer silence
    // means access worked in between, and a new refusal starts a new count.
    bool continued = access_refused_last_ && now - *access_refused_last_ < milliseconds(15000);
    access_refused_last_ = now;
    if (!access_refused_since_ || !continued) {
      access_refused_since_ = now;
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": ", reason,
          "; the mapping is disabled if this lasts ", kAccessRefusedFor.count(), " ms");
      return;
    }
    if (now - *access_refused_since_ >= kAccessRefusedFor) {
      reportFatal(reason);
    }
  }
  static constexpr milliseconds kAccessRefusedFor{30000};

  void reportFatal(const std::string& reason) {
    if (fatal_) {
      return;
    }
    fatal_ = true;
    log(LogLevel::kError, "poller", ctx_.client_id, ": fatal: ", reason,
        "; sending nothing more, committing nothing of the failing batch");
    if (ctx_.fatal != nullptr) {
      ctx_.fatal->reportFatal(reason);
    }
  }

  std::size_t concurrencyLimit() const { return std::min(concurrency_limit_, maxConcurrent()); }

  static std::string describe(const std::map<TopicPartition, PartitionRange>& ranges) {
    std::string out;
    for (const auto& [tp, range] : ranges) {
      if (!out.empty()) {
        out += ", ";
      }
      out += tp.topic + "-" + std::to_string(tp.partition.value()) + "@" +
             std::to_string(range.first.value()) + ".." + std::to_string(range.last.value());
    }
    return out;
  }

  // --- commits -------------------------------------------------------------------------------
  //
  // A succeeded batch only advances its partitions' commit point; the commit itself is sent
  // asynchronously, at most one request in flight per poller, coalescing every partition
  // that advanced meanwhile. The poller thread never waits on the coordinator, so the next
  // batch goes out while the previous one is being committed (a synchronous commit per batch
  // cost a broker round trip and an fsync of the offsets topic before every dispatch).
  // Order holds: one request at a time, and a partition's batches succeed in order. Before
  // partitions move (revoke, close) the request in flight is awaited and the rest committed
  // synchronously, so the next owner starts exactly after the last success.

  struct CommitPoint {
    std::int64_t done = -1;      // next offset after the last succeeded batch
    std::int64_t confirmed = -1; // last offset the coordinator accepted from this poller
    double records = 0;          // succeeded records not yet in a commit request
  };

  struct PendingCommit {
    std::map<TopicPartition, double> records;
  };

  // A committed offset is the next offset to read: last processed + 1.
  void markSucceeded(const std::map<TopicPartition, PartitionRange>& ranges, int attempts) {
    for (const auto& [tp, range] : ranges) {
      if (!owned_.count(tp)) {
        continue; // revoked meanwhile: the new owner redelivers from the last commit
      }
      auto& point = commit_points_[tp];
      point.done = std::max(point.done, range.last.value() + 1);
      point.records += static_cast<double>(range.records);
    }
    if (logEnabled(LogLevel::kDebug)) {
      log(LogLevel::kDebug, "poller", ctx_.client_id, ": succeeded ", describe(ranges), " after ",
          attempts, " attempt(s)");
    }
  }

  // Every offset of the cut, filtered records included, once all that was sent succeeded.
  void markCovered(const InFlight& f) {
    for (const auto& [tp, range] : f.covered) {
      if (owned_.count(tp)) {
        auto& point = commit_points_[tp];
        point.done = std::max(point.done, range.last.value() + 1);
      }
    }
    if (f.filtered > 0 && !f.covered.empty() && owned_.count(f.covered.begin()->first)) {
      commit_points_[f.covered.begin()->first].records += static_cast<double>(f.filtered);
    }
  }

  // The partitions whose commit point is ahead of what the coordinator confirmed.
  rd_kafka_topic_partition_list_t* dueCommits(const std::set<TopicPartition>* only) const {
    rd_kafka_topic_partition_list_t* list = nullptr;
    for (const auto& [tp, point] : commit_points_) {
      if (point.done <= point.confirmed || !owned_.count(tp) || (only && !only->count(tp))) {
        continue;
      }
      if (list == nullptr) {
        list = rd_kafka_topic_partition_list_new(static_cast<int>(commit_points_.size()));
      }
      rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition.value())->offset =
          point.done;
    }
    return list;
  }

  // A commit request for `list`: the records it carries move from their commit points to it,
  // to be counted as committed when the coordinator accepts them (settleCommit).
  PendingCommit takeRecords(const rd_kafka_topic_partition_list_t* list) {
    PendingCommit taken;
    for (int i = 0; i < list->cnt; ++i) {
      TopicPartition tp{list->elems[i].topic, Partition{list->elems[i].partition}};
      auto& point = commit_points_[tp];
      taken.records[tp] = point.records;
      point.records = 0;
    }
    return taken;
  }

  void flushCommits() {
    if (pending_commit_ || clock_.now() < commit_retry_at_) {
      return;
    }
    rd_kafka_topic_partition_list_t* list = dueCommits(nullptr);
    if (list == nullptr) {
      return;
    }
    PendingCommit pending = takeRecords(list);
    rd_kafka_resp_err_t err =
        rd_kafka_commit_queue(consumer_->c_ptr(), list, commit_queue_, nullptr, nullptr);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      settleCommit(pending, err, list); // not sent: counts as a failed request
    } else {
      pending_commit_ = std::move(pending);
    }
    rd_kafka_topic_partition_list_destroy(list);
  }

  // Serves commit results; blocks up to `timeout` for the one in flight (0: does not block).
  void serveCommitQueue(milliseconds timeout) {
    while (pending_commit_) {
      rd_kafka_event_t* ev = rd_kafka_queue_poll(commit_queue_, static_cast<int>(timeout.count()));
      if (ev == nullptr) {
        return;
      }
      if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
        PendingCommit pending = std::move(*pending_commit_);
        pending_commit_.reset();
        settleCommit(pending, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev));
      }
      rd_kafka_event_destroy(ev);
    }
  }

  void settleCommit(const PendingCommit& pending, rd_kafka_resp_err_t err,
                    const rd_kafka_topic_partition_list_t* result) {
    bool ok = err == RD_KAFKA_RESP_ERR_NO_ERROR;
    bool rebalancing = isRebalanceError(err);
    double committed_records = 0;
    for (int i = 0; result != nullptr && i < result->cnt; ++i) {
      const auto& e = result->elems[i];
      TopicPartition tp{e.topic, Partition{e.partition}};
      auto records = pending.records.find(tp);
      double n = records == pending.records.end() ? 0 : records->second;
      auto point = commit_points_.find(tp);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR && e.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        committed_records += n;
        if (point != commit_points_.end()) {
          point->second.confirmed = std::max(point->second.confirmed, e.offset);
        }
        continue;
      }
      ok = false;
      rebalancing = rebalancing || isRebalanceError(e.err);
      if (point != commit_points_.end()) {
        point->second.records += n; // committed by a later request, or delivered again
      }
    }
    ctx_.probe->events_committed.Increment(committed_records);
    if (ok) {
      ctx_.probe->commits_ok.Increment();
      return;
    }
    // Not lost: the offsets stay due and go out with the next request, before the
    // partitions are revoked at the latest, or the records are delivered again.
    ctx_.probe->commits_failed.Increment();
    std::string why = err != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(err) : "";
    for (int i = 0; why.empty() && result != nullptr && i < result->cnt; ++i) {
      if (result->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        why = rd_kafka_err2str(result->elems[i].err);
      }
    }
    log(rebalancing ? LogLevel::kInfo : LogLevel::kWarn, "poller", ctx_.client_id, ": commit of ",
        result == nullptr ? 0 : result->cnt, " partition(s) failed (", why, "); retried");
    if (rebalancing) {
      // The group is rebalancing: every batch sent now would be committed after the
      // partitions moved, i.e. delivered twice. Wait for the rebalance (bounded).
      hold_until_ = clock_.now() + milliseconds(10000);
    } else {
      commit_retry_at_ = clock_.now() + milliseconds(500);
    }
  }

  static bool isRebalanceError(rd_kafka_resp_err_t code) {
    return code == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
           code == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
           code == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID;
  }

  // Inside a revoke (or close): waits for the request in flight, then commits what is still
  // due for `revoked` synchronously. The member still belongs to its generation until it
  // rejoins, so the coordinator accepts it even when the group is rebalancing.
  void commitBeforeRevoke(const std::set<TopicPartition>& revoked) {
    auto wait_until = clock_.now() + milliseconds(5000);
    while (pending_commit_ && clock_.now() < wait_until) {
      serveCommitQueue(milliseconds(100));
    }
    rd_kafka_topic_partition_list_t* list = dueCommits(&revoked);
    if (list == nullptr) {
      return;
    }
    PendingCommit sync = takeRecords(list);
    rd_kafka_resp_err_t err = rd_kafka_commit(consumer_->c_ptr(), list, 0);
    hold_until_.reset(); // the partitions are moving now in any case
    settleCommit(sync, err, list);
    log(LogLevel::kInfo, "poller", ctx_.client_id, ": committed ", list->cnt,
        " partition(s) before they move: ", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(list);
  }

  // Gives up, without committing, every batch in flight that touches `revoked`. Retained
  // partitions of those batches are rewound to the batch's first offset: nothing is skipped.
  void abandon(const std::set<TopicPartition>& revoked) {
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      if (!touches(*it, revoked)) {
        ++it;
        continue;
      }
      ctx_.probe->batches_abandoned.Increment();
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": abandoning batch ", describe(it->ranges),
          " after ", it->attempts, " attempt(s); it will be delivered again");
      if (it->running) {
        it->worker->discardCurrent();
      }
      clearNotes(it->ranges); // the next owner says its own
      for (const auto& [tp, range] : it->ranges) {
        if (!revoked.count(tp) && owned_.count(tp)) {
          rewind(tp, range.first);
        }
      }
      it = in_flight_.erase(it);
    }
  }

  void rewind(const TopicPartition& tp, Offset to) {
    batcher_.drop(tp);
    next_expected_[tp] = to;
    std::unique_ptr<RdKafka::TopicPartition> p(
        RdKafka::TopicPartition::create(tp.topic, tp.partition.value(), to.value()));
    RdKafka::ErrorCode code = consumer_->seek(*p, 0);
    if (code != RdKafka::ERR_NO_ERROR) {
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": rewind of ", tp.topic, "-",
          tp.partition.value(), " failed: ", RdKafka::err2str(code));
    }
  }

  // --- fetch control ---------------------------------------------------------------------

  void setPaused(bool pause) {
    std::vector<RdKafka::TopicPartition*> parts;
    for (const auto& tp : owned_) {
      parts.push_back(RdKafka::TopicPartition::create(tp.topic, tp.partition.value()));
    }
    if (!parts.empty()) {
      pause ? consumer_->pause(parts) : consumer_->resume(parts);
    }
    RdKafka::TopicPartition::destroy(parts);
  }

  // Gives each assigned partition its own queue, no longer forwarded to the consumer queue,
  // before the assignment starts fetching into it.
  void splitPartitionQueues(const std::set<TopicPartition>& tps) {
    for (const auto& tp : tps) {
      if (partition_queues_.count(tp)) {
        continue;
      }
      rd_kafka_queue_t* q =
          rd_kafka_queue_get_partition(consumer_->c_ptr(), tp.topic.c_str(), tp.partition.value());
      if (q == nullptr) {
        continue; // stays forwarded: its messages still arrive on the consumer queue
      }
      rd_kafka_queue_forward(q, nullptr);
      rd_kafka_queue_io_event_enable(q, wake_fd_.get(), &kWakeValue, sizeof kWakeValue);
      partition_queues_.emplace(tp, q);
    }
  }

  void releasePartitionQueues(const std::set<TopicPartition>& tps) {
    for (const auto& tp : tps) {
      auto it = partition_queues_.find(tp);
      if (it == partition_queues_.end()) {
        continue;
      }
      rd_kafka_queue_io_event_enable(it->second, -1, nullptr, 0);
      rd_kafka_queue_destroy(it->second);
      partition_queues_.erase(it);
    }
  }

  // --- rebalances (called on the poller thread, inside consume() or close()) ---------------

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
    std::set<TopicPartition> changed;
    for (auto* p : partitions) {
      changed.insert(TopicPartition{p->topic(), Partition{p->partition()}});
    }
    hold_until_.reset();
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      ctx_.probe->rebalances_assign.Increment();
      for (const auto& tp : changed) {
        owned_.insert(tp);
        next_expected_.erase(tp); // start from the group's committed offset
        commit_points_.erase(tp);
      }
      splitPartitionQueues(changed);
      if (ctx_.mapping.source.starting_position == config::StartingPosition::kAtTimestamp) {
        startAtTimestamp(consumer, partitions);
      } else if (ctx_.mapping.source.starting_position == config::StartingPosition::kLatest) {
        startLatest(consumer, partitions);
      }
      RdKafka::Error* error = nullptr;
      RdKafka::ErrorCode code = RdKafka::ERR_NO_ERROR;
      if (cooperative) {
        error = consumer->incremental_assign(partitions);
      } else {
        code = consumer->assign(partitions);
      }
      reportAssignError(error, code, "assign");
      if (owner_.state_.load() == PollerState::kStopping && !partitions.empty()) {
        consumer->pause(partitions);
      }
      had_assignment_ = true;
      owner_.assigned_ = owned_.size();
      if (owner_.state_.load() == PollerState::kStarting) {
        owner_.state_ = PollerState::kRunning;
      }
      log(LogLevel::kInfo, "poller", ctx_.client_id, ": assigned ", changed.size(),
          " partition(s), owns ", owned_.size());
      return;
    }
    // Revoke (or lost): settle the batch in flight before the partitions move, and commit
    // inside this callback — after unassign the commit would fail (librdkafka #4059).
    ctx_.probe->rebalances_revoke.Increment();
    if (touchesAny(changed)) {
      time_point deadline =
          owner_.state_.load() == PollerState::kStopping
              ? grace_deadline_
              : clock_.now() + std::min<milliseconds>(ctx_.mapping.scaling.grace_period,
                                                      ctx_.mapping.function.timeout);
      if (consumer->assignment_lost()) {
        deadline = clock_.now(); // lost partitions cannot be committed any more
      }
      finishRunningAttempts(changed, deadline);
      abandon(changed); // what did not finish, or failed
    }
    if (!consumer->assignment_lost()) {
      commitBeforeRevoke(changed);
    }
    for (const auto& tp : changed) {
      batcher_.drop(tp);
      owned_.erase(tp);
      next_expected_.erase(tp);
      commit_points_.erase(tp);
    }
    RdKafka::Error* error = nullptr;
    RdKafka::ErrorCode code = RdKafka::ERR_NO_ERROR;
    if (cooperative) {
      error = consumer->incremental_unassign(partitions);
    } else {
      code = consumer->unassign();
    }
    reportAssignError(error, code, "unassign");
    releasePartitionQueues(changed);
    owner_.assigned_ = owned_.size();
    log(LogLevel::kInfo, "poller", ctx_.client_id, ": revoked ", changed.size(),
        " partition(s), owns ", owned_.size());
  }

  // The assigned partitions the group never committed; nullopt when that cannot be read.
  std::optional<std::set<TopicPartition>>
  uncommitted(RdKafka::KafkaConsumer* consumer,
              const std::vector<RdKafka::TopicPartition*>& partitions) {
    std::vector<RdKafka::TopicPartition*> probe;
    for (auto* p : partitions) {
      probe.push_back(RdKafka::TopicPartition::create(p->topic(), p->partition()));
    }
    RdKafka::ErrorCode code = consumer->committed(probe, kStartLookupTimeoutMs);
    std::set<TopicPartition> out;
    for (auto* p : probe) {
      if (code == RdKafka::ERR_NO_ERROR && p->err() == RdKafka::ERR_NO_ERROR && p->offset() < 0) {
        out.insert(TopicPartition{p->topic(), Partition{p->partition()}});
      }
    }
    RdKafka::TopicPartition::destroy(probe);
    if (code != RdKafka::ERR_NO_ERROR) {
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": reading committed offsets failed (",
          RdKafka::err2str(code), "); partitions without one start at the earliest record");
      return std::nullopt;
    }
    return out;
  }
  static constexpr int kStartLookupTimeoutMs = 10000;

  // AT_TIMESTAMP: partitions the group never committed start at the first record at or after
  // the timestamp; the others resume from their committed offset, as in Lambda. On an error
  // the offsets stay unset and auto.offset.reset (earliest) applies: nothing is skipped.
  void startAtTimestamp(RdKafka::KafkaConsumer* consumer,
                        std::vector<RdKafka::TopicPartition*>& partitions) {
    auto never_committed = uncommitted(consumer, partitions);
    if (!never_committed || never_committed->empty()) {
      return;
    }
    std::vector<RdKafka::TopicPartition*> fresh;
    for (const auto& tp : *never_committed) {
      fresh.push_back(RdKafka::TopicPartition::create(
          tp.topic, tp.partition.value(), ctx_.mapping.source.starting_position_timestamp_ms));
    }
    RdKafka::ErrorCode code = consumer->offsetsForTimes(fresh, kStartLookupTimeoutMs);
    for (auto* f : fresh) {
      if (code != RdKafka::ERR_NO_ERROR || f->err() != RdKafka::ERR_NO_ERROR) {
        continue;
      }
      for (auto* p : partitions) {
        if (p->topic() == f->topic() && p->partition() == f->partition()) {
          // -1: no record at or after the timestamp, so start at the end.
          p->set_offset(f->offset() >= 0 ? f->offset() : RdKafka::Topic::OFFSET_END);
        }
      }
    }
    if (code != RdKafka::ERR_NO_ERROR) {
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": offsets for AT_TIMESTAMP failed (",
          RdKafka::err2str(code), "); partitions without one start at the earliest record");
    }
    RdKafka::TopicPartition::destroy(fresh);
  }

  // LATEST: a partition the group never committed starts at its end when it existed as the
  // mapping started in this process, at its beginning when it was added since (it holds only
  // records produced after the start, and waiting for the consumer to notice it would skip
  // them). The offset chosen is committed with the next commit request, so a restart resumes
  // there instead of skipping what was produced while kesm was down. On an error the offsets
  // stay unset and auto.offset.reset (earliest) applies: nothing is skipped.
  void startLatest(RdKafka::KafkaConsumer* consumer,
                   std::vector<RdKafka::TopicPartition*>& partitions) {
    auto never_committed = uncommitted(consumer, partitions);
    if (!never_committed || never_committed->empty()) {
      return;
    }
    const auto* at_start = ctx_.partitions_at_start.get();
    std::vector<RdKafka::TopicPartition*> fresh;
    for (const auto& tp : *never_committed) {
      bool added = at_start != nullptr && at_start->addedSince(tp);
      // ListOffsets by timestamp: -1 asks for the end, -2 for the beginning.
      fresh.push_back(RdKafka::TopicPartition::create(tp.topic, tp.partition.value(),
                                                      added ? RdKafka::Topic::OFFSET_BEGINNING
                                                            : RdKafka::Topic::OFFSET_END));
    }
    RdKafka::ErrorCode code = consumer->offsetsForTimes(fresh, kStartLookupTimeoutMs);
    for (auto* f : fresh) {
      TopicPartition tp{f->topic(), Partition{f->partition()}};
      bool added = at_start != nullptr && at_start->addedSince(tp);
      bool resolved =
          code == RdKafka::ERR_NO_ERROR && f->err() == RdKafka::ERR_NO_ERROR && f->offset() >= 0;
      for (auto* p : partitions) {
        if (p->topic() == f->topic() && p->partition() == f->partition()) {
          // Unresolved: the logical offset, which librdkafka resolves itself (not committed).
          p->set_offset(
              resolved ? f->offset()
                       : (added ? RdKafka::Topic::OFFSET_BEGINNING : RdKafka::Topic::OFFSET_END));
        }
      }
      if (resolved) {
        commit_points_[tp].done = f->offset();
      }
      log(LogLevel::kInfo, "poller", ctx_.client_id, ": ", tp.topic, "-", tp.partition.value(),
          " has no committed offset; LATEST: starts at its ",
          added ? "beginning (added since the mapping started)" : "end",
          resolved ? ", offset " + std::to_string(f->offset()) : std::string(" (unresolved)"));
    }
    if (code != RdKafka::ERR_NO_ERROR) {
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": resolving LATEST start offsets failed (",
          RdKafka::err2str(code), "); librdkafka resolves them");
    }
    RdKafka::TopicPartition::destroy(fresh);
  }

  // During a revoke only the attempts already running may finish; no new retries. Waiting
  // on each in turn against one deadline waits for them concurrently.
  void finishRunningAttempts(const std::set<TopicPartition>& tps, time_point deadline) {
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      std::optional<InvokeWorker::Outcome> outcome;
      if (it->running && touches(*it, tps)) {
        outcome = it->worker->waitFor(deadline);
      }
      if (outcome && settle(*it, *outcome)) {
        it = in_flight_.erase(it);
      } else {
        ++it;
      }
    }
  }

  bool touchesAny(const std::set<TopicPartition>& tps) const {
    return std::any_of(in_flight_.begin(), in_flight_.end(),
                       [&](const InFlight& f) { return touches(f, tps); });
  }

  static bool touches(const InFlight& f, const std::set<TopicPartition>& tps) {
    for (const auto& [tp, range] : f.ranges) {
      if (tps.count(tp)) {
        return true;
      }
    }
    return false;
  }

  void reportAssignError(RdKafka::Error* error, RdKafka::ErrorCode code, const char* what) {
    if (error != nullptr) {
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": ", what, " failed: ", error->str());
      delete error;
    } else if (code != RdKafka::ERR_NO_ERROR) {
      log(LogLevel::kWarn, "poller", ctx_.client_id, ": ", what,
          " failed: ", RdKafka::err2str(code));
    }
  }

  void event_cb(RdKafka::Event& event) override {
    switch (event.type()) {
    case RdKafka::Event::EVENT_ERROR:
      ctx_.probe->kafka_errors.Increment();
      if (isAccessRefused(event.err())) {
        accessRefused("the cluster refused access: " + event.str());
      }
      if (event.err() == RdKafka::ERR__ALL_BROKERS_DOWN || event.fatal()) {
        log(LogLevel::kError, "poller", ctx_.client_id, ": kafka: ", event.str());
      } else {
        log(LogLevel::kWarn, "poller", ctx_.client_id, ": kafka: ", event.str());
      }
      break;
    case RdKafka::Event::EVENT_LOG:
      log(event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING ? LogLevel::kWarn
                                                                     : LogLevel::kDebug,
          "poller", ctx_.client_id, ": kafka ", event.fac(), ": ", event.str());
      break;
    default:
      break;
    }
  }

  // --- retire --------------------------------------------------------------------------------

  void shutdown() {
    owner_.state_ = PollerState::kStopping;
    grace_deadline_ = clock_.now() + ctx_.mapping.scaling.grace_period;
    setPaused(true); // stop fetching
    // Keep serving the consumer while the batches in flight finish (retries included; after
    // a fatal error only the attempts already running).
    auto unfinished = [this] {
      return std::any_of(in_flight_.begin(), in_flight_.end(), [this](const InFlight& f) {
        return fatal_ ? f.running : (f.running || !f.held); // a held batch cannot finish
      });
    };
    while (unfinished() && clock_.now() < grace_deadline_) {
      wake_fd_.wait(milliseconds(20));
      serveConsumerQueue();
      serveCommitQueue(milliseconds(0));
      settleAttempts();
      flushCommits();
      for (auto& f : in_flight_) {
        if (!fatal_ && !f.running && clock_.now() >= f.retry_at) {
          submitAttempt(f);
        }
      }
    }
    if (!in_flight_.empty()) {
      std::set<TopicPartition> all = owned_;
      for (const auto& f : in_flight_) {
        for (const auto& [tp, range] : f.ranges) {
          all.insert(tp);
        }
      }
      abandon(all); // every partition is about to be released
    }
    // Closing a cooperative-sticky consumer before its first rebalance completed can abort
    // the process in librdkafka 2.0.2 (#4308, #4312): wait for it, bounded.
    if (!had_assignment_ && ctx_.mapping.source.partition_assignor == "cooperative-sticky") {
      auto deadline = clock_.now() + milliseconds(15000);
      while (!had_assignment_ && clock_.now() < deadline) {
        std::unique_ptr<RdKafka::Message> msg(consumer_->consume(50));
      }
    }
    consumer_->close(); // revokes (callback above) and leaves the group at once
    std::set<TopicPartition> remaining;
    for (const auto& [tp, q] : partition_queues_) {
      remaining.insert(tp);
    }
    releasePartitionQueues(remaining);
    rd_kafka_queue_io_event_enable(consumer_queue_, -1, nullptr, 0);
    rd_kafka_queue_destroy(consumer_queue_);
    consumer_queue_ = nullptr;
    rd_kafka_queue_io_event_enable(commit_queue_, -1, nullptr, 0);
    rd_kafka_queue_destroy(commit_queue_);
    commit_queue_ = nullptr;
    log(LogLevel::kInfo, "poller", ctx_.client_id, ": left the group");
    destroyConsumer();
  }

  // Closed already: destroying only frees the client. librdkafka 2.0.2 can wait for ever
  // here after a subscribed topic was deleted (its main thread never sees the group reach
  // its final state), so the destroy runs on a thread of its own and the poller waits for it
  // a bounded time: a retiring poller must never block its pool or kesm's exit.
  void destroyConsumer() {
    auto done = std::make_shared<std::promise<void>>();
    auto finished = done->get_future();
    std::thread([consumer = consumer_.release(), done] {
      delete consumer;
      done->set_value();
    }).detach();
    if (finished.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      log(LogLevel::kWarn, "poller", ctx_.client_id,
          ": the Kafka client is still being destroyed after 10 s; left to finish in the "
          "background");
    }
  }

  Poller& owner_;
  PollerContext ctx_;
  SteadyClock clock_;
  Batcher batcher_;
  PayloadSizer sizer_ = makeSizer(); // exact event sizes, for the one-record check
  invoker::BackoffPolicy backoff_;
  std::mt19937_64 rng_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  WakeFd wake_fd_;
  rd_kafka_queue_t* consumer_queue_ = nullptr;
  std::map<TopicPartition, rd_kafka_queue_t*> partition_queues_;
  TopicPartition intake_cursor_{};
  std::vector<std::unique_ptr<InvokeWorker>> workers_;
  bool worker_refused_ = false;   // the last worker could not be started (logged once)
  std::list<InFlight> in_flight_; // at most maxConcurrent(), in cut order
  std::set<TopicPartition> owned_;
  std::map<TopicPartition, Offset> next_expected_;
  std::map<TopicPartition, CommitPoint> commit_points_;
  std::optional<PendingCommit> pending_commit_; // at most one commit request in flight
  rd_kafka_queue_t* commit_queue_ = nullptr;
  time_point commit_retry_at_{};         // after a failed commit
  std::optional<time_point> hold_until_; // no new batches: group rebalancing
  bool more_to_take_ = false;            // a partition queue holds records intake has room for
  bool had_assignment_ = false;
  bool fatal_ = false; // met an error retrying cannot fix: send nothing more
  std::optional<time_point> access_refused_since_; // first refusal since the last record
  std::optional<time_point> access_refused_last_;
  std::size_t concurrency_limit_ = 1; // maxConcurrent(), halved by each throttle
  time_point grace_deadline_{};

  std::atomic<bool> stop_requested_{false};
  std::mutex stopped_mutex_;
  std::condition_variable stopped_cv_;
  bool stopped_ = false;
  std::thread thread_;
};

Poller::Poller(PollerContext context) : impl_(std::make_unique<Impl>(*this, std::move(context))) {}

Poller::~Poller() {
  requestStop();
  auto bound = impl_->ctx_.mapping.scaling.grace_period + impl_->ctx_.mapping.function.timeout +
               milliseconds(15000);
  if (!waitStopped(bound)) {
    log(LogLevel::kError, "poller", impl_->ctx_.client_id,
        ": did not stop in time; detaching its thread");
    impl_->thread_.detach();
    (void)impl_.release(); // the detached thread still uses it
    return;
  }
  if (impl_->thread_.joinable()) {
    impl_->thread_.join();
  }
}

void Poller::start() {
  impl_->thread_ =
      startThread("poller " + impl_->ctx_.client_id + " of mapping " + impl_->ctx_.mapping.name,
                  [this] { impl_->run(); });
}

void Poller::requestStop() {
  if (!impl_) {
    return;
  }
  impl_->stop_requested_ = true;
  impl_->wake();
}

bool Poller::waitStopped(milliseconds timeout) {
  std::unique_lock lock(impl_->stopped_mutex_);
  return impl_->stopped_cv_.wait_for(lock, timeout, [this] { return impl_->stopped_; });
}

const std::string& Poller::clientId() const { return impl_->ctx_.client_id; }

} // namespace kesm::poller
