// MariaDB GTID lists and MySQL GTID sets: parse or nullopt; a position is never behind itself.
#include "fuzz/fuzz_input.h"
#include "probes/mysql/gtid.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace ghostwatch;
  const auto [a, b] = fuzz::two_parts(data, size);
  if (auto list = mysql::parse_mariadb_gtid_list(a)) FUZZ_CHECK(mysql::transactions_behind(*list, *list) == 0);
  if (auto set = mysql::parse_mysql_gtid_set(a)) FUZZ_CHECK(mysql::transactions_behind(*set, *set) == 0);
  (void)mysql::mariadb_transactions_behind(a, b);
  (void)mysql::mysql_transactions_behind(a, b);
  return 0;
}
