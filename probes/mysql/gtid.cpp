#include "probes/mysql/gtid.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/parse_number.h"

namespace ghostwatch::mysql {
namespace {

using ghostwatch::parse_number;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) return parts;
    start = pos + 1;
  }
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

bool is_tag(std::string_view s) {
  if (s.empty() || s.size() > 32 || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::optional<std::pair<uint64_t, uint64_t>> interval(std::string_view s) {
  const auto dash = s.find('-');
  auto lo = parse_number<uint64_t>(s.substr(0, dash));
  auto hi = dash == std::string_view::npos ? lo : parse_number<uint64_t>(s.substr(dash + 1));
  if (!lo || !hi || *lo == 0 || *hi < *lo) return std::nullopt;
  return std::make_pair(*lo, *hi);
}

void normalize(std::vector<std::pair<uint64_t, uint64_t>>& v) {
  std::sort(v.begin(), v.end());
  std::vector<std::pair<uint64_t, uint64_t>> merged;
  for (const auto& iv : v) {
    if (!merged.empty() && iv.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, iv.second);
    } else {
      merged.push_back(iv);
    }
  }
  v = std::move(merged);
}

uint64_t size_of(const std::vector<std::pair<uint64_t, uint64_t>>& v) {
  uint64_t n = 0;
  for (const auto& [lo, hi] : v) n += hi - lo + 1;
  return n;
}

// |a ∩ b| for sorted disjoint interval lists.
uint64_t overlap(const std::vector<std::pair<uint64_t, uint64_t>>& a, const std::vector<std::pair<uint64_t, uint64_t>>& b) {
  uint64_t n = 0;
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const uint64_t lo = std::max(a[i].first, b[j].first), hi = std::min(a[i].second, b[j].second);
    if (lo <= hi) n += hi - lo + 1;
    (a[i].second < b[j].second) ? ++i : ++j;
  }
  return n;
}

}  // namespace

std::optional<MariadbGtidList> parse_mariadb_gtid_list(std::string_view text) {
  MariadbGtidList list;
  text = trim(text);
  if (text.empty()) return list;
  for (std::string_view item : split(text, ',')) {
    const auto parts = split(trim(item), '-');
    if (parts.size() != 3) return std::nullopt;
    auto domain = parse_number<uint32_t>(parts[0]);
    auto server = parse_number<uint32_t>(parts[1]);
    auto seq = parse_number<uint64_t>(parts[2]);
    if (!domain || !server || !seq) return std::nullopt;
    uint64_t& slot = list[*domain];
    slot = std::max(slot, *seq);
  }
  return list;
}

std::optional<MysqlGtidSet> parse_mysql_gtid_set(std::string_view text) {
  MysqlGtidSet set;
  text = trim(text);
  if (text.empty()) return set;
  for (std::string_view item : split(text, ',')) {
    const auto parts = split(trim(item), ':');
    if (parts.size() < 2 || !is_uuid(parts[0])) return std::nullopt;
    std::string key(parts[0]);
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string tag_key = key;
    for (std::size_t i = 1; i < parts.size(); ++i) {
      if (is_tag(parts[i])) {
        tag_key = key + ":" + std::string(parts[i]);
        continue;
      }
      auto iv = interval(parts[i]);
      if (!iv) return std::nullopt;
      set[tag_key].push_back(*iv);
    }
  }
  for (auto& [uuid, intervals] : set) normalize(intervals);
  return set;
}

uint64_t transactions_behind(const MariadbGtidList& primary, const MariadbGtidList& replica) {
  uint64_t behind = 0;
  for (const auto& [domain, seq] : primary) {
    auto it = replica.find(domain);
    const uint64_t have = it == replica.end() ? 0 : it->second;
    if (seq > have) behind += seq - have;
  }
  return behind;
}

uint64_t transactions_behind(const MysqlGtidSet& primary, const MysqlGtidSet& replica) {
  uint64_t behind = 0;
  for (const auto& [uuid, intervals] : primary) {
    auto it = replica.find(uuid);
    behind += size_of(intervals) - (it == replica.end() ? 0 : overlap(intervals, it->second));
  }
  return behind;
}

std::optional<uint64_t> mariadb_transactions_behind(std::string_view primary, std::string_view replica) {
  auto p = parse_mariadb_gtid_list(primary), r = parse_mariadb_gtid_list(replica);
  if (!p || !r) return std::nullopt;
  return transactions_behind(*p, *r);
}

std::optional<uint64_t> mysql_transactions_behind(std::string_view primary, std::string_view replica) {
  auto p = parse_mysql_gtid_set(primary), r = parse_mysql_gtid_set(replica);
  if (!p || !r) return std::nullopt;
  return transactions_behind(*p, *r);
}

}  // namespace ghostwatch::mysql
