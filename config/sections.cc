#include "config/sections.h"

#include "config/schema.h"
#include "config/values.h"
#include "filter/filter_yaml.h"

#include <algorithm>
#include <map>
#include <string_view>

namespace kesm::config::detail {

namespace {

void readBatching(Reporter& reporter, const Field& field, BatchingConfig& batching) {
  if (!expectMap(reporter, field, "a map with batchSize and maximumBatchingWindow")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kBatchingSection);
  readInt(reporter, section.optional("batchSize"), 1, kMaxBatchSize, batching.batch_size);
  readDuration(reporter, section.optional("maximumBatchingWindow"), kBatchingWindowRange,
               batching.maximum_batching_window);
}

void readScaling(Reporter& reporter, const Field& field, ScalingConfig& scaling) {
  if (!expectMap(reporter, field, "a map with minimumPollers, maximumPollers and gracePeriod")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kScalingSection);
  const Field* min_field = section.optional("minimumPollers");
  const Field* max_field = section.optional("maximumPollers");
  bool min_ok = readInt(reporter, min_field, 1, kMaxMinimumPollers, scaling.minimum_pollers) ||
                min_field == nullptr;
  bool max_ok = readInt(reporter, max_field, 1, kMaxMaximumPollers, scaling.maximum_pollers) ||
                max_field == nullptr;
  if (min_ok && max_ok && scaling.maximum_pollers < scaling.minimum_pollers) {
    // The default maximum (200) is never below a valid minimum, so max_field is set here.
    const Field& at = max_field != nullptr ? *max_field : *min_field;
    reporter.add(at.value_pos, at.path,
                 "must be at least minimumPollers (" + std::to_string(scaling.minimum_pollers) +
                     "), got " + std::to_string(scaling.maximum_pollers));
  }
  readDuration(reporter, section.optional("gracePeriod"), kGracePeriodRange, scaling.grace_period);
  readDuration(reporter, section.optional("evaluationInterval"), kEvaluationIntervalRange,
               scaling.evaluation_interval);
  readDuration(reporter, section.optional("scaleDownStabilization"), kScaleDownStabilizationRange,
               scaling.scale_down_stabilization);
  readInt(reporter, section.optional("maxConcurrentBatches"), 1, kMaxConcurrentBatches,
          scaling.max_concurrent_batches);
}

void readRetry(Reporter& reporter, const Field& field, RetryConfig& retry) {
  if (!expectMap(reporter, field,
                 "a map with initialBackoff, maximumBackoff, "
                 "backoffMultiplier and jitter")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kRetrySection);
  const Field* initial_field = section.optional("initialBackoff");
  const Field* maximum_field = section.optional("maximumBackoff");
  bool initial_ok = readDuration(reporter, initial_field, kBackoffRange, retry.initial_backoff) ||
                    initial_field == nullptr;
  bool maximum_ok = readDuration(reporter, maximum_field, kBackoffRange, retry.maximum_backoff) ||
                    maximum_field == nullptr;
  if (initial_ok && maximum_ok && retry.initial_backoff > retry.maximum_backoff) {
    auto text = [](const Field* f, Millis value) {
      return f != nullptr ? f->value.Scalar() : formatDuration(value) + ", the default";
    };
    if (initial_field != nullptr) {
      reporter.add(initial_field->value_pos, initial_field->path,
                   "must not be longer than maximumBackoff (" +
                       text(maximum_field, retry.maximum_backoff) + "), got " +
                       initial_field->value.Scalar());
    } else {
      reporter.add(maximum_field->value_pos, maximum_field->path,
                   "must not be shorter than initialBackoff (" +
                       text(initial_field, retry.initial_backoff) + "), got " +
                       maximum_field->value.Scalar());
    }
  }
  readNumber(reporter, section.optional("backoffMultiplier"), 1, kMaxBackoffMultiplier,
             retry.backoff_multiplier);
  readNumber(reporter, section.optional("jitter"), 0, 1, retry.jitter);
  if (const Field* f = section.optional("maximumRetryAttempts")) {
    readInt(reporter, f, kUnbounded, kMaxRetryAttempts,
            retry.maximum_retry_attempts); // -1: unbounded
  }
  if (const Field* f = section.optional("maximumRecordAge")) {
    if (f->value.IsScalar() && f->value.Scalar() == "-1") {
      retry.maximum_record_age.reset();
    } else {
      Millis age{};
      if (readDuration(reporter, f, kRecordAgeRange, age)) {
        retry.maximum_record_age = age;
      }
    }
  }
  readBool(reporter, section.optional("bisectBatchOnFunctionError"),
           retry.bisect_batch_on_function_error);
}

void readFilters(Reporter& reporter, const Field& field, Mapping& mapping) {
  if (field.value.IsNull()) {
    reporter.add(field.key_pos, field.path,
                 "must list at least one pattern; leave filters out to deliver every record");
    return;
  }
  std::vector<filter::FilterError> errors;
  auto filters = filter::compileFilters(field.value, field.path, errors);
  for (const auto& e : errors) {
    Pos pos = e.line > 0 ? Pos{e.line, e.column} : field.value_pos;
    reporter.add(pos, e.key, e.rule);
  }
  mapping.filters = std::move(filters);
}

void readOnFailure(Reporter& reporter, const Field& field, const SourceConfig& source,
                   OnFailureConfig& on_failure) {
  if (!expectMap(reporter, field, "a map with destination: kafka://TOPIC")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kOnFailureSection);
  const Field* f = section.required("destination", "name a topic, like kafka://orders-failed");
  if (f == nullptr) {
    return;
  }
  const char* expected = "kafka://TOPIC, a topic on the mapping's own cluster";
  auto text = readScalar(reporter, *f, expected);
  if (!text) {
    return;
  }
  constexpr std::string_view kScheme = "kafka://";
  if (text->compare(0, kScheme.size(), kScheme) != 0) {
    std::string rule = "must be " + std::string(expected) + ", got " + describe(f->value);
    if (text->rfind("arn:", 0) == 0) {
      rule += " (AWS destinations are not reachable from kesm)";
    }
    reporter.add(f->value_pos, f->path, rule);
    return;
  }
  std::string topic = text->substr(kScheme.size());
  if (!validTopicName(topic)) {
    reporter.add(f->value_pos, f->path,
                 "the topic must be a Kafka topic name: 1 to 249 letters, digits, '.', '_' or "
                 "'-', got " +
                     quote(topic));
    return;
  }
  if (std::find(source.topics.begin(), source.topics.end(), topic) != source.topics.end()) {
    reporter.add(f->value_pos, f->path,
                 "must not be a source topic of this mapping ('" + topic +
                     "'): failed records would be read again and fail again");
    return;
  }
  on_failure.destination_topic = topic;
  on_failure.at = locationOf(*f);
}

// Where a mapping's name and consumer group were written, for the uniqueness rules.
struct MappingPlaces {
  Pos name;
  std::optional<Pos> group; // set when consumerGroupId was written
};

void readMapping(Reporter& reporter, const Field& field, const SettingValidator& validate_setting,
                 Mapping& mapping, MappingPlaces& places) {
  places.name = field.value_pos;
  if (!expectMap(reporter, field, "a map with name, source and function")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kMappingSection);
  if (auto f = section.required("name", "give the mapping a unique name, like orders")) {
    const char* expected = "a name of 1 to 64 letters, digits, '.', '_' or '-'";
    places.name = f->value_pos;
    auto text = readScalar(reporter, *f, expected);
    if (text && !validMappingName(*text)) {
      mismatch(reporter, *f, expected);
    } else if (text) {
      mapping.name = *text;
    }
  }
  if (auto f = section.required("source", "say what to read, with bootstrapServers and topics")) {
    readSource(reporter, *f, validate_setting, mapping.source, places.group);
  }
  if (auto f = section.required("function", "say which function to invoke, with url")) {
    readFunction(reporter, *f, mapping.function);
  }
  if (auto f = section.optional("functionResponseTypes")) {
    readFunctionResponseTypes(reporter, *f, mapping);
  }
  if (auto f = section.optional("batching")) {
    readBatching(reporter, *f, mapping.batching);
  }
  if (auto f = section.optional("scaling")) {
    readScaling(reporter, *f, mapping.scaling);
  }
  if (auto f = section.optional("retry")) {
    readRetry(reporter, *f, mapping.retry);
  }
  if (auto f = section.optional("onFailure")) {
    readOnFailure(reporter, *f, mapping.source, mapping.on_failure);
  }
  if (auto f = section.optional("filters")) {
    readFilters(reporter, *f, mapping);
  }
  mapping.pods.name_at = Location{field.path + ".name", places.name.line, places.name.column};
  if (auto f = section.optional("pods")) {
    readPods(reporter, *f, mapping.pods);
  }
  if (mapping.pods.stateful_set.empty()) {
    mapping.pods.stateful_set = defaultStatefulSet(mapping.name);
  }
  if (mapping.pods.service.empty()) {
    mapping.pods.service = mapping.pods.stateful_set;
  }
}

} // namespace

void readServer(Reporter& reporter, const Field& field, ServerConfig& server) {
  if (!expectMap(reporter, field, "a map with the key listen")) {
    return;
  }
  SectionReader section(reporter, field.value, field.path, field.value_pos, kServerSection);
  if (const Field* listen = section.optional("listen")) {
    const char* expected = "host:port with a port from 0 to 65535, like 0.0.0.0:9464";
    auto text = readScalar(reporter, *listen, expected);
    if (text && !validHostPort(*text, 0)) {
      mismatch(reporter, *listen, expected);
    } else if (text) {
      server.listen = *text;
    }
  }
}

void readMappings(Reporter& reporter, const Field& field, const SettingValidator& validate_setting,
                  std::vector<Mapping>& mappings) {
  if (!field.value.IsSequence()) {
    mismatch(reporter, field, "a list of mappings");
    return;
  }
  if (field.value.size() == 0) {
    reporter.add(field.value_pos, field.path, "must list at least one mapping, got an empty list");
    return;
  }
  if (tooLong(reporter, field, kMaxMappings, "mappings (run another kesm for more)")) {
    return;
  }
  std::map<std::string, std::string> names;  // name -> path of its mapping
  std::map<std::string, std::string> groups; // consumer group -> path of its mapping
  std::size_t index = 0;
  for (const auto& item : field.value) {
    Field entry{indexPath(field.path, index++), item, field.value_pos,
                valuePos(item, field.value_pos)};
    Mapping mapping;
    MappingPlaces places;
    readMapping(reporter, entry, validate_setting, mapping, places);
    // A name, and the consumer group it implies, belong to one mapping only: two mappings in
    // one group would split the partitions between them.
    bool duplicate_name = false;
    if (!mapping.name.empty()) {
      auto [first, inserted] = names.emplace(mapping.name, entry.path);
      duplicate_name = !inserted;
      if (duplicate_name) {
        reporter.add(places.name, entry.path + ".name",
                     "mapping name '" + mapping.name + "' is already used by " + first->second);
      }
    }
    bool explicit_group = !mapping.source.consumer_group_id.empty();
    if (!explicit_group && !mapping.name.empty()) {
      mapping.source.consumer_group_id = "kesm-" + mapping.name;
    }
    if (!mapping.source.consumer_group_id.empty()) {
      auto [first, inserted] = groups.emplace(mapping.source.consumer_group_id, entry.path);
      if (!inserted && (explicit_group || !duplicate_name)) {
        reporter.add(places.group.value_or(places.name), entry.path + ".source.consumerGroupId",
                     "consumer group '" + mapping.source.consumer_group_id +
                         "' is already used by " + first->second +
                         "; each mapping needs its own consumer group");
      }
    }
    mappings.push_back(std::move(mapping));
  }
}

} // namespace kesm::config::detail
