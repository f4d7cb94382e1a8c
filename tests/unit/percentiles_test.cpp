#include "common/percentiles.h"

#include <gtest/gtest.h>

namespace ghostwatch {
namespace {

TEST(Percentile, EmptyIsZero) { EXPECT_EQ(percentile({}, 0.5), 0.0); }

TEST(Percentile, SingleValueIsEveryPercentile) {
  EXPECT_EQ(percentile({0.2}, 0.0), 0.2);
  EXPECT_EQ(percentile({0.2}, 0.99), 0.2);
}

TEST(Percentile, InterpolatesBetweenRanks) {
  // numpy.percentile([1,2,3,4], [50, 90, 99]) -> 2.5, 3.7, 3.97
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.9), 3.7);
  EXPECT_NEAR(percentile({4, 1, 3, 2}, 0.99), 3.97, 1e-12);
}

TEST(Percentile, EndsAreMinAndMax) {
  std::vector<double> v{5, 3, 9, 1};
  EXPECT_EQ(percentile(v, 0.0), 1);
  EXPECT_EQ(percentile(v, 1.0), 9);
  EXPECT_EQ(percentile(v, 7.0), 9);  // clamped
}

TEST(Percentile, MedianOfHundred) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_DOUBLE_EQ(percentile(v, 0.5), 50.5);
  EXPECT_DOUBLE_EQ(percentile(v, 0.99), 99.01);
}

}  // namespace
}  // namespace ghostwatch
