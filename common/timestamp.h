// Parsing times into epoch microseconds (UTC), for timestamp versions in caches:
// ISO-8601 ("2026-11-24T17:48:57Z", "2026-11-24 17:48:57.123456+01:00"; no zone means UTC) or
// epoch seconds ("1795542537", "1795542537.25").
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ghostwatch {

std::optional<int64_t> parse_epoch_micros(std::string_view text);

}  // namespace ghostwatch
