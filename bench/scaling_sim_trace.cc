#include "bench/scaling_sim_trace.h"

#include <cmath>

namespace kesm::bench::sim {

std::vector<Trace> traces() {
  std::vector<Trace> all;
  {
    Trace t;
    t.name = "aws-burst";
    t.summary = "2,000,000 records (1 KB) on 100 partitions at t=0, batch 100, 100 ms function";
    t.partitions = 100;
    t.initial_backlog = 2'000'000;
    t.batch_size = 100;
    t.function_duration = 100;
    t.minimum_pollers = 1;
    t.maximum_pollers = 100;
    all.push_back(t);
  }
  {
    Trace t;
    t.name = "lambda-1000";
    t.summary = "50,000,000 records on 1000 partitions at t=0, batch 1, 5 s function";
    t.partitions = 1000;
    t.initial_backlog = 50'000'000;
    t.batch_size = 1;
    t.function_duration = 5 * kSecond;
    t.minimum_pollers = 1;
    t.maximum_pollers = 1000;
    all.push_back(t);
  }
  {
    Trace t;
    t.name = "azure";
    t.summary = "5,000,000 records on 100 partitions at t=0, batch 1, 5 s function";
    t.partitions = 100;
    t.initial_backlog = 5'000'000;
    t.batch_size = 1;
    t.function_duration = 5 * kSecond;
    t.minimum_pollers = 1;
    t.maximum_pollers = 100;
    all.push_back(t);
  }
  {
    Trace t;
    t.name = "steady-noise";
    t.summary = "64 partitions, 3000 records/s +-10% gaussian noise per second, batch 100, "
                "100 ms function, 1 h";
    t.partitions = 64;
    t.batch_size = 100;
    t.function_duration = 100;
    t.minimum_pollers = 1;
    t.maximum_pollers = 64;
    t.duration = kHour;
    t.ingest_rate = [](Millis) { return 3000.0; };
    t.noise = 0.10;
    all.push_back(t);
  }
  {
    Trace t;
    t.name = "diurnal-spiky";
    t.summary = "32 partitions, sinusoid 500..8000 records/s (2 h period, trough at t=0) over "
                "6 h, +200,000 records every 45 min, batch 100, 100 ms function";
    t.partitions = 32;
    t.batch_size = 100;
    t.function_duration = 100;
    t.minimum_pollers = 1;
    t.maximum_pollers = 32;
    t.duration = 6 * kHour;
    t.ingest_rate = [](Millis at) {
      constexpr double kPi = 3.14159265358979323846;
      double phase = 2 * kPi * static_cast<double>(at) / static_cast<double>(2 * kHour);
      return 4250.0 - 3750.0 * std::cos(phase);
    };
    for (Millis at = 45 * kMinute; at < t.duration; at += 45 * kMinute) {
      t.spikes.push_back({at, 200'000});
    }
    all.push_back(t);
  }
  return all;
}

} // namespace kesm::bench::sim
