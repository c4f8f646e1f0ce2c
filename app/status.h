#pragma once

// The /status document of one mapping. Pure rendering of what the controller, the pollers'
// notes and the mapping's counters say; called on the metrics server's thread.

#include "common/types.h"
#include "config/config.h"
#include "k8s/leader_elector.h"
#include "scaler/controller.h"
#include "scaler/history.h"

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace kesm::app {

// Records counted by the mapping's probe (metrics::MappingProbe), since start.
struct EventCounts {
  double polled = 0, invoked = 0, failed = 0, committed = 0;
};

// One element of /status "mappings". `steady_now` and `wall_now` are the same instant: stall
// times are steady, /status shows them as UTC.
std::string mappingStatusJson(const config::Mapping& mapping,
                              const scaler::ControllerSnapshot& snapshot,
                              const std::map<TopicPartition, std::string>& notes,
                              const EventCounts& events, Clock::time_point steady_now,
                              std::chrono::system_clock::time_point wall_now);

// A mapping of a replica that stands by (leader election): no pollers, `reason` says who leads.
// `state` "Waiting": a pods-mode controller that could not read the StatefulSet yet.
std::string standbyStatusJson(const config::Mapping& mapping, const std::string& reason,
                              const EventCounts& events, const char* state = "Standby");

// /status "leaderElection": this replica's role and what it last read of the Lease.
std::string leaderStatusJson(const k8s::ElectionStatus& status, bool leading,
                             Clock::time_point steady_now);

// One element of /status/history "mappings": the samples and decisions of `history`, times
// as Unix seconds (milliseconds as decimals); decisions also as UTC text.
std::string mappingHistoryJson(const config::Mapping& mapping,
                               const scaler::StatusHistory::Snapshot& history);

// The /status/history document around its "mappings" elements (docs/operations.md).
std::string historyJson(const scaler::StatusHistory::Limits& limits,
                        const std::vector<std::string>& mappings);

} // namespace kesm::app
