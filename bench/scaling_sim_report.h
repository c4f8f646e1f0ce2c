#pragma once

// kesm_scaling_sim's output: a markdown table per trace, or CSV rows (stdout).

#include "bench/scaling_sim_model.h"
#include "bench/scaling_sim_trace.h"

#include <cstdio>
#include <vector>

namespace kesm::bench::sim {

// The trace's heading, summary and one row per policy, as markdown.
void printTable(const Trace& t, const std::vector<Result>& results);

// For aws-burst, the goal for each kesm-pods row against the KEDA row of the same pod
// start: drained within the physical bound + the pod start + 5 s, at fewer poller-seconds.
// One line each, to `out`.
void printVerdicts(const Trace& t, const std::vector<Result>& results, std::FILE* out);

// The CSV header line, printed once before every trace's rows.
void printCsvHeader();

// One CSV row per policy.
void printCsv(const Trace& t, const std::vector<Result>& results);

} // namespace kesm::bench::sim
