// The freshness API's query parsing and its answers to bad requests, without a running probe.
#include "agent/freshness.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ghostwatch {
namespace {

TEST(Freshness, QueryParametersArePercentDecoded) {
  EXPECT_EQ(query_parameter("probe=pg&position=0%2F3000060", "position"), "0/3000060");
  EXPECT_EQ(query_parameter("probe=pg&position=0/3000060", "position"), "0/3000060");
  EXPECT_EQ(query_parameter("position=0-1-42%2C1-2-7&probe=maria", "position"), "0-1-42,1-2-7");
  EXPECT_EQ(query_parameter("a=1+2", "a"), "1 2");
  EXPECT_EQ(query_parameter("probe=pg", "position"), std::nullopt);
  EXPECT_EQ(query_parameter("position=%zz", "position"), std::nullopt) << "bad encoding";
  EXPECT_EQ(query_parameter("position=%4", "position"), std::nullopt) << "truncated escape";
  EXPECT_EQ(query_parameter("position", "position"), "");
}

TEST(Freshness, BadRequestsGet400WithTheReason) {
  auto none = [](const std::string&) -> ReplicationProbe* { return nullptr; };
  const HttpResponse no_probe = freshness_response("position=0/1", none);
  EXPECT_EQ(no_probe.status, 400);
  EXPECT_NE(nlohmann::json::parse(no_probe.body).at("error").get<std::string>().find("probe"), std::string::npos);
  const HttpResponse no_position = freshness_response("probe=pg", none);
  EXPECT_EQ(no_position.status, 400);
  EXPECT_NE(no_position.body.find("position"), std::string::npos);
  const HttpResponse unknown = freshness_response("probe=pg&position=0/1", none);
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("unknown probe: pg"), std::string::npos);
  EXPECT_EQ(unknown.content_type, "application/json");
}

}  // namespace
}  // namespace ghostwatch
