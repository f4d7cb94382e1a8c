// Backoff: the one reconnect/retry schedule shared by every backend loop. Exponential from
// `initial` to `max`, with +-20% jitter so that many agents do not reconnect in lockstep.
#pragma once

#include <random>

#include "common/clock.h"

namespace ghostwatch {

class Backoff {
 public:
  Backoff(Duration initial, Duration max);
  // The wait before the next attempt; each call doubles the following one, up to max.
  Duration next();
  void reset();

 private:
  Duration initial_, max_, current_;
  std::minstd_rand rng_;
};

}  // namespace ghostwatch
