// How three read-your-writes strategies would have fared, computed from what a `probe` run
// measured (each canary's visibility lag on each replica) for a read pattern (reads at each of
// the probe's read_delays after a write, equally often):
//
// - replica: read from a replica picked at random right away: stale when that replica's lag
//   exceeds the read's delay;
// - pin: read from the primary for a window W after the write, then from a random replica; W is
//   the shortest window after which the stale share meets the probe's stale_target;
// - wait: ask which replica has replayed the write's position (the freshness API) and wait for
//   the first one, up to a budget B, else read from the primary; never stale.
//
// A canary a replica never showed (it timed out there) counts as an infinite lag on it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ghostwatch {

struct StrategyInput {
  std::vector<std::pair<std::string, double>> delays;  // the read pattern: label, seconds
  // Per canary (by seq), each replica's lag in seconds; a replica missing from the map never
  // showed it.
  std::map<int64_t, std::map<std::string, double>> lags;
  std::vector<std::string> replicas;
  double stale_target = 0.001;
  double budget = 0.1;  // seconds a read may wait for a replica (wait strategy)
};

struct StrategyComparison {
  int canaries = 0;
  // replica: the stale share overall and per delay (in the input's order).
  double replica_stale = 0;
  std::vector<double> replica_stale_by_delay;
  // pin: the window (nullopt: no window meets the target, e.g. a replica never caught up), the
  // share of reads it sends to the primary and the share still stale.
  std::optional<double> pin_window;
  bool pin_window_is_max = false;  // fewer samples than 1/stale_target: the window is the largest lag seen
  double pin_primary = 0, pin_stale = 0;
  // wait: the share of reads that wait at all, the waits' p50/p99 (seconds, among the reads
  // that wait; one that falls back waited the whole budget first), and the share that falls
  // back to the primary.
  double wait_share = 0;
  std::optional<double> wait_p50, wait_p99;
  double wait_primary = 0;
};

// nullopt without a canary seen on any replica or without a replica.
std::optional<StrategyComparison> compare_strategies(const StrategyInput& input);

}  // namespace ghostwatch
