#include "app/status.h"

#include "common/json.h"
#include "common/log.h"

#include <cstdio>
#include <sstream>

namespace kesm::app {

namespace {

std::string eventsJson(const EventCounts& events) {
  std::ostringstream out;
  out << "{\"polled\":" << static_cast<long long>(events.polled)
      << ",\"invoked\":" << static_cast<long long>(events.invoked)
      << ",\"failedInvoke\":" << static_cast<long long>(events.failed)
      << ",\"committed\":" << static_cast<long long>(events.committed) << "}";
  return out.str();
}

// Unix seconds with milliseconds: what JavaScript's Date takes after * 1000.
std::string unixSeconds(scaler::WallTime t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  char text[32];
  std::snprintf(text, sizeof text, "%lld.%03lld", static_cast<long long>(ms / 1000),
                static_cast<long long>(ms % 1000));
  return text;
}

} // namespace

std::string mappingHistoryJson(const config::Mapping& mapping,
                               const scaler::StatusHistory::Snapshot& history) {
  using json::quote;
  std::ostringstream out;
  out << "{\"name\":" << quote(mapping.name)
      << ",\"evaluationIntervalSeconds\":" << mapping.scaling.evaluation_interval.count() / 1000.0
      << ",\"samples\":[";
  for (size_t i = 0; i < history.samples.size(); ++i) {
    const auto& s = history.samples[i];
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.1f", s.committed_per_second);
    out << (i ? "," : "") << "{\"time\":" << unixSeconds(s.at) << ",\"lag\":";
    if (s.lag_total) {
      out << *s.lag_total;
    } else {
      out << "null";
    }
    out << ",\"desired\":" << s.desired << ",\"running\":" << s.running
        << ",\"committedPerSecond\":" << rate << "}";
  }
  out << "],\"decisions\":[";
  for (size_t i = 0; i < history.decisions.size(); ++i) {
    const auto& d = history.decisions[i];
    out << (i ? "," : "") << "{\"time\":" << unixSeconds(d.at)
        << ",\"at\":" << quote(utcTimestamp(d.at)) << ",\"from\":" << d.from << ",\"to\":" << d.to
        << ",\"reason\":" << quote(d.reason) << ",\"detail\":" << quote(d.detail) << "}";
  }
  out << "]}";
  return out.str();
}

std::string historyJson(const scaler::StatusHistory::Limits& limits,
                        const std::vector<std::string>& mappings) {
  // A stream, not `"literal" + std::to_string(…)`: GCC 12 at -O3 reports a false -Wrestrict.
  std::ostringstream out;
  out << "{\"limits\":{\"samples\":" << limits.samples
      << ",\"windowSeconds\":" << limits.window.count() << ",\"decisions\":" << limits.decisions
      << "},\"mappings\":[";
  for (size_t i = 0; i < mappings.size(); ++i) {
    out << (i ? "," : "") << mappings[i];
  }
  out << "]}";
  return out.str();
}

std::string mappingStatusJson(const config::Mapping& mapping, const scaler::ControllerSnapshot& s,
                              const std::map<TopicPartition, std::string>& notes,
                              const EventCounts& events, Clock::time_point steady_now,
                              std::chrono::system_clock::time_point wall_now) {
  using json::quote;
  std::ostringstream out;
  out << "{\"name\":" << quote(mapping.name) << ",\"state\":\""
      << (s.disabled ? "Disabled" : "Enabled") << "\"";
  if (s.disabled) {
    out << ",\"stateReason\":" << quote(s.disabled_reason);
  }
  out << ",\"topics\":[";
  for (size_t i = 0; i < mapping.source.topics.size(); ++i) {
    out << (i ? "," : "") << quote(mapping.source.topics[i]);
  }
  out << "],\"consumerGroupId\":" << quote(mapping.source.consumer_group_id)
      << ",\"pollers\":{\"desired\":" << s.desired << ",\"active\":" << s.pool.active
      << ",\"running\":" << s.pool.running << ",\"stopping\":" << s.pool.stopping
      << ",\"minimum\":" << mapping.scaling.minimum_pollers
      << ",\"maximum\":" << mapping.scaling.maximum_pollers << ",\"workers\":[";
  for (size_t i = 0; i < s.pool.pollers.size(); ++i) {
    const auto& w = s.pool.pollers[i];
    out << (i ? "," : "") << "{\"id\":" << quote(w.id) << ",\"state\":\""
        << scaler::toString(w.state) << "\",\"partitions\":" << w.partitions << "}";
  }
  out << "]},\"lag\":{\"stale\":" << (s.lag_stale ? "true" : "false");
  if (s.lag) {
    out << ",\"total\":" << s.lag->total << ",\"max\":" << s.lag->max << ",\"partitions\":[";
    for (size_t i = 0; i < s.lag->partitions.size(); ++i) {
      const auto& p = s.lag->partitions[i];
      out << (i ? "," : "") << "{\"topic\":" << quote(p.tp.topic)
          << ",\"partition\":" << p.tp.partition.value() << ",\"lag\":" << p.lag
          << ",\"highWatermark\":" << p.high << ",\"committed\":";
      if (p.committed) {
        out << *p.committed;
      } else {
        out << "null";
      }
      // Lagging with no commit progress since: null when not lagging.
      out << ",\"stalledSince\":";
      auto stalled = s.stalled_since.find(p.tp);
      if (stalled != s.stalled_since.end() && stalled->second) {
        const auto since = *stalled->second;
        auto wall = wall_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                   steady_now - since);
        out << quote(utcTimestamp(wall)) << ",\"stalledSeconds\":"
            << std::chrono::duration_cast<std::chrono::milliseconds>(steady_now - since).count() /
                   1000.0;
      } else {
        out << "null,\"stalledSeconds\":0";
      }
      if (auto n = notes.find(p.tp); n != notes.end()) {
        out << ",\"note\":" << quote(n->second);
      }
      out << "}";
    }
    out << "]";
  }
  out << "},\"events\":" << eventsJson(events) << "}";
  return out.str();
}

std::string standbyStatusJson(const config::Mapping& mapping, const std::string& reason,
                              const EventCounts& events, const char* state) {
  using json::quote;
  std::string out = "{\"name\":";
  out += quote(mapping.name);
  out += ",\"state\":";
  out += quote(state);
  out += ",\"stateReason\":";
  out += quote(reason);
  out += ",\"consumerGroupId\":";
  out += quote(mapping.source.consumer_group_id);
  out += ",\"pollers\":{\"desired\":0,\"active\":0,\"running\":0,\"stopping\":0,\"minimum\":";
  out += std::to_string(mapping.scaling.minimum_pollers);
  out += ",\"maximum\":";
  out += std::to_string(mapping.scaling.maximum_pollers);
  out += ",\"workers\":[]},\"events\":";
  out += eventsJson(events);
  return out + "}";
}

std::string leaderStatusJson(const k8s::ElectionStatus& s, bool leading,
                             Clock::time_point steady_now) {
  using json::quote;
  std::ostringstream out;
  out << "{\"role\":\"" << (leading ? "leader" : "standby")
      << "\",\"identity\":" << quote(s.identity) << ",\"lease\":" << quote(s.lease)
      << ",\"holder\":" << quote(s.holder) << ",\"termSecondsLeft\":";
  if (leading && s.valid_until) {
    out << std::chrono::duration_cast<std::chrono::milliseconds>(*s.valid_until - steady_now)
                   .count() /
               1000.0;
  } else {
    out << "null";
  }
  out << ",\"transitions\":" << s.transitions << ",\"leaseErrors\":" << s.lease_errors
      << ",\"lastError\":" << quote(s.last_error) << "}";
  return out.str();
}

} // namespace kesm::app
