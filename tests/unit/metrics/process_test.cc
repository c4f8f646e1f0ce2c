// The /proc parsers behind the process_* metrics.

#include "metrics/process.h"

#include <catch2/catch.hpp>

using namespace kesm::metrics;

TEST_CASE("process: a stat line is read by field number, after the command's last parenthesis",
          "[unit]") {
  // A command with spaces and a ')' of its own; fields as proc(5) numbers them: 14 utime,
  // 15 stime, 20 threads, 22 starttime, 23 vsize, 24 rss (pages).
  const std::string stat = "4242 (kesm (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 "
                           "250 150 0 0 20 0 9 0 5000 123456789 300 18446744073709551615\n";
  auto s = parseProcStat(stat, 100, 4096, 1'700'000'000);
  REQUIRE(s);
  CHECK(s->cpu_seconds == Approx(4.0)); // (250 + 150) / 100
  CHECK(s->threads == 9);
  CHECK(s->start_time_seconds == Approx(1'700'000'050.0)); // boot + 5000 / 100
  CHECK(s->virtual_bytes == 123456789);
  CHECK(s->resident_bytes == 300 * 4096);
}

TEST_CASE("process: what is not a stat line gives nothing", "[unit]") {
  CHECK_FALSE(parseProcStat("", 100, 4096, 0));
  CHECK_FALSE(parseProcStat("4242 kesm S 1 2 3", 100, 4096, 0));                // no ')'
  CHECK_FALSE(parseProcStat("4242 (kesm) S 1 4242 4242 0 -1 4", 100, 4096, 0)); // too short
  CHECK_FALSE(parseProcStat("4242 (kesm) S 1 4242 4242 0 -1 4194560 1000 0 0 0 x 150 0 0 20 0 "
                            "9 0 5000 1 300",
                            100, 4096, 0)); // utime not a number
  CHECK_FALSE(parseProcStat("4242 (kesm) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 "
                            "0 9 0 5000 1 300",
                            0, 4096, 0)); // no clock ticks
}

TEST_CASE("process: btime is read from /proc/stat", "[unit]") {
  CHECK(parseBootTime("cpu  1 2 3\nintr 5\nctxt 9\nbtime 1764590000\nprocesses 7\n") ==
        1764590000.0);
  CHECK_FALSE(parseBootTime("cpu  1 2 3\nintr 5\n"));
  CHECK_FALSE(parseBootTime("cpu 1\nbtime x\n"));
}

TEST_CASE("process: this process's families, each with one sample", "[unit]") {
  auto families = collectProcessMetrics();
  REQUIRE(families.size() == 7);
  for (const auto& f : families) {
    INFO(f.name);
    CHECK(f.metric.size() == 1);
  }
  CHECK(families[0].name == "process_cpu_seconds_total");
  CHECK(families[1].metric.at(0).gauge.value > 1e6); // resident: more than 1 MB
  CHECK(families[5].metric.at(0).gauge.value >= 3);  // open fds: at least stdin/out/err
}
