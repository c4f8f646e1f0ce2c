#pragma once

// kesm's version: `kesm version` prints it, clients send it in their User-Agent.

namespace kesm {

inline constexpr const char* kVersion = "0.1.0";

} // namespace kesm
