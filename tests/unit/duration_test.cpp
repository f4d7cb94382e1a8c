#include "agent/duration.h"

#include <gtest/gtest.h>

namespace ghostwatch {
namespace {

TEST(Duration, ParsesEveryUnit) {
  EXPECT_EQ(parse_duration("7ns"), Duration(7));
  EXPECT_EQ(parse_duration("250us"), std::chrono::microseconds(250));
  EXPECT_EQ(parse_duration("5ms"), std::chrono::milliseconds(5));
  EXPECT_EQ(parse_duration("1s"), std::chrono::seconds(1));
  EXPECT_EQ(parse_duration("2m"), std::chrono::minutes(2));
  EXPECT_EQ(parse_duration("1h"), std::chrono::hours(1));
}

TEST(Duration, ParsesFractionsAndSums) {
  EXPECT_EQ(parse_duration("1.5s"), std::chrono::milliseconds(1500));
  EXPECT_EQ(parse_duration("0.25ms"), std::chrono::microseconds(250));
  EXPECT_EQ(parse_duration("1m30s"), std::chrono::seconds(90));
  EXPECT_EQ(parse_duration("1h2m3s4ms"), std::chrono::milliseconds(3723004));
  EXPECT_EQ(parse_duration("0s"), Duration(0));
}

TEST(Duration, RejectsMalformedText) {
  for (const char* bad : {"", "5", "ms", "5x", "-1s", "1.2.3s", "1 s", " 1s", "1s ", "1sm", ".s", "s5", "1e3ms",
                          "99999999999h"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

TEST(Duration, FormatsShortestExactText) {
  EXPECT_EQ(format_duration(std::chrono::milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(std::chrono::seconds(90)), "1m30s");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(1500)), "1s500ms");
  EXPECT_EQ(format_duration(Duration(0)), "0s");
  EXPECT_EQ(format_duration(std::chrono::hours(2)), "2h");
}

TEST(Duration, FormatRoundTrips) {
  for (const char* text : {"10ms", "1s", "2m", "1m30s", "250us", "1h1m1s1ms"}) {
    auto d = parse_duration(text);
    ASSERT_TRUE(d) << text;
    EXPECT_EQ(parse_duration(format_duration(*d)), d) << text;
  }
}

}  // namespace
}  // namespace ghostwatch
