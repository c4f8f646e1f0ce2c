#pragma once

// kesm_scaling_sim's output: a markdown table per trace, or CSV rows (stdout).

#include "bench/scaling_sim_model.h"
#include "bench/scaling_sim_trace.h"

#include <vector>

namespace kesm::bench::sim {

// The trace's heading, summary and one row per policy, as markdown.
void printTable(const Trace& t, const std::vector<Result>& results);

// The CSV header line, printed once before every trace's rows.
void printCsvHeader();

// One CSV row per policy.
void printCsv(const Trace& t, const std::vector<Result>& results);

} // namespace kesm::bench::sim
