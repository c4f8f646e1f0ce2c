#pragma once

// Builds a mapping's function invokers for its protocol (docs/functions.md).

#include "config/config.h"
#include "invoker/invoker.h"

#include <functional>
#include <memory>

namespace kesm::poller {

using InvokerFactory = std::function<std::unique_ptr<invoker::FunctionInvoker>()>;

// Called once per mapping: what the invokers of one mapping share (a body warned about once,
// AWS credentials) is made here. The factory it returns is called from any poller thread.
// Throws std::runtime_error on what only shows at start (an unreadable TLS file, no AWS
// region or credentials).
InvokerFactory invokerFactory(const config::Mapping& mapping);

} // namespace kesm::poller
