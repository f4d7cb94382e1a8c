// The landing page's 15-minute history: per 15 s step, the lag percentiles and the largest
// pending age, gaps where nothing happened, and a bounded cost however many canaries arrive.
#include "exporters/lag_history.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ghostwatch {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A step boundary far from the clock's start, so that every test begins at a step's start.
MonoTime at(Duration since_start) {
  return MonoTime(LagHistory::kStep * 1000) + since_start;
}

TEST(LagHistory, NothingBeforeTheFirstEvent) {
  LagHistory h;
  const auto points = h.points(at(seconds(0)));
  ASSERT_EQ(points.size(), static_cast<std::size_t>(LagHistory::kSteps));
  for (const HistoryPoint& p : points) EXPECT_FALSE(p.seen);
}

TEST(LagHistory, EachStepKeepsItsOwnPercentilesAndTheLastIsNow) {
  LagHistory h;
  for (int i = 1; i <= 10; ++i) h.lag(at(seconds(i)), 0.010 * i);  // step 0: 10 ms .. 100 ms
  h.lag(at(seconds(16)), 0.200);                                   // step 1: 200 ms
  h.lag(at(seconds(17)), 0.200);
  const auto points = h.points(at(seconds(50)));  // step 3 now
  const std::size_t now = LagHistory::kSteps - 1;
  EXPECT_FALSE(points[now].seen) << "nothing happened in the step of now";
  EXPECT_FALSE(points[now - 1].seen);
  ASSERT_TRUE(points[now - 2].seen);
  EXPECT_FLOAT_EQ(points[now - 2].p50, 0.200f);
  ASSERT_TRUE(points[now - 3].seen);
  EXPECT_NEAR(points[now - 3].p50, 0.055, 0.001);
  EXPECT_NEAR(points[now - 3].p99, 0.0991, 0.001);
  EXPECT_FALSE(points[now - 4].seen);
}

TEST(LagHistory, PendingIsTheLargestAgeOfItsStepAndNeedsNoLag) {
  LagHistory h;
  h.pending(at(seconds(1)), 0.5);
  h.pending(at(seconds(2)), 2.5);
  h.pending(at(seconds(3)), 0.0);
  const auto points = h.points(at(seconds(5)));
  const HistoryPoint& p = points.back();
  EXPECT_TRUE(p.seen);
  EXPECT_FLOAT_EQ(p.pending, 2.5f);
  EXPECT_TRUE(std::isnan(p.p50)) << "no lag sample: no percentile, not a zero";
}

TEST(LagHistory, AQuarterHourOfSilenceLeavesNothing) {
  LagHistory h;
  h.lag(at(seconds(1)), 0.1);
  h.lag(at(seconds(20)), 0.1);
  auto points = h.points(at(seconds(20)));
  EXPECT_TRUE(points[LagHistory::kSteps - 2].seen);
  points = h.points(at(seconds(20) + LagHistory::kStep * LagHistory::kSteps));
  for (const HistoryPoint& p : points) EXPECT_FALSE(p.seen);
  // An event after the silence does not bring back what was before it.
  h.lag(at(seconds(20) + LagHistory::kStep * (LagHistory::kSteps + 3)), 0.3);
  points = h.points(at(seconds(20) + LagHistory::kStep * (LagHistory::kSteps + 3)));
  int seen = 0;
  for (const HistoryPoint& p : points) seen += p.seen;
  EXPECT_EQ(seen, 1);
  EXPECT_FLOAT_EQ(points.back().p50, 0.3f);
}

TEST(LagHistory, ManyLagsInOneStepAreSampledWithoutBias) {
  LagHistory h;
  // 100 canaries a second for a whole step, the lag growing from 0 to 1 s: keeping the first
  // (or the last) 128 would put the median near one end.
  const int n = 1500;
  for (int i = 0; i < n; ++i) h.lag(at(milliseconds(i * 10)), i / double(n));
  const HistoryPoint p = h.points(at(seconds(14))).back();
  EXPECT_NEAR(p.p50, 0.5, 0.12);
  EXPECT_GT(p.p99, 0.9);
}

TEST(LagHistory, TheWindowMovesOneStepAtATime) {
  LagHistory h;
  for (int s = 0; s < LagHistory::kSteps + 10; ++s) h.lag(at(LagHistory::kStep * s), 0.001 * s);
  const auto points = h.points(at(LagHistory::kStep * (LagHistory::kSteps + 9)));
  for (int i = 0; i < LagHistory::kSteps; ++i) {
    ASSERT_TRUE(points[static_cast<std::size_t>(i)].seen) << i;
    EXPECT_NEAR(points[static_cast<std::size_t>(i)].p50, 0.001 * (10 + i), 1e-6) << i;
  }
}

}  // namespace
}  // namespace ghostwatch
