#include "common/backoff.h"

#include <algorithm>

namespace ghostwatch {

Backoff::Backoff(Duration initial, Duration max)
    : initial_(initial), max_(std::max(initial, max)), current_(initial), rng_(std::random_device{}()) {}

Duration Backoff::next() {
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  auto wait = std::chrono::duration_cast<Duration>(current_ * jitter(rng_));
  current_ = std::min(max_, current_ * 2);
  return std::min(wait, max_);
}

void Backoff::reset() { current_ = initial_; }

}  // namespace ghostwatch
