// What the fault tests read of an agent with the sandbox's "pg" probe, and how long a fault took.
#pragma once

#include <chrono>
#include <string>

namespace ghostwatch::testing {

inline long ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
}

inline std::string lag_count(const std::string& target) {
  return "ghostwatch_visibility_lag_seconds_count{probe=\"pg\",target=\"" + target + "\"}";
}
inline const std::string kWritesOk = "ghostwatch_canary_writes_total{probe=\"pg\",result=\"ok\"}";
inline const std::string kWritesFailed = "ghostwatch_canary_writes_total{probe=\"pg\",result=\"error\"}";

}  // namespace ghostwatch::testing
