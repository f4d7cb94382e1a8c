#include "exporters/strategies.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/percentiles.h"

namespace ghostwatch {
namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();

// Every (canary, replica) lag, a replica that never showed the canary as infinite.
std::vector<double> pooled_lags(const StrategyInput& in) {
  std::vector<double> out;
  for (const auto& [seq, by_replica] : in.lags) {
    for (const std::string& r : in.replicas) {
      auto it = by_replica.find(r);
      out.push_back(it == by_replica.end() ? kNever : it->second);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The share of `sorted` strictly above `x`.
double share_above(const std::vector<double>& sorted, double x) {
  const auto above = sorted.end() - std::upper_bound(sorted.begin(), sorted.end(), x);
  return static_cast<double>(above) / static_cast<double>(sorted.size());
}

// The first replica to show each canary: the lag a position-routed read waits on.
std::vector<double> fastest_lags(const StrategyInput& in) {
  std::vector<double> out;
  for (const auto& [seq, by_replica] : in.lags) {
    double best = kNever;
    for (const std::string& r : in.replicas) {
      if (auto it = by_replica.find(r); it != by_replica.end()) best = std::min(best, it->second);
    }
    out.push_back(best);
  }
  return out;
}

void replica_strategy(const StrategyInput& in, const std::vector<double>& pooled, StrategyComparison& c) {
  for (const auto& [label, delay] : in.delays) {
    c.replica_stale_by_delay.push_back(share_above(pooled, delay));
    c.replica_stale += c.replica_stale_by_delay.back();
  }
  c.replica_stale /= static_cast<double>(in.delays.size());
}

// The window: the (1 - stale_target) quantile of the pooled lags, by the nearest rank above.
void pin_strategy(const StrategyInput& in, const std::vector<double>& pooled, StrategyComparison& c) {
  const double n = static_cast<double>(pooled.size());
  const auto rank = static_cast<std::size_t>(std::ceil((1.0 - in.stale_target) * n));
  const double window = pooled[std::min(pooled.size(), std::max<std::size_t>(rank, 1)) - 1];
  c.pin_window_is_max = n < 1.0 / in.stale_target;
  if (std::isinf(window)) return;
  c.pin_window = window;
  double stale = 0;
  int to_primary = 0;
  for (const auto& [label, delay] : in.delays) {
    if (delay < window) ++to_primary;
    else stale += share_above(pooled, delay);
  }
  const auto reads = static_cast<double>(in.delays.size());
  c.pin_primary = to_primary / reads;
  c.pin_stale = stale / reads;
}

void wait_strategy(const StrategyInput& in, const std::vector<double>& fastest, StrategyComparison& c) {
  std::vector<double> waits;
  long reads = 0, waiting = 0, fallback = 0;
  for (double lag : fastest) {
    for (const auto& [label, delay] : in.delays) {
      ++reads;
      const double wait = lag - delay;
      if (wait <= 0) continue;
      ++waiting;
      if (wait > in.budget) ++fallback;
      waits.push_back(std::min(wait, in.budget));  // a fallback waited the whole budget first
    }
  }
  c.wait_share = static_cast<double>(waiting) / static_cast<double>(reads);
  c.wait_primary = static_cast<double>(fallback) / static_cast<double>(reads);
  if (!waits.empty()) {
    c.wait_p50 = percentile(waits, 0.5);
    c.wait_p99 = percentile(waits, 0.99);
  }
}

}  // namespace

std::optional<StrategyComparison> compare_strategies(const StrategyInput& in) {
  if (in.lags.empty() || in.replicas.empty() || in.delays.empty()) return std::nullopt;
  StrategyComparison c;
  c.canaries = static_cast<int>(in.lags.size());
  const std::vector<double> pooled = pooled_lags(in);
  replica_strategy(in, pooled, c);
  pin_strategy(in, pooled, c);
  wait_strategy(in, fastest_lags(in), c);
  return c;
}

}  // namespace ghostwatch
