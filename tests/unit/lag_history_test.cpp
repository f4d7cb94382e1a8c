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
  EXPECT_NEAR(points[now - 2].p50, 0.200, 0.0001);
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

TEST(LagHistory, ABusyStepIsSummedUpByItsLastHundredLags) {
  LagHistory h;
  // 100 canaries a second for a whole step, the lag growing from 0 to 1.5 s by 1 ms.
  for (int i = 0; i < 1500; ++i) h.lag(at(milliseconds(i * 10)), i / 1000.0);
  const HistoryPoint p = h.points(at(seconds(14))).back();
  EXPECT_NEAR(p.p50, 1.4495, 0.001) << "the median of 1.400 .. 1.499 s";
  EXPECT_NEAR(p.p99, 1.498, 0.001);
  // And a step's percentiles are its own: the next one's first lags do not mix with them.
  h.lag(at(seconds(16)), 0.005);
  const auto points = h.points(at(seconds(16)));
  EXPECT_FLOAT_EQ(points.back().p50, 0.005f);
  EXPECT_NEAR(points[points.size() - 2].p50, 1.4495, 0.001);
}

TEST(LagHistory, AClosedStepKeepsItsFiguresWithinAFifthOfAPerMille) {
  LagHistory h;
  const double lags[] = {0, 0.000004, 0.00002, 0.0031, 0.2, 1.0, 59.9, 3600, 86400 * 20.0};
  for (std::size_t i = 0; i < std::size(lags); ++i) {
    h.lag(at(LagHistory::kStep * int(i)), lags[i]);
    h.pending(at(LagHistory::kStep * int(i)), lags[i]);
  }
  const auto points = h.points(at(LagHistory::kStep * int(std::size(lags))));  // all of them closed
  for (std::size_t i = 0; i < std::size(lags); ++i) {
    const HistoryPoint& p = points[LagHistory::kSteps - 1 - std::size(lags) + i];
    const double want = lags[i] <= 0.00001 ? 0 : lags[i];
    EXPECT_NEAR(p.p50, want, want * 0.0002 + 1e-9) << lags[i];
    EXPECT_NEAR(p.pending, want, want * 0.0002 + 1e-9) << lags[i];
    EXPECT_TRUE(p.seen);
  }
}

TEST(LagHistory, RecentPercentilesAreOfTheLastHundredWhateverTheirSteps) {
  LagHistory h;
  EXPECT_FALSE(h.recent_percentile(0.5).has_value());
  for (int i = 0; i < 150; ++i) h.lag(at(seconds(i)), i < 50 ? 9.0 : 0.1);
  EXPECT_DOUBLE_EQ(*h.recent_percentile(0.99), 0.1f) << "the 50 old ones have left";
}

TEST(LagHistory, TheWindowMovesOneStepAtATime) {
  LagHistory h;
  for (int s = 0; s < LagHistory::kSteps + 10; ++s) h.lag(at(LagHistory::kStep * s), 0.001 * s);
  const auto points = h.points(at(LagHistory::kStep * (LagHistory::kSteps + 9)));
  for (int i = 0; i < LagHistory::kSteps; ++i) {
    ASSERT_TRUE(points[static_cast<std::size_t>(i)].seen) << i;
    EXPECT_NEAR(points[static_cast<std::size_t>(i)].p50, 0.001 * (10 + i), 0.0003 * 0.001 * (10 + i)) << i;
  }
}

}  // namespace
}  // namespace ghostwatch
