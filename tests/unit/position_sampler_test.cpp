// mode: position's sampler: the first sample is the baseline, one without a commit since the
// previous one is no canary, one with a commit is the next canary with its position, at most one
// per canary interval; and PostgreSQL's snapshots, which tell whether anything committed.
#include "probes/position_sampler.h"

#include <gtest/gtest.h>

#include <deque>

#include "probes/postgres/pg_snapshot.h"

namespace ghostwatch {
namespace {

using Answer = Result<std::optional<PrimarySample>>;

Answer at(const Position& position, std::optional<bool> committed = std::nullopt) {
  return std::optional<PrimarySample>(PrimarySample{position, committed});
}

PositionSampler sampler_of(std::deque<Answer>& answers, int samples_per_canary = 1) {
  return PositionSampler(
      [&answers](std::stop_token) {
        auto a = answers.front();
        answers.pop_front();
        return a;
      },
      samples_per_canary);
}

bool no_canary(const Result<int64_t>& r) { return !r && r.error().code == kPositionUnchanged; }

TEST(PositionSampler, OnlyAnAdvancedGtidPositionIsACanary) {
  std::deque<Answer> answers{at("0-1-5"),  at("0-1-5"), at("0-1-7"), Error{"connection refused"},
                             at("0-1-7"), at("0-1-9"), std::optional<PrimarySample>()};
  auto sampler = sampler_of(answers);
  EXPECT_TRUE(no_canary(sampler.write({}))) << "the first sample is the baseline";
  EXPECT_TRUE(no_canary(sampler.write({}))) << "an idle primary: no canary";
  const auto first = sampler.write({});
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value(), 1);
  EXPECT_EQ(sampler.canary_position(), "0-1-7");
  const auto failed = sampler.write({});
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message, "connection refused");
  EXPECT_TRUE(no_canary(sampler.write({}))) << "a failure in between does not make the same position new";
  EXPECT_EQ(sampler.write({}).value(), 2);
  EXPECT_EQ(sampler.position({}).value(), "0-1-9");
  const auto none = sampler.write({});
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no position"), std::string::npos);
}

// PostgreSQL's WAL grows without commits (open transactions, checkpoints): the snapshot decides.
TEST(PositionSampler, WalWithoutACommitIsNoCanary) {
  std::deque<Answer> answers{at("0/100", false), at("0/180", false), at("0/200", true), at("0/200", false)};
  auto sampler = sampler_of(answers);
  EXPECT_TRUE(no_canary(sampler.write({})));
  EXPECT_TRUE(no_canary(sampler.write({}))) << "the position moved, but nothing committed";
  EXPECT_EQ(sampler.write({}).value(), 1);
  EXPECT_EQ(sampler.canary_position(), "0/200");
  EXPECT_TRUE(no_canary(sampler.write({})));
}

// Sampled every poll_interval, a canary at most every interval: after a canary, the commits of
// the next samples_per_canary - 1 samples are no canaries, and the canary keeps its position.
TEST(PositionSampler, AtMostOneCanaryPerInterval) {
  std::deque<Answer> answers{at("0-1-1"), at("0-1-2"), at("0-1-3"), at("0-1-4"), at("0-1-5"), at("0-1-5"),
                             at("0-1-6")};
  auto sampler = sampler_of(answers, 3);
  EXPECT_TRUE(no_canary(sampler.write({})));
  EXPECT_EQ(sampler.write({}).value(), 1) << "the first commit after the baseline";
  EXPECT_TRUE(no_canary(sampler.write({})));
  EXPECT_TRUE(no_canary(sampler.write({})));
  EXPECT_EQ(sampler.canary_position(), "0-1-2");
  EXPECT_EQ(sampler.write({}).value(), 2) << "three samples after the last canary";
  EXPECT_TRUE(no_canary(sampler.write({}))) << "nothing new";
  EXPECT_TRUE(no_canary(sampler.write({}))) << "a commit, but too soon after the last canary";
  EXPECT_EQ(sampler.canary_position(), "0-1-5");
}

TEST(PositionSampler, SamplesEveryPollIntervalAndCountsThemPerCanary) {
  ProbeConfig probe;
  probe.interval = std::chrono::milliseconds(200);
  probe.poll_interval = std::chrono::milliseconds(10);
  EXPECT_EQ(position_sample_interval(probe), std::chrono::milliseconds(10));
  EXPECT_EQ(samples_per_canary(probe), 20);
  probe.poll_interval = std::chrono::seconds(1);
  EXPECT_EQ(position_sample_interval(probe), std::chrono::milliseconds(200)) << "never slower than the interval";
  EXPECT_EQ(samples_per_canary(probe), 1);
}

TEST(PgSnapshot, ParsesTheTextForm) {
  const auto s = pg::parse_snapshot("741:745:743,741");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->xmin, 741u);
  EXPECT_EQ(s->xmax, 745u);
  EXPECT_EQ(s->xip, (std::vector<uint64_t>{741, 743}));
  EXPECT_TRUE(pg::parse_snapshot("745:745:"));
  for (const char* bad : {"", "745", "745:745", "746:745:", "1:5:2,", "1:5:x", "a:5:", "1:5:2;3"}) {
    EXPECT_FALSE(pg::parse_snapshot(bad)) << bad;
  }
}

TEST(PgSnapshot, TellsWhetherATransactionCompletedInBetween) {
  const auto before = *pg::parse_snapshot("741:745:741,743");
  EXPECT_FALSE(pg::completed_between(before, before));
  EXPECT_TRUE(pg::completed_between(before, *pg::parse_snapshot("741:746:741,743"))) << "a newer one completed";
  EXPECT_TRUE(pg::completed_between(before, *pg::parse_snapshot("741:745:741"))) << "743 completed out of order";
  EXPECT_TRUE(pg::completed_between(before, *pg::parse_snapshot("743:745:743"))) << "741 completed";
  EXPECT_FALSE(pg::completed_between(*pg::parse_snapshot("745:745:"), *pg::parse_snapshot("745:745:")))
      << "transactions that only began (ids assigned, nothing completed) move nothing";
}

}  // namespace
}  // namespace ghostwatch
