// The leaderElection section: which Lease the replicas of one config share and its timings.

#include "config/schema.h"
#include "config/sections.h"

#include <string_view>

namespace kesm::config::detail {

namespace {

bool lowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

std::string text(const Field* f, Millis value) {
  return f != nullptr ? f->value.Scalar() : formatDuration(value) + ", the default";
}

} // namespace

// Kubernetes' rule for most object names (RFC 1123 subdomain): lowercase letters, digits, '-'
// and '.', starting and ending with a letter or digit, at most 253 characters.
bool validSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253 || !lowerAlnum(s.front()) || !lowerAlnum(s.back())) {
    return false;
  }
  for (char c : s) {
    if (!lowerAlnum(c) && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

// Namespaces are RFC 1123 labels: the same without '.', at most 63 characters.
bool validLabel(std::string_view s, std::size_t max) {
  return s.size() <= max && validSubdomain(s) && s.find('.') == std::string_view::npos;
}

bool validDns1035Label(std::string_view s) {
  return validLabel(s) && s.front() >= 'a' && s.front() <= 'z';
}

void readLeaderElection(Reporter& reporter, const Field& field, LeaderElectionConfig& out) {
  out.at = locationOf(field);
  if (!expectMap(reporter, field, "a map with enabled, leaseName and the lease's timings")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kLeaderElectionSection);
  if (const Field* f = section.optional("enabled")) {
    out.at = locationOf(*f);
    auto value = readScalar(reporter, *f, "auto, true or false");
    if (value && *value == "auto") {
      out.enabled = LeaderElectionConfig::Mode::kAuto;
    } else if (value && *value == "true") {
      out.enabled = LeaderElectionConfig::Mode::kOn;
    } else if (value && *value == "false") {
      out.enabled = LeaderElectionConfig::Mode::kOff;
    } else if (value) {
      mismatch(reporter, *f, "auto, true or false");
    }
  }
  if (const Field* f = section.optional("leaseName")) {
    const char* rule = "a Kubernetes object name: at most 253 lowercase letters, digits, '-' "
                       "and '.', starting and ending with a letter or digit, like kesm-orders";
    auto value = readScalar(reporter, *f, rule);
    if (value && !validSubdomain(*value)) {
      mismatch(reporter, *f, rule);
    } else if (value) {
      out.lease_name = *value;
    }
  }
  if (const Field* f = section.optional("namespace")) {
    const char* rule = "a Kubernetes namespace: at most 63 lowercase letters, digits and '-', "
                       "starting and ending with a letter or digit";
    auto value = readScalar(reporter, *f, rule);
    if (value && !value->empty() && !validLabel(*value)) {
      mismatch(reporter, *f, rule);
    } else if (value) {
      out.ns = *value;
    }
  }
  const Field* duration_f = section.optional("leaseDuration");
  const Field* deadline_f = section.optional("renewDeadline");
  const Field* retry_f = section.optional("retryPeriod");
  bool duration_ok = readDuration(reporter, duration_f, kLeaseDurationRange, out.lease_duration) ||
                     duration_f == nullptr;
  if (duration_f != nullptr && duration_ok && out.lease_duration.count() % 1000 != 0) {
    reporter.add(duration_f->value_pos, duration_f->path,
                 "must be whole seconds (a Lease holds leaseDurationSeconds), got " +
                     duration_f->value.Scalar());
    duration_ok = false;
  }
  bool deadline_ok = readDuration(reporter, deadline_f, kRenewDeadlineRange, out.renew_deadline) ||
                     deadline_f == nullptr;
  bool retry_ok =
      readDuration(reporter, retry_f, kRetryPeriodRange, out.retry_period) || retry_f == nullptr;
  if (duration_ok && deadline_ok && out.renew_deadline >= out.lease_duration) {
    // The leader must have stopped its pollers before a standby may take the Lease over.
    const Field* at = deadline_f != nullptr ? deadline_f : duration_f;
    reporter.add(at->value_pos, at->path,
                 "renewDeadline (" + text(deadline_f, out.renew_deadline) +
                     ") must be shorter than leaseDuration (" +
                     text(duration_f, out.lease_duration) +
                     "): the leader stops its pollers in between, before a standby may take over");
  }
  if (deadline_ok && retry_ok && out.renew_deadline.count() * 5 <= out.retry_period.count() * 6) {
    // As client-go: at least one retry, with its jitter, fits in the renew deadline.
    const Field* at = retry_f != nullptr ? retry_f : deadline_f;
    reporter.add(at->value_pos, at->path,
                 "retryPeriod (" + text(retry_f, out.retry_period) +
                     ") times 1.2 must be shorter than renewDeadline (" +
                     text(deadline_f, out.renew_deadline) + ")");
  }
}

} // namespace kesm::config::detail
