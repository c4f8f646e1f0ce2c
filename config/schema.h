#pragma once

// What a kesm config may hold: the keys of each section (with the rule for a key that is not
// one of them: a near miss, a key of another section, AWS's name for it), the ranges of the
// values, and the librdkafka settings kesm sets itself. Internal to config/; pure.

#include "config/yaml_diagnostics.h"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kesm::config::detail {

struct Section {
  std::string_view where; // how a message names the section, "under batching"
  std::vector<std::string_view> keys;
};

extern const Section kTopSection;
extern const Section kServerSection;
extern const Section kLeaderElectionSection;
extern const Section kMappingSection;
extern const Section kSourceSection;
extern const Section kSecuritySection;
extern const Section kSaslSection;
extern const Section kTlsSection;
extern const Section kFunctionSection;
extern const Section kFunctionTlsSection;
extern const Section kLambdaSection;
extern const Section kCloudEventsSection;
extern const Section kBatchingSection;
extern const Section kScalingSection;
extern const Section kRetrySection;
extern const Section kOnFailureSection;
extern const Section kPodsSection;

// Why `key` is not allowed in `section`: merge keys and secrets have their own rule; else a
// near miss ("did you mean"), the section it belongs to, AWS's name for a kesm key, or the
// keys allowed.
std::string unknownKeyRule(std::string_view key, const Section& section);

// A map whose keys are all known. Unknown keys are reported when it is built.
class SectionReader {
public:
  SectionReader(Reporter& reporter, const YAML::Node& map, std::string path, Pos pos,
                const Section& section);

  const Field* optional(std::string_view key) const;
  // The field, or null after reporting it missing; `what` says what to write there.
  const Field* required(std::string_view key, std::string_view what);

private:
  Reporter& reporter_;
  std::string path_;
  Pos pos_;
  std::map<std::string, Field, std::less<>> fields_;
};

// ---- Ranges -------------------------------------------------------------------------------------

inline constexpr DurationRange kTimeoutRange{Millis{1}, Millis{15 * 60 * 1000}, "1ms", "15m"};
inline constexpr DurationRange kBatchingWindowRange{Millis{0}, Millis{300 * 1000}, "0", "300s"};
inline constexpr DurationRange kGracePeriodRange{Millis{0}, Millis{10 * 60 * 1000}, "0", "10m"};
inline constexpr DurationRange kEvaluationIntervalRange{Millis{1000}, Millis{5 * 60 * 1000}, "1s",
                                                        "5m"};
inline constexpr DurationRange kScaleDownStabilizationRange{Millis{0}, Millis{60 * 60 * 1000}, "0",
                                                            "1h"};
inline constexpr DurationRange kBackoffRange{Millis{1}, Millis{15 * 60 * 1000}, "1ms", "15m"};
inline constexpr DurationRange kRecordAgeRange{Millis{60 * 1000}, Millis{7 * 24 * 3600 * 1000LL},
                                               "60s", "168h (7 days), or -1 for unbounded"};

inline constexpr DurationRange kLeaseDurationRange{Millis{2000}, Millis{10 * 60 * 1000}, "2s",
                                                   "10m"};
inline constexpr DurationRange kRenewDeadlineRange{Millis{1000}, Millis{10 * 60 * 1000}, "1s",
                                                   "10m"};
inline constexpr DurationRange kRetryPeriodRange{Millis{100}, Millis{60 * 1000}, "100ms", "60s"};

inline constexpr DurationRange kStatusIntervalRange{Millis{1000}, Millis{5 * 60 * 1000}, "1s",
                                                    "5m"};
inline constexpr int kMaxPollersPerPod = 64;
inline constexpr int kMaxStatefulSetName = 52;

inline constexpr int kMaxBatchSize = 10000;
inline constexpr int kMaxMinimumPollers = 200;
inline constexpr int kMaxMaximumPollers = 2000;
inline constexpr int kMaxRetryAttempts = 10000;
inline constexpr double kMaxBackoffMultiplier = 10;

// The rule for a librdkafka setting that kesm derives from its own keys or that would break
// at-least-once; nullopt for any other name.
std::optional<std::string> reservedLibrdkafkaRule(const std::string& key);

} // namespace kesm::config::detail
