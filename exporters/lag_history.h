// LagHistory: a target's recent lags and its lag (p50, p99) and pending age over the last 15
// minutes, in 15-second steps, for the human views (the landing page's charts, the table's
// p50 and p99). Each step keeps the percentiles of the lags seen in it and the largest pending
// age; a step with no event at all is a gap, not a zero.
//
// Memory is bounded per target whatever the canary rate (a thousand targets are watched by one
// agent): the last 100 lags (400 bytes, allocated at the first), which also give each step its
// percentiles (a step with more than 100 lags, at 10 canaries a second or more, is summed up
// by its last 100), and 60 closed steps of three 16-bit figures (360 bytes, allocated at the
// first event). Not thread-safe: LiveStatus holds its target's lock around it.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "common/clock.h"
#include "common/recent_lags.h"

namespace ghostwatch {

struct HistoryPoint {
  // NaN where the step saw no lag sample; `seen` is false where it saw nothing at all.
  float p50 = std::numeric_limits<float>::quiet_NaN();
  float p99 = std::numeric_limits<float>::quiet_NaN();
  float pending = 0;  // seconds, the largest age of an unseen canary in the step
  bool seen = false;
};

class LagHistory {
 public:
  static constexpr int kSteps = 60;
  static constexpr Duration kStep = std::chrono::seconds(15);
  static constexpr std::size_t kRecent = 100;

  void lag(MonoTime now, double seconds);
  void pending(MonoTime now, double seconds);
  // Of the last kRecent lags, whenever they came; nullopt before the first.
  std::optional<double> recent_percentile(double q) const { return recent_.percentile(q); }
  // kSteps points, the oldest first; the last is the step `now` falls in, so far.
  std::vector<HistoryPoint> points(MonoTime now) const;

 private:
  // A closed step as kept: each figure on a logarithmic scale in 16 bits (from 10 us to 27
  // days, within 0.02 %: far finer than a chart's pixel), kNothing where there is none; pending
  // is kNothing where the step saw nothing at all.
  struct Stored {
    uint16_t p50, p99, pending;
  };
  static constexpr uint16_t kNothing = 0xffff;
  static uint16_t encode(float seconds);
  static float decode(uint16_t code);
  static int64_t step_of(MonoTime t);
  static Stored stored(const HistoryPoint& p);
  static HistoryPoint point(const Stored& s);
  void move_to(int64_t step);  // closes the open step and any skipped ones (as gaps)
  HistoryPoint open_point() const;

  RecentLags recent_{kRecent};
  std::vector<Stored> closed_;  // by step % kSteps, allocated at the first event
  int64_t open_step_ = std::numeric_limits<int64_t>::min();
  uint32_t open_lags_ = 0;  // lags seen in the open step: the newest of recent_
  float open_pending_ = 0;
  bool open_seen_ = false;
};

}  // namespace ghostwatch
