#include "probes/arrival_predictor.h"

#include <gtest/gtest.h>

namespace ghostwatch {
namespace {

using namespace std::chrono_literals;

TEST(ArrivalPredictor, NothingIsPredictedBeforeFourSamples) {
  ArrivalPredictor p;
  p.observe(200ms, 1ms);
  p.observe(200ms, 1ms);
  p.observe(200ms, 1ms);
  EXPECT_EQ(p.lead(1ms), Duration(0));
  p.observe(200ms, 1ms);
  EXPECT_GT(p.lead(1ms), Duration(0));
}

TEST(ArrivalPredictor, ASteadyLagIsWaitedForLessAMargin) {
  ArrivalPredictor p;
  for (auto lag : {201ms, 200ms, 202ms, 201ms}) p.observe(lag, 1ms);
  // The lower bounds are 199-201 ms: a margin of their spread (2 ms) and a thirty-second (6.2 ms).
  const Duration lead = p.lead(1ms);
  EXPECT_LT(lead, 199ms);
  EXPECT_GT(lead, 180ms);
  EXPECT_LE(199ms - lead, 20ms) << "at 1 ms polling that is at most about 20 polls per canary";
}

TEST(ArrivalPredictor, ACanaryCaughtOnTheFirstPollAfterTheWaitDropsThePrediction) {
  ArrivalPredictor p;
  for (int i = 0; i < 4; ++i) p.observe(200ms, 1ms);
  ASSERT_GT(p.lead(1ms), 150ms);
  // The lag fell to 0: the first poll, 187 ms after the ack, sees the canary; its window spans
  // the whole wait (the previous poll was before the ack), so its lower bound is 0.
  p.observe(187ms, 187ms);
  EXPECT_EQ(p.lead(1ms), Duration(0)) << "the next canaries are polled from their ack again";
  for (int i = 0; i < 4; ++i) p.observe(1ms, 1ms);
  EXPECT_EQ(p.lead(1ms), Duration(0)) << "a lag of a few polls is not worth waiting for";
}

TEST(ArrivalPredictor, ARiseIsFollowedAfterFourCanaries) {
  ArrivalPredictor p;
  for (int i = 0; i < 4; ++i) p.observe(1ms, 1ms);
  EXPECT_EQ(p.lead(1ms), Duration(0));
  p.observe(500ms, 1ms);
  p.observe(501ms, 1ms);
  p.observe(500ms, 1ms);
  EXPECT_EQ(p.lead(1ms), Duration(0)) << "one old fine sample still says 0";
  p.observe(501ms, 1ms);
  EXPECT_GT(p.lead(1ms), 450ms);
  EXPECT_LT(p.lead(1ms), 499ms);
}

TEST(ArrivalPredictor, TheMarginIsAtLeastThreePolls) {
  ArrivalPredictor p;
  for (int i = 0; i < 4; ++i) p.observe(100ms, 10ms);  // lower bound 90 ms
  EXPECT_EQ(p.lead(10ms), 60ms);
  ArrivalPredictor slow;
  for (int i = 0; i < 4; ++i) slow.observe(40ms, 10ms);  // 30 ms: within 3 polls + 1
  EXPECT_EQ(slow.lead(10ms), Duration(0));
}

// Lags that jump about (a queue with bursts) are not predicted: their spread is the margin.
TEST(ArrivalPredictor, AJitteryLagIsPolledFromTheAck) {
  ArrivalPredictor p;
  for (auto lag : {80ms, 20ms, 95ms, 40ms}) p.observe(lag, 1ms);
  EXPECT_EQ(p.lead(1ms), Duration(0));
  ArrivalPredictor steady_with_noise;
  for (auto lag : {210ms, 200ms, 205ms, 202ms}) steady_with_noise.observe(lag, 1ms);
  const Duration lead = steady_with_noise.lead(1ms);
  EXPECT_GT(lead, 170ms);
  EXPECT_LT(lead, 199ms - 10ms) << "the 10 ms spread widens the margin";
}

}  // namespace
}  // namespace ghostwatch
