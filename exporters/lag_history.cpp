#include "exporters/lag_history.h"

#include <algorithm>
#include <cmath>

#include "common/percentiles.h"

namespace ghostwatch {

int64_t LagHistory::step_of(MonoTime t) {
  return std::chrono::duration_cast<Duration>(t.time_since_epoch()).count() / kStep.count();
}

namespace {
constexpr double kSmallest = 1e-5;            // seconds: code 0 holds this and anything below
constexpr double kRatio = 1.0004;             // between neighbouring codes: up to 27 days
const double kLogRatio = std::log(kRatio);
}  // namespace

uint16_t LagHistory::encode(float seconds) {
  if (std::isnan(seconds)) return kNothing;
  if (seconds <= kSmallest) return 0;
  const double code = std::round(std::log(seconds / kSmallest) / kLogRatio);
  return static_cast<uint16_t>(std::min(code, double(kNothing - 1)));
}

float LagHistory::decode(uint16_t code) {
  if (code == kNothing) return std::numeric_limits<float>::quiet_NaN();
  if (code == 0) return 0;
  return static_cast<float>(kSmallest * std::exp(code * kLogRatio));
}

LagHistory::Stored LagHistory::stored(const HistoryPoint& p) {
  return {encode(p.p50), encode(p.p99), p.seen ? encode(p.pending) : kNothing};
}

HistoryPoint LagHistory::point(const Stored& s) {
  HistoryPoint p;
  p.p50 = decode(s.p50);
  p.p99 = decode(s.p99);
  p.seen = s.pending != kNothing;
  p.pending = p.seen ? decode(s.pending) : 0;
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
  open_lags_ = 0;
  open_pending_ = 0;
  open_seen_ = false;
}

void LagHistory::lag(MonoTime now, double seconds) {
  move_to(step_of(now));
  open_seen_ = true;
  ++open_lags_;
  recent_.add(seconds);
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
  if (open_lags_ > 0) {
    const std::vector<double> lags = recent_.last(open_lags_);
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
    HistoryPoint& p = out[static_cast<std::size_t>(i)];
    if (step == open_step_) p = open_point();
    else if (step < open_step_ && step > open_step_ - kSteps) p = point(closed_[static_cast<std::size_t>(step % kSteps)]);
  }
  return out;
}

}  // namespace ghostwatch
