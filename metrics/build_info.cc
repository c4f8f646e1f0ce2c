// kesm_build_info: what runs, as a constant 1 with labels (the Prometheus convention).

#include "common/version.h"
#include "kesm_revision.h"
#include "metrics/metrics.h"

#include <librdkafka/rdkafka.h>

namespace kesm::metrics {

void registerBuildInfo(prometheus::Registry& registry) {
  prometheus::BuildGauge()
      .Name("kesm_build_info")
      .Help("1, labelled with kesm's version, its source revision and the librdkafka it runs")
      .Register(registry)
      .Add({{"version", kVersion},
            {"revision", KESM_REVISION_STRING},
            {"librdkafka_version", rd_kafka_version_str()}})
      .Set(1);
}

} // namespace kesm::metrics
