#include "agent/duration.h"

#include <cctype>
#include <cmath>
#include <utility>

namespace ghostwatch {
namespace {

struct TimeUnit {
  std::string_view name;
  int64_t nanos;
};

constexpr TimeUnit kUnits[] = {{"ns", 1},
                           {"us", 1'000},
                           {"ms", 1'000'000},
                           {"s", 1'000'000'000},
                           {"m", 60'000'000'000},
                           {"h", 3'600'000'000'000}};

std::optional<int64_t> unit_nanos(std::string_view text, std::size_t& pos) {
  // Two-letter units first so that the "m" of "ms" is not read as minutes.
  for (const TimeUnit& u : {kUnits[0], kUnits[1], kUnits[2], kUnits[4], kUnits[3], kUnits[5]}) {
    if (text.substr(pos, u.name.size()) != u.name) continue;
    pos += u.name.size();
    return u.nanos;
  }
  return std::nullopt;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::size_t pos = 0;
  long double total = 0;
  while (pos < text.size()) {
    const std::size_t start = pos;
    while (pos < text.size() && (std::isdigit(static_cast<unsigned char>(text[pos])) || text[pos] == '.')) ++pos;
    if (pos == start) return std::nullopt;
    const std::string number(text.substr(start, pos - start));
    if (number.find('.') != number.rfind('.') || number == ".") return std::nullopt;
    const auto nanos = unit_nanos(text, pos);
    if (!nanos) return std::nullopt;
    total += std::stold(number) * static_cast<long double>(*nanos);
    if (total > 1e18L) return std::nullopt;  // beyond any sensible timeout; avoids overflow
  }
  return Duration(static_cast<int64_t>(std::llround(total)));
}

std::string format_duration(Duration d) {
  int64_t ns = d.count();
  if (ns == 0) return "0s";
  std::string out = ns < 0 ? "-" : "";
  ns = std::llabs(ns);
  // Whole hours/minutes/seconds first, then the remainder in the largest exact sub-second unit.
  for (const TimeUnit& u : {kUnits[5], kUnits[4], kUnits[3]}) {
    if (ns >= u.nanos) {
      out += std::to_string(ns / u.nanos) + std::string(u.name);
      ns %= u.nanos;
    }
  }
  for (const TimeUnit& u : {kUnits[2], kUnits[1], kUnits[0]}) {
    if (ns > 0 && ns % u.nanos == 0) {
      out += std::to_string(ns / u.nanos) + std::string(u.name);
      ns = 0;
    }
  }
  return out;
}

}  // namespace ghostwatch
