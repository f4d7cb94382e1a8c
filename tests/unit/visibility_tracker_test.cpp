#include "probes/visibility_tracker.h"

#include <gtest/gtest.h>

namespace ghostwatch {
namespace {

using std::chrono::milliseconds;

class TrackerTest : public ::testing::Test {
 protected:
  FakeClock clock;
  VisibilityTracker tracker{milliseconds(1000)};
  MonoTime now() { return clock.now(); }
  void advance(int ms) { clock.advance(milliseconds(ms)); }
  // A poll sent now that takes `rtt_ms` to answer.
  std::vector<VisibilitySample> poll(std::optional<int64_t> seen, int rtt_ms = 0) {
    const MonoTime sent = now();
    advance(rtt_ms);
    return tracker.polled(seen, sent, now());
  }
};

TEST_F(TrackerTest, LagIsAckToFirstSight) {
  poll(std::nullopt);
  tracker.acked(1, now());
  advance(10);
  EXPECT_TRUE(poll(0).empty());  // the replica still shows an older seq
  advance(10);
  auto samples = poll(1, 2);
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].seq, 1);
  EXPECT_EQ(samples[0].lag, milliseconds(22));
  // Visible after the missing poll was sent (t=10) and before the hit's answer (t=22).
  EXPECT_EQ(samples[0].resolution, milliseconds(12));
}

// mode: position: a canary committed somewhere in the 10 ms between two samples of the primary is
// acked at the window's start with its width: the lag stays an upper bound, and the resolution
// holds both windows, the primary's and the replica's.
TEST_F(TrackerTest, ACommitKnownWithinAWindowWidensTheResolution) {
  poll(std::nullopt);
  const MonoTime committed_from = now();
  tracker.acked(1, committed_from, milliseconds(10));
  advance(15);
  EXPECT_TRUE(poll(0).empty());  // sent at 15: not applied then
  advance(5);
  auto samples = poll(1, 2);
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].lag, milliseconds(22));
  // At the least: committed at 10, applied just after 15; at the most: committed at 0, seen at 22.
  EXPECT_EQ(samples[0].resolution, milliseconds(17));

  // A missing poll sent before the commit window closed bounds nothing: the whole lag is the window.
  tracker.acked(2, now(), milliseconds(10));
  advance(5);
  EXPECT_TRUE(poll(1).empty());
  advance(20);
  samples = poll(2);
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].lag, milliseconds(25));
  EXPECT_EQ(samples[0].resolution, milliseconds(25));
}

TEST_F(TrackerTest, OnePollAnswersForEveryOutstandingCanary) {
  tracker.acked(1, now());
  advance(100);
  tracker.acked(2, now());
  advance(100);
  tracker.acked(3, now());
  advance(50);
  auto samples = poll(2);
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].lag, milliseconds(250));
  EXPECT_EQ(samples[1].lag, milliseconds(150));
  EXPECT_EQ(tracker.outstanding(), 1u);
}

TEST_F(TrackerTest, SeenBeforeAckIsClampedToZero) {
  poll(5);  // synchronous replication: the replica shows seq 5 before the primary acks it
  advance(3);
  auto sample = tracker.acked(5, now());
  ASSERT_TRUE(sample);
  EXPECT_EQ(sample->lag, milliseconds(0));
  EXPECT_EQ(tracker.outstanding(), 0u);
  EXPECT_EQ(tracker.pending(now()), milliseconds(0));
}

TEST_F(TrackerTest, PendingIsAgeOfOldestUnseenAck) {
  EXPECT_EQ(tracker.pending(now()), milliseconds(0));
  tracker.acked(1, now());
  advance(300);
  tracker.acked(2, now());
  advance(200);
  EXPECT_EQ(tracker.pending(now()), milliseconds(500));
  poll(1);
  EXPECT_EQ(tracker.pending(now()), milliseconds(200));
  poll(2);
  EXPECT_EQ(tracker.pending(now()), milliseconds(0));
}

TEST_F(TrackerTest, TimeoutsCountOnceAndPendingKeepsGrowing) {
  tracker.acked(1, now());
  advance(600);
  tracker.acked(2, now());
  advance(500);  // canary 1 is 1100ms old, canary 2 500ms
  EXPECT_EQ(tracker.expire(now()), 1);
  EXPECT_EQ(tracker.expire(now()), 0);
  EXPECT_EQ(tracker.outstanding(), 1u);
  advance(1000);
  EXPECT_EQ(tracker.expire(now()), 1);
  EXPECT_EQ(tracker.outstanding(), 0u);
  // Replication is still stopped: the pending age keeps growing past the timeout.
  EXPECT_EQ(tracker.pending(now()), milliseconds(2100));
  advance(900);
  EXPECT_EQ(tracker.pending(now()), milliseconds(3000));
  // When the target catches up, timed-out canaries yield no sample (their outcome was the
  // timeout) and the pending age drops to 0.
  EXPECT_TRUE(poll(2).empty());
  EXPECT_EQ(tracker.pending(now()), milliseconds(0));
}

TEST_F(TrackerTest, CapBoundsMemoryButPendingStillCountsFromOldest) {
  VisibilityTracker small(milliseconds(100000), 3);
  const MonoTime t0 = now();
  for (int seq = 1; seq <= 10; ++seq) {
    small.acked(seq, now());
    advance(10);
  }
  EXPECT_EQ(small.outstanding(), 3u);
  EXPECT_EQ(small.pending(now()), now() - t0);
  small.polled(10, now(), now());
  EXPECT_EQ(small.pending(now()), milliseconds(0));
}

TEST_F(TrackerTest, FailedPollsDoNotNarrowTheWindow) {
  poll(std::nullopt);  // t=0, the last successful poll before the ack
  advance(5);
  tracker.acked(1, now());  // t=5
  advance(40);              // polls in between failed: the tracker never heard of them
  auto samples = poll(1);
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].lag, milliseconds(40));
  EXPECT_EQ(samples[0].resolution, milliseconds(40));
}

TEST(Fifo, KeepsOrderAcrossWrapsAndGrowth) {
  Fifo<int> q;
  EXPECT_TRUE(q.empty());
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < round % 7 + 1; ++i) q.push_back(next_in++);
    for (int i = 0; i < round % 5 + 1 && !q.empty(); ++i) {
      ASSERT_EQ(q.front(), next_out++);
      q.pop_front();
    }
    ASSERT_EQ(q.size(), static_cast<std::size_t>(next_in - next_out));
    for (std::size_t i = 0; i < q.size(); ++i) ASSERT_EQ(q[i], next_out + static_cast<int>(i));
  }
  while (!q.empty()) {
    EXPECT_EQ(q.front(), next_out++);
    q.pop_front();
  }
  EXPECT_EQ(next_out, next_in);
}

// A replica with three canaries always in flight holds four slots, however long it runs; after
// an outage that queued a thousand, emptying the queue gives the slots back.
TEST(Fifo, HoldsWhatIsInFlightAndGivesAnOutagesSlotsBack) {
  Fifo<int> q;
  EXPECT_EQ(q.capacity(), 0u) << "nothing allocated before the first push";
  for (int i = 0; i < 10000; ++i) {
    q.push_back(i);
    if (q.size() > 3) q.pop_front();
  }
  EXPECT_EQ(q.capacity(), 4u);
  for (int i = 0; i < 1000; ++i) q.push_back(i);
  EXPECT_GE(q.capacity(), 1003u);
  while (!q.empty()) q.pop_front();
  EXPECT_EQ(q.capacity(), 0u);
}

}  // namespace
}  // namespace ghostwatch
