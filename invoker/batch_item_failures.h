#pragma once

// Partial batch responses (functionResponseTypes: [ReportBatchItemFailures]) for Kafka, as
// AWS Lambda reads them: {"batchItemFailures":[{"itemIdentifier":{"partition":"topic-P",
// "offset":N}}]} (docs/functions.md, "Partial batch responses"). Pure.

#include "common/types.h"
#include "invoker/invoker.h"

#include <string>
#include <string_view>
#include <vector>

namespace kesm::invoker {

struct BatchItemFailures {
  enum class Verdict {
    kAllSucceeded, // no batchItemFailures, null or []: the whole batch succeeded
    kFailures,     // `failures` names the first failed record of each failed partition
    kMalformed,    // AWS treats a bad answer as the whole batch failed; `error` says why
  };
  Verdict verdict = Verdict::kAllSucceeded;
  std::vector<ItemFailure> failures; // kFailures: one per partition, the lowest offset listed
  std::string error;                 // kMalformed
};

// What a 2xx body answers about `batch`. An itemIdentifier that names no record of the batch
// (unknown partition, an offset the batch does not hold) makes the answer malformed: kesm
// never guesses which records a function meant. A body that is not a JSON object, or has no
// batchItemFailures member, means success, as for any answer without the option.
BatchItemFailures parseBatchItemFailures(std::string_view body, const Batch& batch);

} // namespace kesm::invoker
