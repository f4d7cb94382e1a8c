// LagHistory: a target's lag (p50, p99) and pending age over the last 15 minutes, in 15-second
// steps, for the landing page's charts. Each step keeps the percentiles of the lags seen in it
// and the largest pending age; a step with no event at all is a gap, not a zero.
//
// Memory is bounded per target whatever the canary rate (a thousand targets are watched by one
// agent): 60 closed steps of three floats (720 bytes), allocated at the first event, and the
// open step's lags sampled down to at most 128 (reservoir sampling keeps its percentiles
// unbiased).
// Not thread-safe: LiveStatus holds its target's lock around it.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "common/clock.h"

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
  static constexpr std::size_t kSampled = 128;

  void lag(MonoTime now, double seconds);
  void pending(MonoTime now, double seconds);
  // kSteps points, the oldest first; the last is the step `now` falls in, so far.
  std::vector<HistoryPoint> points(MonoTime now) const;

 private:
  // A closed step as kept: pending is NaN where the step saw nothing (a HistoryPoint's `seen`
  // would pad it to 16 bytes).
  struct Stored {
    float p50, p99, pending;
  };
  static int64_t step_of(MonoTime t);
  static Stored stored(const HistoryPoint& p);
  static HistoryPoint point(const Stored& s);
  void move_to(int64_t step);  // closes the open step and any skipped ones (as gaps)
  HistoryPoint open_point() const;

  std::vector<Stored> closed_;  // by step % kSteps, allocated at the first event
  int64_t open_step_ = std::numeric_limits<int64_t>::min();
  std::vector<float> open_lags_;
  uint64_t open_count_ = 0;  // lags seen in the open step, sampled or not
  float open_pending_ = 0;
  bool open_seen_ = false;
  uint32_t random_ = 2463534242u;  // xorshift32 state, for the reservoir
};

}  // namespace ghostwatch
