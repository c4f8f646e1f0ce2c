#include "invoker/batch_item_failures.h"

#include "common/json.h"

#include <charconv>
#include <map>
#include <set>
#include <utility>

namespace kesm::invoker {

namespace {

using Verdict = BatchItemFailures::Verdict;

BatchItemFailures malformed(std::string error) {
  BatchItemFailures out;
  out.verdict = Verdict::kMalformed;
  out.error = std::move(error);
  return out;
}

template <typename T> bool parseInteger(std::string_view text, T& out) {
  if (text.empty()) {
    return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// "topic-P": the topic may itself hold '-', the partition is after the last one.
bool parsePartition(std::string_view text, TopicPartition& tp) {
  auto dash = text.rfind('-');
  if (dash == std::string_view::npos || dash == 0) {
    return false;
  }
  std::int32_t partition = 0;
  if (!parseInteger(text.substr(dash + 1), partition) || partition < 0) {
    return false;
  }
  tp.topic = std::string(text.substr(0, dash));
  tp.partition = Partition{partition};
  return true;
}

// powertools writes the offset as a JSON number; a decimal string is accepted too, as AWS's
// own examples quote numbers in Kafka events.
bool parseOffset(const json::Value& value, std::int64_t& offset) {
  if (value.kind != json::Value::Kind::kNumber && value.kind != json::Value::Kind::kString) {
    return false;
  }
  return parseInteger(std::string_view(value.text), offset) && offset >= 0;
}

} // namespace

BatchItemFailures parseBatchItemFailures(std::string_view body, const Batch& batch) {
  json::Value doc;
  try {
    doc = json::parse(body);
  } catch (const json::JsonError&) {
    return {}; // not JSON: an answer that reports nothing
  }
  if (doc.kind != json::Value::Kind::kObject) {
    return {};
  }
  const json::Value* list = doc.find("batchItemFailures");
  if (list == nullptr || list->isNull()) {
    return {};
  }
  if (list->kind != json::Value::Kind::kArray) {
    return malformed("batchItemFailures is not a list");
  }
  std::set<std::pair<TopicPartition, std::int64_t>> sent;
  for (const auto& r : batch.records) {
    sent.insert({TopicPartition{r.topic, r.partition}, r.offset.value()});
  }
  std::map<TopicPartition, std::int64_t> lowest;
  for (std::size_t i = 0; i < list->items.size(); ++i) {
    const json::Value& item = list->items[i];
    const std::string where = "batchItemFailures[" + std::to_string(i) + "]";
    const json::Value* id = item.find("itemIdentifier");
    if (id == nullptr || id->kind != json::Value::Kind::kObject) {
      return malformed(where + " has no itemIdentifier object");
    }
    const json::Value* partition = id->find("partition");
    const json::Value* offset = id->find("offset");
    TopicPartition tp;
    std::int64_t at = 0;
    if (partition == nullptr || partition->kind != json::Value::Kind::kString ||
        !parsePartition(partition->text, tp)) {
      return malformed(where + ".itemIdentifier.partition is not \"topic-partition\"");
    }
    if (offset == nullptr || !parseOffset(*offset, at)) {
      return malformed(where + ".itemIdentifier.offset is not an offset");
    }
    if (sent.count({tp, at}) == 0) {
      return malformed(where + " names " + partition->text + "@" + std::to_string(at) +
                       ", which is not in the batch");
    }
    auto [it, inserted] = lowest.emplace(tp, at);
    if (!inserted && at < it->second) {
      it->second = at;
    }
  }
  BatchItemFailures out;
  if (lowest.empty()) {
    return out;
  }
  out.verdict = Verdict::kFailures;
  for (auto& [tp, at] : lowest) {
    out.failures.push_back(ItemFailure{tp, at});
  }
  return out;
}

} // namespace kesm::invoker
