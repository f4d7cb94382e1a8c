// GTID positions of MariaDB and MySQL, and how many transactions one is behind another.
//
// MariaDB: a GTID list "domain-server-seq[,...]" (@@gtid_binlog_pos, @@gtid_slave_pos); within a
// domain seq numbers only grow, so a replica is behind by the sum over the primary's domains of
// the seq difference. MySQL: a GTID set "uuid:1-5:7[,uuid[:tag]:...]" (@@gtid_executed); a
// replica is behind by the number of transactions in the primary's set missing from its own.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ghostwatch::mysql {

// domain id -> highest seq_no. Empty text is an empty list.
using MariadbGtidList = std::map<uint32_t, uint64_t>;
std::optional<MariadbGtidList> parse_mariadb_gtid_list(std::string_view text);

// source uuid (with ":tag" for tagged GTIDs) -> sorted, disjoint, inclusive intervals.
using MysqlGtidSet = std::map<std::string, std::vector<std::pair<uint64_t, uint64_t>>>;
std::optional<MysqlGtidSet> parse_mysql_gtid_set(std::string_view text);

uint64_t transactions_behind(const MariadbGtidList& primary, const MariadbGtidList& replica);
uint64_t transactions_behind(const MysqlGtidSet& primary, const MysqlGtidSet& replica);

// Parses both sides in the flavour's syntax; nullopt when either is malformed.
std::optional<uint64_t> mariadb_transactions_behind(std::string_view primary, std::string_view replica);
std::optional<uint64_t> mysql_transactions_behind(std::string_view primary, std::string_view replica);

}  // namespace ghostwatch::mysql
