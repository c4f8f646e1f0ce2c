#pragma once

// What `kesm controller` learns from a mapping's poller pods (docs/kubernetes.md, "What the
// controller learns from pods"): every statusInterval it lists the EndpointSlices of the
// mapping's headless Service through the API server and GETs every endpoint's /status over
// plain HTTP. From the answers it keeps the mapping's invocation totals (the controller's
// InvocationStats, as the in-process tally is in `kesm run`) and learns of a pod whose
// mapping is Disabled (a fatal error: the controller disables the mapping).
//
// A round never stalls on a pod: each read has its own timeout, reads run a few at a time,
// and the whole round has a deadline after which the pods not yet read are skipped. A round
// whose list fails (API server unreachable, 403) changes nothing: the totals stay, so the
// decision sees no invocations in that time and falls back to the committed offsets; the
// failure is logged once per episode.

#include "common/log.h"
#include "k8s/pod_status.h"
#include "k8s/statefulset_scale.h"
#include "metrics/metrics.h"
#include "net/http.h"
#include "scaler/signals.h"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace kesm::k8s {

struct InCluster;

// How one read of a pod's /status ended. The words of toString() are the `outcome` label of
// kesm_pod_status_reads_total.
enum class PodReadOutcome {
  kOk,           // 200 with a poller's /status of this mapping
  kHttpError,    // any other HTTP status
  kTimeout,      // no whole answer within the read's timeout
  kUnreachable,  // connect refused, no route
  kIoError,      // the connection broke, or the answer was not HTTP
  kTooLarge,     // a body above PodStatusScraperOptions::max_body_bytes: refused unread
  kMalformed,    // 200 but not a poller's /status (decodePollerStatus)
  kWrongMapping, // a poller of another mapping: the Service selects the wrong pods
  kSkipped,      // the round's deadline passed before this pod's turn
};

// "ok", "http_error", "timeout", "unreachable", "io_error", "too_large", "malformed",
// "wrong_mapping", "skipped".
const char* toString(PodReadOutcome outcome);

// GETs one pod's /status: plain HTTP in the product, a script in unit tests. Called from
// several threads at once: thread-safe. Transport failures in the result, never thrown; the
// whole exchange ends within `timeout`.
using StatusFetcher =
    std::function<net::HttpResult(const PodEndpoint& endpoint, std::chrono::milliseconds timeout)>;

// GET statusUrl(endpoint) with a fresh connection (a round touches each pod once per
// statusInterval: a kept-alive connection to each of 2000 pods would hold 2000 descriptors);
// a body above max_body_bytes ends the read (kIo, "body limit exceeded").
StatusFetcher httpStatusFetcher(std::size_t max_body_bytes = kMaxPollerStatusBytes);

struct PodStatusScraperOptions {
  std::string mapping; // the mapping every pod must report; the metrics' and logs' label
  std::string ns;      // the Service's namespace
  std::string service; // the headless Service governing the poller StatefulSet
  std::chrono::milliseconds interval{15000};          // statusInterval: round start to round start
  std::chrono::milliseconds read_timeout{2000};       // one pod's GET /status
  std::chrono::milliseconds round_timeout{10000};     // list and every read of one round
  int concurrency = 16;                               // reads in flight at once
  int max_pods = 2000;                                // endpoints read per round; more are skipped
  std::size_t max_body_bytes = kMaxPollerStatusBytes; // what httpStatusFetcher is told
  // Pods whose last totals are remembered (InvocationAccumulator): 4 * the 2000 replicas a
  // mapping may have.
  std::size_t max_known_pods = 8000;
  metrics::PodStatusProbe* probe = nullptr; // outlives the scraper; null: no metrics
  // Called once, on the scraper's thread (or scrapeOnce()'s caller), the first time a pod of
  // this mapping reports state Disabled: "pod NAME of Service NS/SVC reports mapping M
  // Disabled: REASON" (REASON clipped to 500 bytes). The controller disables the mapping
  // (Controller::disable). Must not call back into the scraper's stop().
  std::function<void(const std::string& reason)> on_fatal;
  // Where log lines go; empty: kesm::log(level, "pods", line). Called on the scraper's thread.
  std::function<void(LogLevel, const std::string&)> log;
};

// What one round did.
struct ScrapeRound {
  bool list_ok = false;
  std::string list_error;            // why the list failed; empty when list_ok
  std::vector<std::string> warnings; // slices and endpoints skipped (decodeEndpointSliceList)
  int endpoints = 0;                 // pods listed (before the max_pods cap)
  std::map<std::string, PodReadOutcome> outcomes; // per pod read or skipped
  std::map<std::string, std::string> errors;      // per pod not kOk: why, for logs
  std::chrono::milliseconds took{0};
};

// Thread-safe: start()/stop() from the owner's thread; invocationTotals(), podsSeen() and
// lastRound() from any thread, never blocked by a round in progress. scrapeOnce() runs one
// round on the caller's thread (the scraper's own thread calls it every interval; tests call
// it directly) and must not run concurrently with itself or the thread.
class PodStatusScraper final : public scaler::InvocationStats {
public:
  // api: lists the EndpointSlices (an ApiClient in the product, a script in tests; used by one
  // thread at a time); fetch: reads /status. Throws std::invalid_argument on a bad option.
  PodStatusScraper(std::unique_ptr<ApiTransport> api, StatusFetcher fetch,
                   PodStatusScraperOptions options);
  ~PodStatusScraper() override; // stop()
  PodStatusScraper(const PodStatusScraper&) = delete;
  PodStatusScraper& operator=(const PodStatusScraper&) = delete;

  // Starts the thread: a round at once, then one every interval (at once after a round that
  // overran it). Throws ResourceError when no thread can be started.
  void start();
  // Ends the thread. Waits for a round in progress: no read starts after this, those in flight
  // end within read_timeout, a list within the API client's timeout. Idempotent.
  void stop();

  ScrapeRound scrapeOnce();

  // Finished invocation attempts of all the mapping's pods, summed across restarts
  // (InvocationAccumulator); 0 until the first round read a pod.
  scaler::InvocationTotals invocationTotals() const override;
  // Pods the last successful list named (before the max_pods cap); 0 before one.
  int podsSeen() const;
  std::optional<ScrapeRound> lastRound() const;
  // on_fatal's reason once it was called.
  std::optional<std::string> fatal() const;

private:
  void loop();
  void emit(LogLevel level, const std::string& line);
  void readPods(const std::vector<PodEndpoint>& pods,
                std::chrono::steady_clock::time_point deadline, ScrapeRound& round,
                std::map<std::string, std::optional<scaler::InvocationTotals>>& totals,
                std::vector<std::pair<std::string, std::string>>& disabled);
  void logRound(const ScrapeRound& round);

  std::unique_ptr<ApiTransport> api_;
  StatusFetcher fetch_;
  PodStatusScraperOptions options_;
  std::string path_;

  // The round's own state: touched only by the thread running scrapeOnce().
  InvocationAccumulator accumulator_;
  std::optional<std::string> list_episode_; // the failing list's error, logged once
  std::set<std::string> failing_pods_;      // pods whose last read failed, logged once
  std::set<std::string> warned_;            // slice warnings already logged

  mutable std::mutex mutex_; // the state below
  std::condition_variable cv_;
  bool stopping_ = false;
  scaler::InvocationTotals totals_;
  int pods_seen_ = 0;
  std::optional<ScrapeRound> last_round_;
  std::optional<std::string> fatal_;
  std::thread thread_;
};

// A scraper whose list goes to the API server of `cluster` (an ApiClient: token re-read on
// rotation and after a 401; each list ends within `api_timeout`) and whose reads are
// httpStatusFetcher(options.max_body_bytes). Throws std::runtime_error when the CA file cannot
// be loaded, std::invalid_argument on a bad option.
std::unique_ptr<PodStatusScraper> makeApiPodStatusScraper(const InCluster& cluster,
                                                          PodStatusScraperOptions options,
                                                          std::chrono::milliseconds api_timeout);

} // namespace kesm::k8s
