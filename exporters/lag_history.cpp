#include "exporters/lag_history.h"

#include <algorithm>
#include <cmath>

#include "common/percentiles.h"

namespace ghostwatch {

int64_t LagHistory::step_of(MonoTime t) {
  return std::chrono::duration_cast<Duration>(t.time_since_epoch()).count() / kStep.count();
}

LagHistory::Stored LagHistory::stored(const HistoryPoint& p) {
  return {p.p50, p.p99, p.seen ? p.pending : std::numeric_limits<float>::quiet_NaN()};
}

HistoryPoint LagHistory::point(const Stored& s) {
  HistoryPoint p;
  p.p50 = s.p50;
  p.p99 = s.p99;
  p.seen = !std::isnan(s.pending);
  p.pending = p.seen ? s.pending : 0;
  return p;
}

void LagHistory::move_to(int64_t step) {
  if (step <= open_step_) return;  // the same step (or a reading from before it: kept in it)
  if (closed_.empty()) closed_.assign(kSteps, stored(HistoryPoint{}));
  if (open_step_ != std::numeric_limits<int64_t>::min()) {
    closed_[static_cast<std::size_t>(open_step_ % kSteps)] = stored(open_point());
    // Steps with no event in between are gaps; at most a whole window of them need clearing.
    for (int64_t s = open_step_ + 1; s < step && s <= open_step_ + kSteps; ++s) {
      closed_[static_cast<std::size_t>(s % kSteps)] = stored(HistoryPoint{});
    }
  }
  open_step_ = step;
  open_lags_.clear();
  open_count_ = 0;
  open_pending_ = 0;
  open_seen_ = false;
}

void LagHistory::lag(MonoTime now, double seconds) {
  move_to(step_of(now));
  open_seen_ = true;
  ++open_count_;
  const auto value = static_cast<float>(seconds);
  if (open_lags_.size() < kSampled) {
    open_lags_.push_back(value);
    return;
  }
  random_ ^= random_ << 13;
  random_ ^= random_ >> 17;
  random_ ^= random_ << 5;
  const uint64_t slot = random_ % open_count_;
  if (slot < kSampled) open_lags_[static_cast<std::size_t>(slot)] = value;
}

void LagHistory::pending(MonoTime now, double seconds) {
  move_to(step_of(now));
  open_seen_ = true;
  open_pending_ = std::max(open_pending_, static_cast<float>(seconds));
}

HistoryPoint LagHistory::open_point() const {
  HistoryPoint p;
  p.seen = open_seen_;
  p.pending = open_pending_;
  if (!open_lags_.empty()) {
    const std::vector<double> lags(open_lags_.begin(), open_lags_.end());
    p.p50 = static_cast<float>(percentile(lags, 0.5));
    p.p99 = static_cast<float>(percentile(lags, 0.99));
  }
  return p;
}

std::vector<HistoryPoint> LagHistory::points(MonoTime now) const {
  std::vector<HistoryPoint> out(kSteps);
  if (closed_.empty()) return out;
  const int64_t last = std::max(step_of(now), open_step_);
  for (int i = 0; i < kSteps; ++i) {
    const int64_t step = last - (kSteps - 1) + i;
    if (step == open_step_) out[static_cast<std::size_t>(i)] = open_point();
    else if (step < open_step_ && step > open_step_ - kSteps) out[static_cast<std::size_t>(i)] = point(closed_[static_cast<std::size_t>(step % kSteps)]);
  }
  return out;
}

}  // namespace ghostwatch
