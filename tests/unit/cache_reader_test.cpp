#include "probes/cache/cache_reader.h"

#include <gtest/gtest.h>

#include "probes/visibility_tracker.h"

namespace ghostwatch::cache {
namespace {

CacheTargetConfig with_format(CacheTargetConfig::Format f, std::string field = "") {
  CacheTargetConfig c;
  c.format = f;
  c.field = std::move(field);
  return c;
}

TEST(CacheKey, ExpandsAgentAndProbe) {
  EXPECT_EQ(expand_key("canary:{agent}:{probe}", "web-1", "pg"), "canary:web-1:pg");
  EXPECT_EQ(expand_key("{probe}-{probe}", "a", "p"), "p-p");
  EXPECT_EQ(expand_key("fixed", "a", "p"), "fixed");
}

TEST(CachedSeq, PlainJsonAndHashValues) {
  EXPECT_EQ(parse_cached_seq("42", with_format(CacheTargetConfig::Format::plain)).value(), 42);
  EXPECT_EQ(parse_cached_seq(" 42\r\n", with_format(CacheTargetConfig::Format::plain)).value(), 42);
  EXPECT_EQ(parse_cached_seq("7", with_format(CacheTargetConfig::Format::hash, "seq")).value(), 7);
  const auto json = with_format(CacheTargetConfig::Format::json, "/canary/seq");
  EXPECT_EQ(parse_cached_seq(R"({"canary":{"seq":9}})", json).value(), 9);
  EXPECT_EQ(parse_cached_seq(R"({"canary":{"seq":"10"}})", json).value(), 10);
}

TEST(CachedSeq, GarbageIsAnErrorWithAReason) {
  auto plain = parse_cached_seq("not-a-number", with_format(CacheTargetConfig::Format::plain));
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.error().message, "unparseable value 'not-a-number': not an integer");
  const auto json = with_format(CacheTargetConfig::Format::json, "/seq");
  EXPECT_NE(parse_cached_seq("{broken", json).error().message.find("not JSON"), std::string::npos);
  EXPECT_NE(parse_cached_seq(R"({"other":1})", json).error().message.find("nothing at /seq"), std::string::npos);
  EXPECT_NE(parse_cached_seq(R"({"seq":[1]})", json).error().message.find("/seq is not an integer"), std::string::npos);
  const std::string long_value(200, 'x');
  EXPECT_LT(parse_cached_seq(long_value, with_format(CacheTargetConfig::Format::plain)).error().message.size(), 100u)
      << "a huge value is shown truncated";
}

TEST(InvalidatedCache, EverythingAckedBeforeThePollIsSeen) {
  FakeClock clock;
  VisibilityTracker tracker(std::chrono::seconds(10));
  tracker.acked(1, clock.now());
  clock.advance(std::chrono::milliseconds(100));
  tracker.acked(2, clock.now());
  clock.advance(std::chrono::milliseconds(50));
  const MonoTime sent = clock.now();
  clock.advance(std::chrono::milliseconds(5));
  tracker.acked(3, clock.now());  // after the poll was sent: not covered by it
  auto samples = tracker.polled_all_acked_before(sent, clock.now());
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].lag, std::chrono::milliseconds(155));
  EXPECT_EQ(samples[1].lag, std::chrono::milliseconds(55));
  EXPECT_EQ(tracker.outstanding(), 1u);
}

}  // namespace
}  // namespace ghostwatch::cache
