// The strategy comparison on hand-made lags, where every share can be counted by hand.
#include "exporters/strategies.h"

#include <gtest/gtest.h>

namespace ghostwatch {
namespace {

// Two replicas: "fast" shows every canary after 5 ms, "slow" after 200 ms (one canary never).
StrategyInput two_replicas(int canaries, bool slow_misses_one = false) {
  StrategyInput in;
  in.delays = {{"0ms", 0.0}, {"10ms", 0.010}, {"100ms", 0.100}, {"250ms", 0.250}};
  in.replicas = {"fast", "slow"};
  in.stale_target = 0.01;
  in.budget = 0.050;
  for (int seq = 1; seq <= canaries; ++seq) {
    in.lags[seq]["fast"] = 0.005;
    if (!(slow_misses_one && seq == 1)) in.lags[seq]["slow"] = 0.200;
  }
  return in;
}

TEST(Strategies, ReadingAReplicaAtOnceIsStaleWhereItsLagExceedsTheDelay) {
  const auto c = compare_strategies(two_replicas(200));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->canaries, 200);
  // 0ms: both replicas lag (1.0); 10ms and 100ms: only the slow one (0.5); 250ms: neither.
  ASSERT_EQ(c->replica_stale_by_delay.size(), 4u);
  EXPECT_DOUBLE_EQ(c->replica_stale_by_delay[0], 1.0);
  EXPECT_DOUBLE_EQ(c->replica_stale_by_delay[1], 0.5);
  EXPECT_DOUBLE_EQ(c->replica_stale_by_delay[2], 0.5);
  EXPECT_DOUBLE_EQ(c->replica_stale_by_delay[3], 0.0);
  EXPECT_DOUBLE_EQ(c->replica_stale, 0.5);
}

TEST(Strategies, PinningCoversTheLagAndSendsTheEarlierReadsToThePrimary) {
  const auto c = compare_strategies(two_replicas(200));
  ASSERT_TRUE(c->pin_window);
  EXPECT_DOUBLE_EQ(*c->pin_window, 0.200);
  EXPECT_FALSE(c->pin_window_is_max) << "400 lags resolve a 1% target";
  EXPECT_DOUBLE_EQ(c->pin_primary, 0.75) << "0ms, 10ms and 100ms are inside the window";
  EXPECT_DOUBLE_EQ(c->pin_stale, 0.0);
  EXPECT_TRUE(compare_strategies(two_replicas(10))->pin_window_is_max) << "20 lags cannot resolve 1%";
}

TEST(Strategies, WaitingForThePositionUsesTheFirstReplicaThatHasIt) {
  const auto c = compare_strategies(two_replicas(200));
  // Only reads at 0ms wait (5 ms, for the fast replica); none falls back.
  EXPECT_DOUBLE_EQ(c->wait_share, 0.25);
  EXPECT_DOUBLE_EQ(*c->wait_p50, 0.005);
  EXPECT_DOUBLE_EQ(c->wait_primary, 0.0);
}

TEST(Strategies, AReplicaThatNeverShowsACanaryIsStaleForEveryDelay) {
  StrategyInput in = two_replicas(200, /*slow_misses_one=*/true);
  in.replicas = {"slow"};
  const auto c = compare_strategies(in);
  EXPECT_DOUBLE_EQ(c->replica_stale_by_delay[3], 1.0 / 200) << "the missed canary is stale at 250ms too";
  EXPECT_DOUBLE_EQ(*c->pin_window, 0.200) << "1 in 200 is within the 1% target";
  // Waiting on the slow replica alone: 0ms, 10ms and 100ms wait more than the 50 ms budget.
  EXPECT_DOUBLE_EQ(c->wait_share, (3.0 * 199 + 4) / 800);
  EXPECT_DOUBLE_EQ(c->wait_primary, (3.0 * 199 + 4) / 800);
  EXPECT_DOUBLE_EQ(*c->wait_p99, 0.050) << "a fallback waited the whole budget";
  in.stale_target = 0.001;
  EXPECT_FALSE(compare_strategies(in)->pin_window) << "no window keeps the missed canary under 0.1%";
}

TEST(Strategies, NothingToCompareWithoutASample) {
  StrategyInput in = two_replicas(0);
  EXPECT_FALSE(compare_strategies(in));
  in = two_replicas(5);
  in.replicas.clear();
  EXPECT_FALSE(compare_strategies(in));
}

}  // namespace
}  // namespace ghostwatch
