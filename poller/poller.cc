#include "poller/poller.h"

#include "common/log.h"
#include "common/resources.h"
#include "filter/filter.h"
#include "invoker/invoker.h"
#include "invoker/payload.h"
#include "kafka/rdkafka_adapter.h"
#include "poller/dead_letter.h"
#include "poller/invoker_factory.h"
#include "poller/poller_impl.h"

#include <algorithm>
#include <future>
#include <random>
#include <stdexcept>
#include <thread>

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

// Uniform in [0, 1), seeded at random: backoff jitter.
std::function<double()> seededRandom() {
  auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
  return [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); };
}

InFlightSettings inFlightSettings(const PollerContext& ctx) {
  const auto& m = ctx.mapping;
  InFlightSettings s;
  s.retry = m.retry;
  s.has_destination = ctx.dead_letters != nullptr;
  s.backoff = invoker::BackoffPolicy{m.retry.initial_backoff, m.retry.maximum_backoff,
                                     m.retry.backoff_multiplier, m.retry.jitter};
  s.function_timeout = std::chrono::duration_cast<milliseconds>(m.function.timeout);
  s.max_concurrent = static_cast<std::size_t>(std::max(1, m.scaling.max_concurrent_batches));
  return s;
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

PollerContext basePollerContext(const config::Mapping& mapping) {
  PollerContext base;
  base.mapping = mapping;
  base.make_invoker = invokerFactory(mapping);
  if (!mapping.on_failure.destination_topic.empty()) {
    base.dead_letters = makeKafkaDeadLetterSink(mapping, std::chrono::milliseconds(30000));
  }
  return base;
}

Poller::Impl::Impl(Poller& owner, PollerContext context)
    : owner_(owner), ctx_(std::move(context)),
      clock_(ctx_.clock != nullptr ? *ctx_.clock : steady_clock_),
      random01_(ctx_.random01 ? ctx_.random01 : seededRandom()),
      batcher_(BatcherLimits{static_cast<std::size_t>(ctx_.mapping.batching.batch_size),
                             ctx_.mapping.batching.maximum_batching_window,
                             ctx_.mapping.batching.maximum_payload_bytes},
               makeSizer()),
      sizer_(makeSizer()), machine_(inFlightSettings(ctx_)) {}

PayloadSizer Poller::Impl::makeSizer() const {
  std::string servers = kafka::joinServers(ctx_.mapping.source.bootstrap_servers);
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

void Poller::Impl::run() {
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

void Poller::Impl::runConsumer() {
  std::string err;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  auto settings = kafka::consumerSettings(ctx_.mapping, ctx_.client_id);
  if (!ctx_.group_instance_id.empty()) {
    settings.emplace_back("group.instance.id", ctx_.group_instance_id);
  }
  kafka::applySettings(conf->c_ptr_global(), settings, kafka::OnRefused::kThrow);
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
  rd_kafka_queue_io_event_enable(consumer_queue_, wake_fd_.get(), &WakeFd::kWakeValue,
                                 sizeof WakeFd::kWakeValue);
  commit_queue_ = rd_kafka_queue_new(consumer_->c_ptr());
  rd_kafka_queue_io_event_enable(commit_queue_, wake_fd_.get(), &WakeFd::kWakeValue,
                                 sizeof WakeFd::kWakeValue);

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

// One turn of the loop: wait for an event or a timer, serve the consumer, settle finished
// attempts, take records the batcher has room for, and send what is due.
void Poller::Impl::step() {
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
bool Poller::Impl::readableQueueLeft() const {
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
void Poller::Impl::serveConsumerQueue() {
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
void Poller::Impl::intake() {
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

Poller::Impl::milliseconds Poller::Impl::pollTimeout(time_point now) const {
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
std::size_t Poller::Impl::holdLimit() const {
  return (maxConcurrent() + 1) * static_cast<std::size_t>(ctx_.mapping.batching.batch_size);
}

std::size_t Poller::Impl::holdBytesLimit() const {
  return (maxConcurrent() + 1) * ctx_.mapping.batching.maximum_payload_bytes;
}

std::size_t Poller::Impl::maxConcurrent() const {
  return static_cast<std::size_t>(std::max(1, ctx_.mapping.scaling.max_concurrent_batches));
}

void Poller::Impl::handleMessage(const rd_kafka_message_t& msg) {
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
    if (kafka::isAccessRefused(msg.err)) {
      accessRefused(std::string("the cluster refused access: ") + rd_kafka_message_errstr(&msg));
    }
    return;
  }
  access_refusals_.worked(); // a record arrived: access works
  if (owner_.state_.load() == PollerState::kStopping) {
    return; // not fetched for a batch any more; the next owner reads it again
  }
  TopicPartition tp{rd_kafka_topic_name(msg.rkt), Partition{msg.partition}};
  if (!commits_.owns(tp)) {
    return; // a late message of a partition revoked meanwhile
  }
  auto expected = next_expected_.find(tp);
  if (expected != next_expected_.end() && msg.offset < expected->second.value()) {
    return; // already held: refetched after a rewind
  }
  next_expected_[tp] = Offset{msg.offset + 1};
  ctx_.probe->events_polled.Increment();
  Record record = kafka::toRecord(msg);
  if (ctx_.mapping.filters && !ctx_.mapping.filters->matches(record)) {
    record.filtered = true;
    // Only the offset matters now: keep no bytes for it.
    record.key.reset();
    record.value.reset();
    record.headers.clear();
  }
  batcher_.add(std::move(record), clock_.now());
}

// librdkafka reports a refused login or a missing ACL at every reconnect; only a refusal that
// lasts disables the mapping (AccessRefusalWindow).
void Poller::Impl::accessRefused(const std::string& reason) {
  switch (access_refusals_.refused(clock_.now())) {
  case AccessRefusalWindow::Verdict::kStarted:
    log(LogLevel::kWarn, "poller", ctx_.client_id, ": ", reason,
        "; the mapping is disabled if this lasts ", AccessRefusalWindow::kRefusedFor.count(),
        " ms");
    break;
  case AccessRefusalWindow::Verdict::kContinuing:
    break;
  case AccessRefusalWindow::Verdict::kFatal:
    reportFatal(reason);
    break;
  }
}

void Poller::Impl::reportFatal(const std::string& reason) {
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

// Stops fetching every owned partition (the poller is retiring).
void Poller::Impl::pauseAll() {
  std::vector<RdKafka::TopicPartition*> parts;
  for (const auto& tp : commits_.owned()) {
    parts.push_back(RdKafka::TopicPartition::create(tp.topic, tp.partition.value()));
  }
  if (!parts.empty()) {
    consumer_->pause(parts);
  }
  RdKafka::TopicPartition::destroy(parts);
}

// --- retire --------------------------------------------------------------------------------

void Poller::Impl::shutdown() {
  owner_.state_ = PollerState::kStopping;
  grace_deadline_ = clock_.now() + ctx_.mapping.scaling.grace_period;
  pauseAll(); // stop fetching
  // Keep serving the consumer while the batches in flight finish (retries included; after
  // a fatal error only the attempts already running).
  auto unfinished = [this] {
    return std::any_of(in_flight_.begin(), in_flight_.end(), [this](const Slot& f) {
      return fatal_ ? f.running : (f.running || !f.held); // a held batch cannot finish
    });
  };
  auto capped = [this] {
    const auto cap = grace_cap_until_.load();
    if (cap != kNoGraceCap) {
      grace_deadline_ = std::min(grace_deadline_, time_point(time_point::duration(cap)));
    }
    return grace_deadline_;
  };
  while (unfinished() && clock_.now() < capped()) {
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
    std::set<TopicPartition> all = commits_.owned();
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
    auto deadline = clock_.now() + kFirstAssignmentWait;
    while (!had_assignment_ && clock_.now() < deadline) {
      std::unique_ptr<RdKafka::Message> msg(consumer_->consume(50));
    }
  }
  consumer_->close(); // revokes (rebalance_cb) and leaves the group at once
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
void Poller::Impl::destroyConsumer() {
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

Poller::Poller(PollerContext context) : impl_(std::make_unique<Impl>(*this, std::move(context))) {}

Poller::~Poller() {
  requestStop();
  auto bound = impl_->ctx_.mapping.scaling.grace_period + impl_->ctx_.mapping.function.timeout +
               kFirstAssignmentWait + milliseconds(15000);
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

void Poller::requestStop(std::optional<milliseconds> grace) {
  if (!impl_) {
    return;
  }
  if (grace) {
    const auto until = (impl_->clock_.now() + *grace).time_since_epoch().count();
    auto cap = impl_->grace_cap_until_.load();
    while ((cap == Impl::kNoGraceCap || until < cap) &&
           !impl_->grace_cap_until_.compare_exchange_weak(cap, until)) {
    }
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
