// Durations as written in the config and shown in reports: "250us", "5ms", "1s", "2m", "1h",
// and sums of them ("1m30s"). A bare number has no unit and is rejected.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace ghostwatch {

std::optional<Duration> parse_duration(std::string_view text);

// The shortest exact text for `d` in the syntax parse_duration accepts ("1m30s", "250ms").
std::string format_duration(Duration d);

}  // namespace ghostwatch
