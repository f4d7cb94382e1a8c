// A pg_snapshot (pg_current_snapshot()) in its text form "xmin:xmax:xip,...": which transactions
// had completed when it was taken. Two of them tell whether any transaction completed in between,
// which the WAL position cannot: it grows without commits too (open transactions, checkpoints,
// hint bits), and a replica replays such WAL without recovery_min_apply_delay.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace ghostwatch::pg {

struct Snapshot {
  uint64_t xmin = 0;
  uint64_t xmax = 0;          // one past the latest completed transaction id
  std::vector<uint64_t> xip;  // in progress below xmax, ascending
};

std::optional<Snapshot> parse_snapshot(std::string_view text);

// Whether a transaction that had not completed at `before` had completed (committed or rolled
// back) at `after`.
bool completed_between(const Snapshot& before, const Snapshot& after);

}  // namespace ghostwatch::pg
