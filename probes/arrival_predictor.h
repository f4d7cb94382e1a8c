// ArrivalPredictor: when, after its ack, a target will show the next canary, from the target's
// recent samples, so that it is polled at poll_interval only around that moment instead of from
// the ack on (a replica 200 ms behind took 200 polls per canary at 1 ms).
//
// Each sample bounds the lag from below: the canary was not there when the previous poll left
// (lag - resolution). The prediction is the smallest lower bound of the last kWindow samples,
// less a margin of their spread and a thirty-second of the lag (at least 3 polls): a steady lag (a
// replica behind by its apply delay, by a queue) is waited for; a lag that jumps about is
// predicted at 0, polled from the ack as without prediction. It never delays a canary's sighting past its first poll: a canary that arrives
// earlier than predicted is caught by the first poll, with a window (resolution) that honestly
// spans the time slept. Such a sample's lower bound is the ack itself, so the next prediction
// drops to 0 and the next canaries are resolved finely again until kWindow fine samples agree.
// A rise is followed after kWindow canaries (meanwhile polled from the ack, as without it).
//
// Thread-safe: samples come from the poller or the writer, predictions go to the poller.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <mutex>

#include "common/clock.h"

namespace ghostwatch {

class ArrivalPredictor {
 public:
  static constexpr std::size_t kWindow = 4;

  void observe(Duration lag, Duration resolution) {
    const Duration lower = std::max(Duration(0), lag - resolution);
    std::lock_guard lock(mu_);
    lower_[next_] = lower;
    next_ = (next_ + 1) % kWindow;
    count_ = std::min(count_ + 1, kWindow);
  }

  // How long after a canary's ack its first poll may wait: 0 until kWindow samples, and when
  // the wait would save less than a poll. About 10 polls per canary on a replica steadily
  // 200 ms behind, at 1 ms polling.
  Duration lead(Duration poll_interval) const {
    Duration smallest, largest;
    {
      std::lock_guard lock(mu_);
      if (count_ < kWindow) return Duration(0);
      const auto [low, high] = std::minmax_element(lower_.begin(), lower_.end());
      smallest = *low;
      largest = *high;
    }
    const Duration margin = (largest - smallest) + std::max(smallest / 32, 3 * poll_interval);
    return smallest > margin + poll_interval ? smallest - margin : Duration(0);
  }

 private:
  mutable std::mutex mu_;
  std::array<Duration, kWindow> lower_{};
  std::size_t next_ = 0, count_ = 0;
};

}  // namespace ghostwatch
