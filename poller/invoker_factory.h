#pragma once

// Builds a mapping's function invokers for its protocol (docs/functions.md).

#include "config/config.h"
#include "invoker/invoker.h"
#include "net/http.h"

#include <functional>
#include <memory>

namespace kesm::poller {

using InvokerFactory = std::function<std::unique_ptr<invoker::FunctionInvoker>()>;

// Called once per mapping: what the invokers of one mapping share (a body warned about once,
// AWS credentials) is made here. The factory it returns is called from any poller thread.
// Throws std::runtime_error on what only shows at start (an unreadable TLS file, no AWS
// region or credentials).
InvokerFactory invokerFactory(const config::Mapping& mapping);

// The TlsOptions of an https function: function.tls's files and server name, with their
// context loaded once (shared by every invoker of the mapping). Plain http: empty options.
// Throws std::runtime_error naming the file that cannot be loaded.
net::TlsOptions functionTlsOptions(const config::FunctionConfig& function);

} // namespace kesm::poller
