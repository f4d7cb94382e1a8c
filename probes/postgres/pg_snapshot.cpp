#include "probes/postgres/pg_snapshot.h"

#include <algorithm>
#include <charconv>

namespace ghostwatch::pg {
namespace {

// Reads a decimal id at the front of `text` and drops it; nullopt when there is none.
std::optional<uint64_t> take_id(std::string_view& text) {
  uint64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  return id;
}

bool take(std::string_view& text, char c) {
  if (text.empty() || text.front() != c) return false;
  text.remove_prefix(1);
  return true;
}

}  // namespace

std::optional<Snapshot> parse_snapshot(std::string_view text) {
  Snapshot s;
  auto xmin = take_id(text);
  if (!xmin || !take(text, ':')) return std::nullopt;
  auto xmax = take_id(text);
  if (!xmax || !take(text, ':') || *xmax < *xmin) return std::nullopt;
  s.xmin = *xmin;
  s.xmax = *xmax;
  while (!text.empty()) {
    auto x = take_id(text);
    if (!x) return std::nullopt;
    s.xip.push_back(*x);
    if (!text.empty() && (!take(text, ',') || text.empty())) return std::nullopt;
  }
  std::sort(s.xip.begin(), s.xip.end());
  return s;
}

// xmax moves only when a transaction completes (it is one past the latest completed id); one that
// completed out of order leaves the in-progress list without moving it.
bool completed_between(const Snapshot& before, const Snapshot& after) {
  if (after.xmax > before.xmax) return true;
  return std::any_of(before.xip.begin(), before.xip.end(), [&after](uint64_t x) {
    return x < after.xmax && !std::binary_search(after.xip.begin(), after.xip.end(), x);
  });
}

}  // namespace ghostwatch::pg
