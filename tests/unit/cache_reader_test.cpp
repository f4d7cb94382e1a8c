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
  EXPECT_NE(parse_cached_seq(R"({"seq":[1]})", json).error().message.find("/seq is neither a number nor a string"), std::string::npos);
  const std::string long_value(200, 'x');
  EXPECT_LT(parse_cached_seq(long_value, with_format(CacheTargetConfig::Format::plain)).error().message.size(), 100u)
      << "a huge value is shown truncated";
}

TEST(CachedTimestamp, IsoAndEpochSecondsAsEpochMicros) {
  const auto plain = with_format(CacheTargetConfig::Format::plain);
  EXPECT_EQ(parse_cached_timestamp("1970-01-01T00:00:01Z", plain).value(), 1000000);
  EXPECT_EQ(parse_cached_timestamp("2026-11-24T17:48:57.25Z", plain).value(), 1795542537250000);
  EXPECT_EQ(parse_cached_timestamp("2026-11-24 18:48:57.25+01:00", plain).value(), 1795542537250000);
  EXPECT_EQ(parse_cached_timestamp("2026-11-24T17:48:57", plain).value(), 1795542537000000);  // no zone: UTC
  EXPECT_EQ(parse_cached_timestamp("1795542537.5", plain).value(), 1795542537500000);
  const auto json = with_format(CacheTargetConfig::Format::json, "/updated_at");
  EXPECT_EQ(parse_cached_timestamp(R"({"updated_at":"2026-11-24T17:48:57Z"})", json).value(), 1795542537000000);
  EXPECT_EQ(parse_cached_timestamp(R"({"updated_at":1795542537})", json).value(), 1795542537000000);
  for (const char* bad : {"yesterday", "2026-13-01T00:00:00Z", "2026-11-24T17:48", "2026-11-24T17:48:57+1", "1e400"}) {
    auto r = parse_cached_timestamp(bad, plain);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.error().message.find("not an ISO-8601 time or epoch seconds"), std::string::npos) << bad;
    }
  }
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
