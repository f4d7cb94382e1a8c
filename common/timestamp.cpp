#include "common/timestamp.h"

#include <cctype>
#include <cmath>
#include <string>

#include "common/parse_number.h"

namespace ghostwatch {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// Reads exactly `n` digits at `pos`.
std::optional<int> digits(std::string_view s, std::size_t& pos, std::size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[pos + i]))) return std::nullopt;
    v = v * 10 + (s[pos + i] - '0');
  }
  pos += n;
  return v;
}

bool expect(std::string_view s, std::size_t& pos, std::string_view chars) {
  if (pos >= s.size() || chars.find(s[pos]) == std::string_view::npos) return false;
  ++pos;
  return true;
}

std::optional<int64_t> parse_iso(std::string_view s) {
  std::size_t pos = 0;
  auto y = digits(s, pos, 4);
  if (!y || !expect(s, pos, "-")) return std::nullopt;
  auto mo = digits(s, pos, 2);
  if (!mo || !expect(s, pos, "-")) return std::nullopt;
  auto d = digits(s, pos, 2);
  if (!d || !expect(s, pos, "T ")) return std::nullopt;
  auto h = digits(s, pos, 2);
  if (!h || !expect(s, pos, ":")) return std::nullopt;
  auto mi = digits(s, pos, 2);
  if (!mi || !expect(s, pos, ":")) return std::nullopt;
  auto sec = digits(s, pos, 2);
  if (!sec || *mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 || *mi > 59 || *sec > 60) return std::nullopt;
  int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = 100000;
    const std::size_t start = pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (scale > 0) micros += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  int64_t offset_seconds = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    auto oh = digits(s, pos, 2);
    if (!oh) return std::nullopt;
    if (pos < s.size() && s[pos] == ':') ++pos;
    auto om = digits(s, pos, 2);
    if (!om) return std::nullopt;
    offset_seconds = sign * (*oh * 3600 + *om * 60);
  }
  if (pos != s.size()) return std::nullopt;
  const int64_t seconds = days_from_civil(*y, static_cast<unsigned>(*mo), static_cast<unsigned>(*d)) * 86400 +
                          *h * 3600 + *mi * 60 + *sec - offset_seconds;
  return seconds * 1000000 + micros;
}

}  // namespace

std::optional<int64_t> parse_epoch_micros(std::string_view text) {
  if (auto iso = parse_iso(text)) return iso;
  auto seconds = parse_number<double>(text);
  if (!seconds || !std::isfinite(*seconds) || std::fabs(*seconds) > 1e12) return std::nullopt;
  return static_cast<int64_t>(std::llround(*seconds * 1e6));
}

}  // namespace ghostwatch
