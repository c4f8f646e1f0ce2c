// StatefulSetPool of k8s/statefulset_pool.h.

#include "k8s/statefulset_pool.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace kesm::k8s {

StatefulSetPool::StatefulSetPool(std::unique_ptr<ScaleClient> client,
                                 StatefulSetPoolOptions options)
    : client_(std::move(client)), options_(std::move(options)) {
  options_.pollers_per_pod = std::max(1, options_.pollers_per_pod);
  const std::string target = client_->describe();
  const auto slash = target.rfind('/');
  statefulset_ = slash == std::string::npos ? target : target.substr(slash + 1);
}

void StatefulSetPool::emit(LogLevel level, const std::string& line) {
  if (options_.log) {
    options_.log(level, line);
  } else {
    log(level, "pool", line);
  }
}

int StatefulSetPool::activeNow() const { return known_ ? known_->spec_replicas : 0; }

StatefulSetPool::Read StatefulSetPool::readLocked(const char* why) {
  ScaleCallResult result = client_->get();
  if (options_.probe != nullptr) {
    options_.probe->reads(toString(result.outcome)).Increment();
  }
  std::optional<std::string> line;
  LogLevel level = LogLevel::kWarn;
  {
    std::lock_guard lock(mutex_);
    if (result.ok()) {
      const bool changed = known_ && known_->spec_replicas != result.scale->spec_replicas;
      if (changed) {
        line = options_.mapping + ": spec.replicas of statefulset " + client_->describe() +
               " was changed outside kesm: " + std::to_string(known_->spec_replicas) + " -> " +
               std::to_string(result.scale->spec_replicas) +
               " (the controller owns this count and sets it back at this evaluation; change "
               "scaling.minimumPollers/maximumPollers instead)";
      } else if (read_episode_) {
        level = LogLevel::kInfo;
        line =
            options_.mapping + ": statefulset " + client_->describe() + " read again (" + why + ")";
      }
      known_ = result.scale;
      read_episode_.reset();
    } else {
      if (result.outcome == ScaleOutcome::kNotFound) {
        known_.reset(); // nothing runs: the StatefulSet is gone
      }
      if (read_episode_ != result.outcome) {
        line = options_.mapping + ": cannot read statefulset " + client_->describe() + " (" + why +
               "; " + toString(result.outcome) + "): " + result.message +
               "; /status keeps the last count read";
      }
      read_episode_ = result.outcome;
    }
  }
  if (line) {
    emit(level, *line);
  }
  return Read{result.ok(), result.outcome, result.ok() ? std::string() : result.message};
}

scaler::ScaleResult StatefulSetPool::seedReplicas() {
  std::lock_guard io(io_mutex_);
  const Read read = readLocked("seed");
  std::lock_guard lock(mutex_);
  scaler::ScaleResult result;
  result.active = activeNow();
  if (!read.ok) {
    result.error =
        "the replicas of statefulset " + client_->describe() + " could not be read: " + read.error;
  }
  return result;
}

scaler::ScaleResult StatefulSetPool::failWrite(int desired, ScaleOutcome outcome,
                                               const std::string& message, Attempt attempt) {
  // A count out of range is not held: the next decision in range replaces it.
  const bool hold = attempt != Attempt::kRefused;
  if (options_.probe != nullptr) {
    if (attempt != Attempt::kReadFailed) {
      options_.probe->writes(toString(outcome)).Increment();
    }
    if (hold) {
      options_.probe->write_pending.Set(1);
    }
  }
  std::optional<std::string> line;
  scaler::ScaleResult result;
  {
    std::lock_guard lock(mutex_);
    if (hold) {
      pending_ = desired;
    }
    ++failed_writes_;
    // Once per episode, and again when the reason changes (a timeout becoming a 403).
    if (write_episode_ != outcome) {
      line = options_.mapping + ": holding at " + std::to_string(activeNow()) +
             " replica(s), cannot set " + std::to_string(desired) + " (" + toString(outcome) +
             "): " + message + "; the pods keep running, retried at every evaluation";
    }
    write_episode_ = outcome;
    write_error_ = message;
    result.active = activeNow();
    result.error = message;
  }
  if (line) {
    emit(LogLevel::kError, *line);
  }
  return result;
}

void StatefulSetPool::writeSucceeded(int desired, const ScaleCallResult& result) {
  if (options_.probe != nullptr) {
    options_.probe->writes(toString(ScaleOutcome::kOk)).Increment();
    options_.probe->write_pending.Set(0);
  }
  std::vector<std::pair<LogLevel, std::string>> lines;
  {
    std::lock_guard lock(mutex_);
    const int before = activeNow();
    known_ = result.scale;
    pending_.reset();
    if (result.changed_elsewhere) {
      lines.emplace_back(LogLevel::kWarn, options_.mapping + ": spec.replicas of statefulset " +
                                              client_->describe() + " had been set to " +
                                              std::to_string(*result.changed_elsewhere) +
                                              " outside kesm; the controller wrote " +
                                              std::to_string(desired) +
                                              " over it after re-reading (409)");
    }
    if (write_episode_) {
      lines.emplace_back(LogLevel::kInfo, options_.mapping + ": replicas of statefulset " +
                                              client_->describe() + " set to " +
                                              std::to_string(desired) + " after " +
                                              std::to_string(failed_writes_) + " failed write(s)");
    } else {
      lines.emplace_back(LogLevel::kInfo, options_.mapping + ": replicas of statefulset " +
                                              client_->describe() + " " + std::to_string(before) +
                                              " -> " + std::to_string(desired));
    }
    write_episode_.reset();
    write_error_.clear();
    failed_writes_ = 0;
  }
  for (const auto& [level, line] : lines) {
    emit(level, line);
  }
}

scaler::ScaleResult StatefulSetPool::scaleTo(int pollers) {
  const int per_pod = options_.pollers_per_pod;
  scaler::ScaleResult result =
      scaleReplicas(pollers < 0 ? pollers : (pollers + per_pod - 1) / per_pod);
  result.active *= per_pod;
  return result;
}

scaler::ScaleResult StatefulSetPool::seed() {
  scaler::ScaleResult result = seedReplicas();
  result.active *= options_.pollers_per_pod;
  return result;
}

scaler::ScaleResult StatefulSetPool::scaleReplicas(int desired) {
  std::lock_guard io(io_mutex_);
  {
    std::lock_guard lock(mutex_);
    if (shut_down_) {
      return scaler::ScaleResult{activeNow(),
                                 "the pool is shut down: replicas are left as they are"};
    }
  }
  if (desired < 0 || desired > options_.max_replicas) {
    // Counted as a write: it is the controller's write that failed, though nothing was sent.
    return failWrite(desired, ScaleOutcome::kInvalid,
                     "replicas " + std::to_string(desired) + " refused before sending: from 0 to " +
                         std::to_string(options_.max_replicas) + " (maximumPollers)",
                     Attempt::kRefused);
  }
  bool read_now = false;
  {
    std::lock_guard lock(mutex_);
    read_now = !known_;
  }
  if (read_now) {
    // Never read, or gone (404): a write is based on a count read, never blind.
    const Read read = readLocked("before a write");
    if (!read.ok) {
      // Counted as a read (nothing was written); the count is held all the same.
      return failWrite(desired, read.outcome, read.error, Attempt::kReadFailed);
    }
  }
  bool unchanged = false;
  {
    std::lock_guard lock(mutex_);
    unchanged = known_ && known_->spec_replicas == desired;
  }
  if (unchanged && !read_now) {
    // Nothing to write: refresh the counts, and see whether someone else changed the spec.
    readLocked("refresh");
    std::lock_guard lock(mutex_);
    unchanged = known_ && known_->spec_replicas == desired;
  }
  if (unchanged) {
    std::lock_guard lock(mutex_);
    pending_.reset();
    if (options_.probe != nullptr) {
      options_.probe->write_pending.Set(0);
    }
    if (write_episode_) {
      // Someone else wrote the count we were holding: nothing left to write.
      write_episode_.reset();
      write_error_.clear();
      failed_writes_ = 0;
    }
    return scaler::ScaleResult{activeNow(), {}};
  }
  ScaleCallResult result = client_->set(desired);
  if (!result.ok()) {
    if (result.outcome == ScaleOutcome::kNotFound) {
      std::lock_guard lock(mutex_);
      known_.reset();
    }
    return failWrite(desired, result.outcome, result.message, Attempt::kSent);
  }
  writeSucceeded(desired, result);
  std::lock_guard lock(mutex_);
  return scaler::ScaleResult{activeNow(), {}};
}

scaler::PoolStatus StatefulSetPool::status() {
  std::lock_guard lock(mutex_);
  scaler::PoolStatus s;
  const int spec = activeNow();
  const int pods = known_ ? known_->status_replicas : 0;
  const int per_pod = options_.pollers_per_pod;
  s.active = spec * per_pod;
  s.running = std::min(spec, pods) * per_pod;
  s.stopping = std::max(0, pods - spec) * per_pod;
  s.spawn_error = write_error_;
  const int ordinals = std::max(spec, pods);
  s.pollers.reserve(static_cast<std::size_t>(ordinals));
  for (int i = 0; i < ordinals; ++i) {
    scaler::WorkerState state = i < std::min(spec, pods) ? scaler::WorkerState::kRunning
                                : i < spec               ? scaler::WorkerState::kStarting
                                                         : scaler::WorkerState::kStopping;
    s.pollers.push_back({statefulset_ + "-" + std::to_string(i), state, 0});
  }
  return s;
}

bool StatefulSetPool::shutdown(std::chrono::milliseconds /*timeout*/,
                               std::optional<std::chrono::milliseconds> /*grace*/) {
  int left = 0;
  {
    std::lock_guard lock(mutex_);
    if (shut_down_) {
      return true;
    }
    shut_down_ = true;
    left = activeNow();
  }
  emit(LogLevel::kInfo, options_.mapping + ": controller stopping; statefulset " +
                            client_->describe() + " keeps its " + std::to_string(left) +
                            " replica(s)");
  return true;
}

std::optional<int> StatefulSetPool::pendingWrite() const {
  std::lock_guard lock(mutex_);
  return pending_;
}

} // namespace kesm::k8s
