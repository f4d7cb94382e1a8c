// The last N lags of a target, for percentiles of "lately": kept as floats (a view in tenths of
// milliseconds needs no more) and allocated at the first one, so a thousand idle targets cost
// nothing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <vector>

#include "common/percentiles.h"

namespace ghostwatch {

class RecentLags {
 public:
  explicit RecentLags(std::size_t capacity) : capacity_(capacity) {}

  void add(double seconds) {
    if (values_.size() < capacity_) {
      if (values_.empty()) values_.reserve(capacity_);
      values_.push_back(static_cast<float>(seconds));
    } else {
      values_[next_] = static_cast<float>(seconds);
    }
    next_ = (next_ + 1) % capacity_;
  }
  // nullopt before the first lag.
  std::optional<double> percentile(double q) const {
    if (values_.empty()) return std::nullopt;
    return ghostwatch::percentile(std::vector<double>(values_.begin(), values_.end()), q);
  }
  // The last n lags added (all of them when fewer were kept), newest first.
  std::vector<double> last(std::size_t n) const {
    std::vector<double> out;
    const std::size_t kept = values_.size();
    out.reserve(std::min(n, kept));
    for (std::size_t i = 1; i <= std::min(n, kept); ++i) {
      out.push_back(values_[(next_ + kept - i) % kept]);
    }
    return out;
  }

 private:
  std::size_t capacity_;
  std::vector<float> values_;  // in no particular order: they only feed percentiles
  std::size_t next_ = 0;
};

}  // namespace ghostwatch
