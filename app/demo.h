#pragma once

#include <csignal>
#include <map>
#include <string>

namespace kesm::app {

// The embedded demo: librdkafka's mock cluster, the sample function, a producer burst and
// kesm itself, with a live line until the burst is drained. Returns the exit code.
int runDemo(const std::map<std::string, std::string>& options, const sigset_t& signals);

} // namespace kesm::app
