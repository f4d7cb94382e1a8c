// The Wilson score interval for a binomial proportion: a confidence interval for a ratio such as
// stale reads / reads that stays inside [0, 1] and is honest for small counts and ratios near 0
// (where the normal approximation claims certainty it does not have).
#pragma once

#include <cmath>
#include <utility>

namespace ghostwatch {

// 95% by default (z = 1.96). Returns {0, 1} when n is 0: nothing is known.
inline std::pair<double, double> wilson_interval(long successes, long n, double z = 1.959963984540054) {
  if (n <= 0) return {0.0, 1.0};
  const double p = static_cast<double>(successes) / static_cast<double>(n);
  const double nn = static_cast<double>(n);
  const double denom = 1 + z * z / nn;
  const double centre = (p + z * z / (2 * nn)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / denom;
  // Exact ends where the data sit on them (the formula leaves rounding noise there).
  return {successes == 0 ? 0.0 : std::max(0.0, centre - half), successes == n ? 1.0 : std::min(1.0, centre + half)};
}

}  // namespace ghostwatch
