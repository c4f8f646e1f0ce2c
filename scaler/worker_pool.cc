#include "scaler/worker_pool.h"

namespace kesm::scaler {

const char* toString(WorkerState state) {
  switch (state) {
  case WorkerState::kStarting:
    return "starting";
  case WorkerState::kRunning:
    return "running";
  case WorkerState::kStopping:
    return "stopping";
  case WorkerState::kStopped:
    return "stopped";
  }
  return "unknown";
}

} // namespace kesm::scaler
