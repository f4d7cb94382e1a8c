// Percentiles of completed lag samples, for the one-shot report.
#pragma once

#include <vector>

namespace ghostwatch {

// q in [0,1]. Linear interpolation between closest ranks (Hyndman-Fan type 7, as numpy's
// default and R's quantile()). Returns 0 for an empty input.
double percentile(std::vector<double> values, double q);

}  // namespace ghostwatch
