// A mapping's pods section: where `kesm controller` finds the mapping's poller pods.

#include "config/schema.h"
#include "config/sections.h"

namespace kesm::config::detail {

std::string defaultStatefulSet(const std::string& mapping_name) {
  std::string name = "kesm-" + mapping_name;
  return validLabel(name, kMaxStatefulSetName) ? name : std::string();
}

void readPods(Reporter& reporter, const Field& field, PodsConfig& pods) {
  if (!expectMap(reporter, field,
                 "a map with statefulSet, service, pollersPerPod and statusInterval")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kPodsSection);
  if (const Field* f = section.optional("statefulSet")) {
    const char* rule = "a StatefulSet name: at most 52 lowercase letters, digits and '-', "
                       "starting and ending with a letter or digit, like kesm-orders (its pods "
                       "add -ORDINAL and Kubernetes a revision label to it)";
    auto value = readScalar(reporter, *f, rule);
    if (value && !validLabel(*value, kMaxStatefulSetName)) {
      mismatch(reporter, *f, rule);
    } else if (value) {
      pods.stateful_set = *value;
    }
  }
  if (const Field* f = section.optional("service")) {
    const char* rule = "a Service name: at most 63 lowercase letters, digits and '-', starting "
                       "with a letter and ending with a letter or digit, like kesm-orders";
    auto value = readScalar(reporter, *f, rule);
    if (value && !validDns1035Label(*value)) {
      mismatch(reporter, *f, rule);
    } else if (value) {
      pods.service = *value;
    }
  }
  readInt(reporter, section.optional("pollersPerPod"), 1, kMaxPollersPerPod, pods.pollers_per_pod);
  readDuration(reporter, section.optional("statusInterval"), kStatusIntervalRange,
               pods.status_interval);
}

} // namespace kesm::config::detail
