#include "probes/mysql/gtid.h"

#include <gtest/gtest.h>

namespace ghostwatch::mysql {
namespace {

const char* kUuidA = "3E11FA47-71CA-11E1-9E33-C80AA9429562";
const char* kUuidB = "4f2e7c44-1c3a-11ef-8d6f-0242ac120002";

TEST(MariadbGtid, ParsesDomainServerSeqLists) {
  auto l = parse_mariadb_gtid_list("0-1-100,1-2-50");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->size(), 2u);
  EXPECT_EQ(l->at(0), 100u);
  EXPECT_EQ(l->at(1), 50u);
  EXPECT_TRUE(parse_mariadb_gtid_list("")->empty());
  EXPECT_EQ(parse_mariadb_gtid_list(" 0-1-7 , 2-1-9 ")->at(2), 9u);
}

TEST(MariadbGtid, RejectsMalformedLists) {
  for (const char* bad : {"0-1", "0-1-2-3", "a-1-2", "0-1-", "0--2", "-1-2", "0-1-2,", ",0-1-2", "0-1-x", "0-1-2;1-1-3",
                          "0-1-99999999999999999999"}) {
    EXPECT_FALSE(parse_mariadb_gtid_list(bad).has_value()) << bad;
  }
}

TEST(MariadbGtid, BehindSumsSeqDifferencesPerDomain) {
  EXPECT_EQ(mariadb_transactions_behind("0-1-100", "0-1-93"), 7u);
  EXPECT_EQ(mariadb_transactions_behind("0-1-100,1-2-50", "0-1-100,1-2-45"), 5u);
  EXPECT_EQ(mariadb_transactions_behind("0-1-100,1-2-50", "0-1-90"), 60u);  // domain 1 never applied
  EXPECT_EQ(mariadb_transactions_behind("0-1-100", "0-1-100,5-3-9"), 0u);   // extra replica domains are not debt
  EXPECT_EQ(mariadb_transactions_behind("0-1-100", "0-2-120"), 0u);        // ahead clamps to 0
  EXPECT_EQ(mariadb_transactions_behind("0-1-100", ""), 100u);
  EXPECT_FALSE(mariadb_transactions_behind("0-1-100", "garbage").has_value());
}

TEST(MysqlGtid, ParsesUuidIntervalSets) {
  auto s = parse_mysql_gtid_set(std::string(kUuidA) + ":1-5:7:9-10,\n" + kUuidB + ":1-3");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->size(), 2u);
  const auto& a = s->at("3e11fa47-71ca-11e1-9e33-c80aa9429562");  // uuids compare case-insensitively
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0], std::make_pair(uint64_t{1}, uint64_t{5}));
  EXPECT_EQ(a[2], std::make_pair(uint64_t{9}, uint64_t{10}));
  EXPECT_TRUE(parse_mysql_gtid_set("")->empty());
}

TEST(MysqlGtid, MergesOverlappingAndAdjacentIntervals) {
  auto s = parse_mysql_gtid_set(std::string(kUuidB) + ":5-9:1-4:8-12");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->begin()->second.size(), 1u);
  EXPECT_EQ(s->begin()->second[0], std::make_pair(uint64_t{1}, uint64_t{12}));
}

TEST(MysqlGtid, TaggedGtidsAreSeparateSources) {
  auto s = parse_mysql_gtid_set(std::string(kUuidB) + ":1-3:batch:1-2");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->size(), 2u);
  EXPECT_EQ(mysql_transactions_behind(std::string(kUuidB) + ":1-3:batch:1-2", std::string(kUuidB) + ":1-3"), 2u);
}

TEST(MysqlGtid, RejectsMalformedSets) {
  for (std::string bad : {std::string("nouuid:1-5"), std::string(kUuidA), std::string(kUuidA) + ":",
                          std::string(kUuidA) + ":0", std::string(kUuidA) + ":5-3", std::string(kUuidA) + ":1-x",
                          std::string(kUuidA) + ":1-5,", std::string(kUuidA).substr(1) + "Z:1"}) {
    EXPECT_FALSE(parse_mysql_gtid_set(bad).has_value()) << bad;
  }
}

TEST(MysqlGtid, BehindCountsMissingTransactions) {
  const std::string a = kUuidA;
  EXPECT_EQ(mysql_transactions_behind(a + ":1-100", a + ":1-93"), 7u);
  EXPECT_EQ(mysql_transactions_behind(a + ":1-100", a + ":1-50:52-100"), 1u);  // a hole
  EXPECT_EQ(mysql_transactions_behind(a + ":1-10," + kUuidB + ":1-5", a + ":1-10"), 5u);
  EXPECT_EQ(mysql_transactions_behind(a + ":1-10", a + ":1-20"), 0u);
  EXPECT_EQ(mysql_transactions_behind(a + ":1-10", ""), 10u);
  EXPECT_FALSE(mysql_transactions_behind(a + ":1-10", "x:1").has_value());
}

}  // namespace
}  // namespace ghostwatch::mysql
