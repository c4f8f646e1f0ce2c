#pragma once

// The status page served at GET / (app/status_page.html, built into the binary) with a
// Content-Security-Policy that admits exactly its inline script and style, by their SHA-256,
// and requests to its own origin: nothing else loads, not even an injected script.

#include "metrics/metrics.h"

#include <string>

namespace kesm::app {

// Built once, on first use (thread-safe); lives until exit.
const metrics::StaticPage& statusPage();

// The CSP of a page: 'sha256-…' of the content of each <script> and <style> element.
// Pure, for the tests.
std::string contentSecurityPolicy(const std::string& html);

} // namespace kesm::app
