// mode: position's sampler: the first sample is the baseline, one that did not advance is no
// canary, one that advanced is the next canary with its position.
#include "probes/position_sampler.h"

#include <gtest/gtest.h>

#include <deque>

namespace ghostwatch {
namespace {

TEST(PositionSampler, OnlyAnAdvancedPositionIsACanary) {
  std::deque<Result<std::optional<Position>>> answers{
      std::optional<Position>("0/100"), std::optional<Position>("0/100"), std::optional<Position>("0/180"),
      Error{"connection refused"},      std::optional<Position>("0/180"), std::optional<Position>("0/200"),
      std::optional<Position>()};
  PositionSampler sampler([&answers](std::stop_token) {
    auto a = answers.front();
    answers.pop_front();
    return a;
  });
  auto unchanged = [](const Result<int64_t>& r) { return !r && r.error().code == kPositionUnchanged; };
  EXPECT_TRUE(unchanged(sampler.write({}))) << "the first sample is the baseline";
  EXPECT_TRUE(unchanged(sampler.write({}))) << "an idle primary: no canary";
  const auto first = sampler.write({});
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value(), 1);
  EXPECT_EQ(sampler.canary_position(), "0/180");
  const auto failed = sampler.write({});
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message, "connection refused");
  EXPECT_TRUE(unchanged(sampler.write({}))) << "a failure in between does not make the same position new";
  EXPECT_EQ(sampler.write({}).value(), 2);
  EXPECT_EQ(sampler.position({}).value(), "0/200");
  const auto none = sampler.write({});
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no position"), std::string::npos);
}

}  // namespace
}  // namespace ghostwatch
