#include "common/log.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/redact.h"

namespace ghostwatch::log {
namespace {

TEST(Log, LogfmtQuotesOnlyWhatNeedsIt) {
  const std::string line = render(Format::logfmt, Level::warn, "2026-01-02T03:04:05.006Z", "pg", "replica-1",
                                  "poll: connection refused", {{"attempt", "3"}, {"hint", "say \"hi\""}});
  EXPECT_EQ(line,
            "time=2026-01-02T03:04:05.006Z level=warn probe=pg target=replica-1 attempt=3 hint=\"say \\\"hi\\\"\" "
            "msg=\"poll: connection refused\"");
}

TEST(Log, JsonHasTheSameFields) {
  const std::string line = render(Format::json, Level::info, "t", "pg", "", "a\nb", {});
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["probe"], "pg");
  EXPECT_FALSE(j.contains("target"));
  EXPECT_EQ(j["msg"], "a\nb");
  EXPECT_EQ(line.find('\n'), std::string::npos) << "one event per line";
}

TEST(Log, ExplicitFieldsWinOverTheContext) {
  const std::string line = render(Format::logfmt, Level::info, "t", "ctx", "", "m", {{"probe", "explicit"}});
  EXPECT_EQ(line, "time=t level=info probe=explicit msg=m");
}

TEST(Log, SecretsAreScrubbedFromMessagesAndFields) {
  register_secret("hunter2-log-secret");
  const std::string line = render(Format::logfmt, Level::error, "t", "", "", "auth failed for hunter2-log-secret",
                                  {{"dsn", "password=hunter2-log-secret"}});
  EXPECT_EQ(line.find("hunter2-log-secret"), std::string::npos) << line;
}

TEST(Log, ParsesLevelsAndFormats) {
  Level l;
  Format f;
  EXPECT_TRUE(parse_level("warn", l));
  EXPECT_FALSE(parse_level("verbose", l));
  EXPECT_TRUE(parse_format("json", f));
  EXPECT_EQ(f, Format::json);
  EXPECT_FALSE(parse_format("text", f));
}

}  // namespace
}  // namespace ghostwatch::log
