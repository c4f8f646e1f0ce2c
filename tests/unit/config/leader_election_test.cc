// The leaderElection section: defaults, every rule and where its error points.

#include "rule_case.h"

using namespace kesm::config;
using kesm::config::test::checkRule;
using kesm::config::test::RuleCase;

namespace {

const std::string kMapping = "mappings:\n"
                             "  - name: orders\n"
                             "    source: {bootstrapServers: k:9092, topics: [orders]}\n"
                             "    function: {url: http://fn:8080/}\n";

Config parse(const std::string& yaml) {
  return parseConfig(yaml, "kesm.yaml", kesm::kafka::checkSetting);
}

} // namespace

TEST_CASE("leaderElection: absent means auto with client-go's timings", "[unit]") {
  auto c = parse(kMapping);
  CHECK(c.leader_election.enabled == LeaderElectionConfig::Mode::kAuto);
  CHECK(c.leader_election.lease_name == "kesm");
  CHECK(c.leader_election.ns.empty());
  CHECK(c.leader_election.lease_duration == Millis{15000});
  CHECK(c.leader_election.renew_deadline == Millis{10000});
  CHECK(c.leader_election.retry_period == Millis{2000});
}

TEST_CASE("leaderElection: every key read", "[unit]") {
  auto c = parse("leaderElection:\n"
                 "  enabled: true\n"
                 "  leaseName: kesm-orders.prod\n"
                 "  namespace: team-a\n"
                 "  leaseDuration: 4s\n"
                 "  renewDeadline: 3s\n"
                 "  retryPeriod: 500ms\n" +
                 kMapping);
  CHECK(c.leader_election.enabled == LeaderElectionConfig::Mode::kOn);
  CHECK(c.leader_election.lease_name == "kesm-orders.prod");
  CHECK(c.leader_election.ns == "team-a");
  CHECK(c.leader_election.lease_duration == Millis{4000});
  CHECK(c.leader_election.renew_deadline == Millis{3000});
  CHECK(c.leader_election.retry_period == Millis{500});
  CHECK(parse("leaderElection: {enabled: false}\n" + kMapping).leader_election.enabled ==
        LeaderElectionConfig::Mode::kOff);
  CHECK(parse("leaderElection: {enabled: auto}\n" + kMapping).leader_election.enabled ==
        LeaderElectionConfig::Mode::kAuto);
}

TEST_CASE("leaderElection: rules", "[unit]") {
  auto c = GENERATE(from_range(std::vector<RuleCase>{
      {.rule = "enabled is not auto, true or false",
       .yaml = "leaderElection:\n  enabled: yes\n" + kMapping,
       .key = "leaderElection.enabled",
       .line = 2,
       .column = 12,
       .message = "must be auto, true or false, got 'yes'"},
      {.rule = "an unknown key",
       .yaml = "leaderElection:\n  leaseDurationSeconds: 15\n" + kMapping,
       .key = "leaderElection.leaseDurationSeconds",
       .line = 2,
       .column = 3,
       .message = ""},
      {.rule = "a lease name with capitals",
       .yaml = "leaderElection:\n  leaseName: Kesm\n" + kMapping,
       .key = "leaderElection.leaseName",
       .line = 2,
       .column = 14,
       .message = "must be a Kubernetes object name: at most 253 lowercase letters, digits, '-' "
                  "and '.', starting and ending with a letter or digit, like kesm-orders, got "
                  "'Kesm'"},
      {.rule = "a namespace with a dot",
       .yaml = "leaderElection:\n  namespace: team.a\n" + kMapping,
       .key = "leaderElection.namespace",
       .line = 2,
       .column = 14,
       .message = "must be a Kubernetes namespace: at most 63 lowercase letters, digits and '-', "
                  "starting and ending with a letter or digit, got 'team.a'"},
      {.rule = "a lease duration in milliseconds",
       .yaml = "leaderElection:\n  leaseDuration: 2500ms\n" + kMapping,
       .key = "leaderElection.leaseDuration",
       .line = 2,
       .column = 18,
       .message = "must be whole seconds (a Lease holds leaseDurationSeconds), got 2500ms"},
      {.rule = "a renew deadline not shorter than the lease",
       .yaml = "leaderElection:\n  leaseDuration: 10s\n  renewDeadline: 10s\n" + kMapping,
       .key = "leaderElection.renewDeadline",
       .line = 3,
       .column = 18,
       .message = "renewDeadline (10s) must be shorter than leaseDuration (10s): the leader stops "
                  "its pollers in between, before a standby may take over"},
      {.rule = "a short lease against the default renew deadline",
       .yaml = "leaderElection:\n  leaseDuration: 5s\n" + kMapping,
       .key = "leaderElection.leaseDuration",
       .line = 2,
       .column = 18,
       .message = "renewDeadline (10s, the default) must be shorter than leaseDuration (5s): the "
                  "leader stops its pollers in between, before a standby may take over"},
      {.rule = "a retry period that does not fit the renew deadline",
       .yaml = "leaderElection:\n  retryPeriod: 9s\n" + kMapping,
       .key = "leaderElection.retryPeriod",
       .line = 2,
       .column = 16,
       .message = "retryPeriod (9s) times 1.2 must be shorter than renewDeadline (10s, the "
                  "default)"},
      {.rule = "a retry period below its range",
       .yaml = "leaderElection:\n  retryPeriod: 10ms\n" + kMapping,
       .key = "leaderElection.retryPeriod",
       .line = 2,
       .column = 16,
       .message = ""},
  }));
  if (c.message.empty()) {
    // Worded by the shared readers (tested elsewhere): only where it points is checked here.
    auto d = kesm::config::test::diagnosticsOf(c.yaml);
    REQUIRE(d.size() == 1);
    CHECK(d[0].key == c.key);
    CHECK(d[0].line == c.line);
    CHECK(d[0].column == c.column);
  } else {
    checkRule(c);
  }
}
