// PodStatusScraper of k8s/pod_status_scraper.h: the list through the API server, the reads
// on a few threads per round, the accumulator, the fatal hand-off, logs and metrics.

#include "k8s/pod_status_scraper.h"

#include "common/resources.h"
#include "k8s/api_client.h"
#include "k8s/in_cluster.h"
#include "k8s/lease_codec.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>

namespace kesm::k8s {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

namespace {

// Log lines name at most this many pods a round; the rest are counted.
constexpr std::size_t kPodsLoggedPerRound = 5;

PodReadOutcome outcomeForTransport(const net::HttpResult& r) {
  switch (r.error) {
  case net::HttpErrorKind::kTimeout:
    return PodReadOutcome::kTimeout;
  case net::HttpErrorKind::kConnect:
    return PodReadOutcome::kUnreachable;
  default:
    return r.error_message.find("body limit") != std::string::npos ? PodReadOutcome::kTooLarge
                                                                   : PodReadOutcome::kIoError;
  }
}

// One pod's read, written by the one worker that took its index.
struct Read {
  PodReadOutcome outcome = PodReadOutcome::kSkipped;
  std::string error;
  std::optional<PollerStatus> status;
};

} // namespace

const char* toString(PodReadOutcome outcome) {
  switch (outcome) {
  case PodReadOutcome::kOk:
    return "ok";
  case PodReadOutcome::kHttpError:
    return "http_error";
  case PodReadOutcome::kTimeout:
    return "timeout";
  case PodReadOutcome::kUnreachable:
    return "unreachable";
  case PodReadOutcome::kIoError:
    return "io_error";
  case PodReadOutcome::kTooLarge:
    return "too_large";
  case PodReadOutcome::kMalformed:
    return "malformed";
  case PodReadOutcome::kWrongMapping:
    return "wrong_mapping";
  case PodReadOutcome::kSkipped:
    return "skipped";
  }
  return "skipped";
}

StatusFetcher httpStatusFetcher(std::size_t max_body_bytes) {
  return [max_body_bytes](const PodEndpoint& endpoint, milliseconds timeout) {
    try {
      net::HttpClient client(net::parseUrl(statusUrl(endpoint)));
      client.setResponseBodyLimit(max_body_bytes);
      return client.request("GET", "/status", "", {{"Accept", "application/json"}}, timeout);
    } catch (const std::exception& e) { // a URL the codec let through but Boost.URL refuses
      net::HttpResult r;
      r.error = net::HttpErrorKind::kConnect;
      r.error_message = std::string("cannot read ") + statusUrl(endpoint) + ": " + e.what();
      return r;
    }
  };
}

PodStatusScraper::PodStatusScraper(std::unique_ptr<ApiTransport> api, StatusFetcher fetch,
                                   PodStatusScraperOptions options)
    : api_(std::move(api)), fetch_(std::move(fetch)), options_(std::move(options)),
      accumulator_(options_.max_known_pods) {
  const auto bad = [](const std::string& what) {
    throw std::invalid_argument("pod status scraper: " + what);
  };
  if (!api_ || !fetch_) {
    bad("an API transport and a status fetcher are required");
  }
  if (options_.mapping.empty() || options_.ns.empty() || options_.service.empty()) {
    bad("mapping, namespace and service must not be empty");
  }
  if (options_.interval <= milliseconds(0) || options_.read_timeout <= milliseconds(0)) {
    bad("interval and read_timeout must be positive");
  }
  if (options_.round_timeout < options_.read_timeout) {
    bad("round_timeout must be at least read_timeout");
  }
  if (options_.concurrency < 1 || options_.concurrency > 256) {
    bad("concurrency must be 1 to 256, got " + std::to_string(options_.concurrency));
  }
  if (options_.max_pods < 1) {
    bad("max_pods must be at least 1");
  }
  path_ = endpointSlicesPath(options_.ns, options_.service);
}

PodStatusScraper::~PodStatusScraper() { stop(); }

void PodStatusScraper::start() {
  if (thread_.joinable()) {
    return;
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
  }
  thread_ =
      startThread("the pod status scraper of mapping " + options_.mapping, [this] { loop(); });
}

void PodStatusScraper::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join(); // bounded: a round ends by its deadline, each read by its timeout
  }
}

void PodStatusScraper::loop() {
  auto next = SteadyClock::now();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (cv_.wait_until(lock, next, [this] { return stopping_; })) {
      break;
    }
    lock.unlock();
    const auto started = SteadyClock::now();
    scrapeOnce();
    next = started + options_.interval; // in the past after an overrun: at once
    lock.lock();
  }
}

void PodStatusScraper::emit(LogLevel level, const std::string& line) {
  if (options_.log) {
    options_.log(level, line);
  } else {
    log(level, "pods", line);
  }
}

ScrapeRound PodStatusScraper::scrapeOnce() {
  const auto started = SteadyClock::now();
  const auto deadline = started + options_.round_timeout;
  ScrapeRound round;
  const std::string service = options_.ns + "/" + options_.service;

  const net::HttpResult listed = api_->request("GET", path_, "");
  std::optional<EndpointList> list;
  if (!listed.transportOk()) {
    round.list_error = listed.error_message;
  } else if (listed.response.status != 200) {
    round.list_error = describeFailure(listed.response.status, listed.response.body);
    if (listed.response.status == 403) {
      round.list_error += ". RBAC: the controller's Role needs `list` on `endpointslices` "
                          "(apiGroup discovery.k8s.io) in namespace " +
                          options_.ns;
    } else if (listed.response.status == 401 && !api_->tokenError().empty()) {
      round.list_error += " (token file: " + api_->tokenError() + ")";
    }
  } else {
    std::string error;
    list = decodeEndpointSliceList(listed.response.body, error);
    if (!list) {
      round.list_error = "HTTP 200 but " + error;
    }
  }

  if (!list) {
    round.took = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - started);
    if (options_.probe != nullptr) {
      options_.probe->list_errors.Increment();
    }
    if (!list_episode_) {
      emit(LogLevel::kError, options_.mapping + ": cannot list the pods of Service " + service +
                                 " at " + api_->describe() + ": " + round.list_error +
                                 "; the invocation totals hold (the decision goes by committed "
                                 "offsets alone) until a list succeeds");
    }
    list_episode_ = round.list_error;
    std::lock_guard lock(mutex_);
    last_round_ = round;
    return round;
  }
  if (list_episode_) {
    emit(LogLevel::kInfo,
         options_.mapping + ": listing the pods of Service " + service + " works again");
    list_episode_.reset();
  }
  round.list_ok = true;
  round.warnings = std::move(list->warnings);
  round.endpoints = static_cast<int>(list->endpoints.size());
  if (warned_.size() > 1000) {
    warned_.clear(); // bounded; a warning still true is logged once more
  }
  for (const auto& w : round.warnings) {
    if (warned_.insert(w).second) {
      emit(LogLevel::kWarn, options_.mapping + ": Service " + service + ": " + w);
    }
  }
  std::vector<PodEndpoint> pods = std::move(list->endpoints);
  if (pods.size() > static_cast<std::size_t>(options_.max_pods)) {
    const std::string why =
        "beyond the " + std::to_string(options_.max_pods) + " pods read in a round";
    for (std::size_t i = static_cast<std::size_t>(options_.max_pods); i < pods.size(); ++i) {
      round.outcomes[pods[i].pod] = PodReadOutcome::kSkipped;
      round.errors[pods[i].pod] = why;
    }
    if (warned_.insert(why).second) {
      emit(LogLevel::kWarn, options_.mapping + ": Service " + service + " lists " +
                                std::to_string(pods.size()) + " pods; only the first " +
                                std::to_string(options_.max_pods) +
                                " (by name) are read each round");
    }
    pods.resize(static_cast<std::size_t>(options_.max_pods));
  }

  std::map<std::string, std::optional<scaler::InvocationTotals>> totals;
  std::vector<std::pair<std::string, std::string>> disabled; // pod, reason
  readPods(pods, deadline, round, totals, disabled);
  for (const auto& [pod, outcome] : round.outcomes) {
    totals.emplace(pod, std::nullopt); // listed but not read (skipped past max_pods)
  }
  accumulator_.addRound(totals);
  round.took = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - started);
  logRound(round);

  if (options_.probe != nullptr) {
    options_.probe->pods_seen.Set(round.endpoints);
    for (const auto& [pod, outcome] : round.outcomes) {
      options_.probe->reads(toString(outcome)).Increment();
    }
  }
  std::optional<std::string> fire;
  {
    std::lock_guard lock(mutex_);
    totals_ = accumulator_.totals();
    pods_seen_ = round.endpoints;
    last_round_ = round;
    if (!disabled.empty() && !fatal_) {
      const auto& [pod, reason] = disabled.front(); // the first by name
      fatal_ = "pod " + pod + " of Service " + service + " reports mapping " + options_.mapping +
               " Disabled: " + (reason.empty() ? "(no reason given)" : excerpt(reason, 500));
      fire = fatal_;
    }
  }
  if (fire) {
    emit(LogLevel::kError, options_.mapping + ": " + *fire);
    if (options_.on_fatal) {
      options_.on_fatal(*fire);
    }
  }
  return round;
}

void PodStatusScraper::readPods(
    const std::vector<PodEndpoint>& pods, SteadyClock::time_point deadline, ScrapeRound& round,
    std::map<std::string, std::optional<scaler::InvocationTotals>>& totals,
    std::vector<std::pair<std::string, std::string>>& disabled) {
  std::vector<Read> reads(pods.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next++; i < pods.size(); i = next++) {
      Read& r = reads[i];
      const auto now = SteadyClock::now();
      bool stopping;
      {
        std::lock_guard lock(mutex_);
        stopping = stopping_;
      }
      if (now >= deadline || stopping) {
        r.error = stopping ? "the scraper is stopping" : "the round's deadline passed first";
        continue;
      }
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - now);
      const net::HttpResult http =
          fetch_(pods[i], std::max(milliseconds(1), std::min(options_.read_timeout, left)));
      if (!http.transportOk()) {
        r.outcome = outcomeForTransport(http);
        r.error = http.error_message;
        continue;
      }
      if (http.response.status != 200) {
        r.outcome = PodReadOutcome::kHttpError;
        r.error = "HTTP " + std::to_string(http.response.status);
        continue;
      }
      std::string error;
      r.status = decodePollerStatus(http.response.body, error);
      if (!r.status) {
        r.outcome = PodReadOutcome::kMalformed;
        r.error = error;
      } else if (r.status->mapping != options_.mapping) {
        r.outcome = PodReadOutcome::kWrongMapping;
        r.error = "a poller of mapping \"" + excerpt(r.status->mapping, 80) + "\", not " +
                  options_.mapping + ": the Service selects another mapping's pods";
      } else {
        r.outcome = PodReadOutcome::kOk;
      }
    }
  };
  const std::size_t workers = std::min(pods.size(), static_cast<std::size_t>(options_.concurrency));
  std::vector<std::thread> threads;
  for (std::size_t w = 1; w < workers; ++w) { // the calling thread is the first worker
    try {
      threads.push_back(startThread("a pod status reader", work));
    } catch (const std::exception& e) {
      emit(LogLevel::kWarn, options_.mapping + ": reading pods with " + std::to_string(w) +
                                " thread(s) this round: " + e.what());
      break;
    }
  }
  work();
  for (auto& t : threads) {
    t.join(); // bounded: every read ends by the deadline
  }
  for (std::size_t i = 0; i < pods.size(); ++i) {
    const std::string& pod = pods[i].pod;
    Read& r = reads[i];
    round.outcomes[pod] = r.outcome;
    if (r.outcome != PodReadOutcome::kOk) {
      round.errors[pod] = statusUrl(pods[i]) + ": " + r.error;
      totals[pod] = std::nullopt;
      continue;
    }
    totals[pod] = r.status->invocations;
    if (r.status->disabled) {
      disabled.emplace_back(pod, r.status->disabled_reason);
    }
  }
}

void PodStatusScraper::logRound(const ScrapeRound& round) {
  std::vector<std::string> failed, recovered;
  std::set<std::string> failing;
  for (const auto& [pod, outcome] : round.outcomes) {
    if (outcome == PodReadOutcome::kOk) {
      if (failing_pods_.count(pod) != 0) {
        recovered.push_back(pod);
      }
      continue;
    }
    failing.insert(pod);
    if (failing_pods_.count(pod) == 0) {
      failed.push_back(pod);
    }
  }
  failing_pods_ = std::move(failing); // pods gone from the Service are forgotten
  const auto report = [&](const std::vector<std::string>& pods, LogLevel level, bool bad) {
    for (std::size_t i = 0; i < pods.size() && i < kPodsLoggedPerRound; ++i) {
      const auto& pod = pods[i];
      emit(level, options_.mapping + ": pod " + pod +
                      (bad ? std::string(" unreadable (") + toString(round.outcomes.at(pod)) +
                                 "): " + round.errors.at(pod) +
                                 "; its invocations count from its next good read"
                           : std::string(" readable again")));
    }
    if (pods.size() > kPodsLoggedPerRound) {
      emit(level, options_.mapping + ": and " + std::to_string(pods.size() - kPodsLoggedPerRound) +
                      " more pod(s) " + (bad ? "unreadable" : "readable again"));
    }
  };
  report(failed, LogLevel::kWarn, true);
  report(recovered, LogLevel::kInfo, false);
}

scaler::InvocationTotals PodStatusScraper::invocationTotals() const {
  std::lock_guard lock(mutex_);
  return totals_;
}

int PodStatusScraper::podsSeen() const {
  std::lock_guard lock(mutex_);
  return pods_seen_;
}

std::optional<ScrapeRound> PodStatusScraper::lastRound() const {
  std::lock_guard lock(mutex_);
  return last_round_;
}

std::optional<std::string> PodStatusScraper::fatal() const {
  std::lock_guard lock(mutex_);
  return fatal_;
}

std::unique_ptr<PodStatusScraper> makeApiPodStatusScraper(const InCluster& cluster,
                                                          PodStatusScraperOptions options,
                                                          milliseconds api_timeout) {
  const std::size_t limit = options.max_body_bytes;
  return std::make_unique<PodStatusScraper>(makeApiTransport(cluster, api_timeout),
                                            httpStatusFetcher(limit), std::move(options));
}

} // namespace kesm::k8s
