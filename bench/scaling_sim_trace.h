#pragma once

// kesm_scaling_sim's workload traces: what is produced when, and the pollers a trace allows.
// Times are integer milliseconds throughout the simulator (scaling_sim.cc explains the model).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kesm::bench::sim {

using Millis = std::int64_t;

constexpr Millis kSecond = 1000;
constexpr Millis kMinute = 60 * kSecond;
constexpr Millis kHour = 60 * kMinute;

struct Spike {
  Millis at = 0;
  std::int64_t records = 0;
};

struct Trace {
  std::string name;
  std::string summary;
  int partitions = 1;
  std::int64_t initial_backlog = 0; // records at t=0, spread evenly over the partitions
  int batch_size = 100;
  Millis function_duration = 100;
  int minimum_pollers = 1;
  int maximum_pollers = 1;
  Millis duration = 0; // 0: run until drained and back at the minimum
  // Total ingest in records/s at time t (before noise).
  std::function<double(Millis)> ingest_rate;
  double noise = 0; // relative standard deviation of the ingest, drawn once per second
  std::vector<Spike> spikes;
};

// Every trace, in the order the tables print them.
std::vector<Trace> traces();

} // namespace kesm::bench::sim
