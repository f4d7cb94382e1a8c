#include "agent/init.h"

#include <gtest/gtest.h>

#include "agent/config.h"

namespace ghostwatch {
namespace {

Config config_with(const std::string& probe) { return parse_config("probes:\n" + probe, "cfg.yaml"); }

TEST(Init, PostgresGrantsTheWriterAndReadOnlyUsersNoMore) {
  const Config c = config_with(
      "  - name: pg\n    kind: postgres\n    schema: my\"schema\n    primary: \"host=p user=writer password=pw1\"\n"
      "    targets:\n      - {name: r1, dsn: \"host=r1 user=writer password=pw1\"}\n"
      "      - {name: r2, dsn: \"host=r2 user=reader password=pw2\"}\n"
      "    read_paths:\n      - {name: lb, dsn: \"host=lb user=app password=pw3\"}\n");
  const InitPlan plan = plan_init(c.probes[0], SqlDialect::postgres);
  const std::string sql = render_init(plan);
  EXPECT_NE(sql.find("CREATE SCHEMA IF NOT EXISTS \"my\"\"schema\";"), std::string::npos) << sql;
  EXPECT_NE(sql.find("GRANT SELECT, INSERT, UPDATE ON \"my\"\"schema\".canary TO \"writer\";"), std::string::npos) << sql;
  EXPECT_NE(sql.find("GRANT SELECT ON \"my\"\"schema\".canary TO \"reader\";"), std::string::npos) << sql;
  EXPECT_NE(sql.find("GRANT SELECT ON \"my\"\"schema\".canary TO \"app\";"), std::string::npos) << sql;
  EXPECT_EQ(sql.find("GRANT SELECT ON \"my\"\"schema\".canary TO \"writer\""), std::string::npos) << "the writer has it already";
  for (const char* pw : {"pw1", "pw2", "pw3"}) EXPECT_EQ(sql.find(pw), std::string::npos) << "never printed";
  ASSERT_EQ(plan.password_statements.size(), 3u);
  EXPECT_EQ(plan.password_statements[0], "ALTER ROLE \"writer\" PASSWORD 'pw1'");
}

TEST(Init, MysqlQuotesAccountsAndPicksTheMonitorRightByDialect) {
  const Config c = config_with(
      "  - name: m\n    kind: mysql\n    primary: \"mysql://o'neil:p%27w@p/\"\n"
      "    targets:\n      - {name: r, dsn: \"mysql://o'neil:p%27w@r/\"}\n");
  const InitPlan maria = plan_init(c.probes[0], SqlDialect::mariadb, "10.%");
  const std::string sql = render_init(maria);
  EXPECT_NE(sql.find("CREATE USER IF NOT EXISTS 'o''neil'@'10.%';"), std::string::npos) << sql;
  EXPECT_NE(sql.find("GRANT SELECT, INSERT, UPDATE ON `ghostwatch`.`canary` TO 'o''neil'@'10.%';"), std::string::npos) << sql;
  EXPECT_NE(sql.find("GRANT SLAVE MONITOR ON *.* TO 'o''neil'@'10.%';"), std::string::npos) << sql;
  EXPECT_EQ(maria.password_statements.at(0), "ALTER USER 'o''neil'@'10.%' IDENTIFIED BY 'p''w'");
  const std::string mysql = render_init(plan_init(c.probes[0], SqlDialect::mysql, "%"));
  EXPECT_NE(mysql.find("GRANT REPLICATION CLIENT ON *.*"), std::string::npos) << mysql;
}

TEST(Init, PositionModeGrantsMonitoringRightsOnly) {
  const Config pg = config_with(
      "  - name: pg\n    kind: postgres\n    mode: position\n    primary: \"host=p user=mon password=pw1\"\n"
      "    targets:\n      - {name: r1, dsn: \"host=r1 user=mon password=pw1\"}\n"
      "      - {name: r2, dsn: \"host=r2 user=other password=pw2\"}\n");
  const std::string sql = render_init(plan_init(pg.probes[0], SqlDialect::postgres));
  EXPECT_NE(sql.find("GRANT pg_monitor TO \"mon\";"), std::string::npos) << sql;
  EXPECT_NE(sql.find("GRANT pg_monitor TO \"other\";"), std::string::npos) << sql;
  for (const char* absent : {"CREATE SCHEMA", "CREATE TABLE", "INSERT", "UPDATE", ".canary"}) {
    EXPECT_EQ(sql.find(absent), std::string::npos) << absent << " in\n" << sql;
  }
  EXPECT_NE(sql.find("mode: position"), std::string::npos);
  const Config my = config_with(
      "  - name: m\n    kind: mysql\n    mode: position\n    primary: \"mysql://mon:pw@p/\"\n"
      "    targets:\n      - {name: r, dsn: \"mysql://mon:pw@r/\"}\n");
  const std::string maria = render_init(plan_init(my.probes[0], SqlDialect::mariadb, "%"));
  EXPECT_NE(maria.find("GRANT SLAVE MONITOR ON *.* TO 'mon'@'%';"), std::string::npos) << maria;
  EXPECT_EQ(maria.find("`canary`"), std::string::npos) << maria;
  EXPECT_EQ(maria.find("CREATE DATABASE"), std::string::npos) << maria;
  EXPECT_NE(render_init(plan_init(my.probes[0], SqlDialect::mysql, "%")).find("GRANT REPLICATION CLIENT ON *.* TO 'mon'@'%';"),
            std::string::npos);
}

TEST(Init, DiscoveryGetsTheRightsItsSourcesNeed) {
  // from_primary on PostgreSQL: pg_monitor (pg_stat_replication's addresses); discovered
  // targets log in as the template says.
  const Config pg = config_with(
      "  - name: pg\n    kind: postgres\n    primary: \"host=p user=writer\"\n"
      "    discovery:\n      dsn_template: \"host={host} port={port} user=reader\"\n      from_primary: {}\n");
  const std::string pg_sql = render_init(plan_init(pg.probes[0], SqlDialect::postgres));
  EXPECT_NE(pg_sql.find("GRANT pg_monitor TO \"writer\";"), std::string::npos) << pg_sql;
  EXPECT_NE(pg_sql.find("GRANT SELECT ON \"ghostwatch\".canary TO \"reader\";"), std::string::npos) << pg_sql;
  // Following a Patroni leader: the writer is the template's user; nothing needs pg_monitor.
  const Config patroni = config_with(
      "  - name: ha\n    kind: postgres\n"
      "    discovery:\n      dsn_template: \"host={host} port={port} user=gw\"\n"
      "      patroni: {urls: [\"http://10.0.0.1:8008\"]}\n");
  const std::string ha_sql = render_init(plan_init(patroni.probes[0], SqlDialect::postgres));
  EXPECT_NE(ha_sql.find("primary the Patroni leader"), std::string::npos) << ha_sql;
  EXPECT_NE(ha_sql.find("GRANT SELECT, INSERT, UPDATE ON \"ghostwatch\".canary TO \"gw\";"), std::string::npos) << ha_sql;
  EXPECT_EQ(ha_sql.find("pg_monitor"), std::string::npos) << ha_sql;
  // MariaDB's SHOW REPLICA HOSTS wants REPLICATION MASTER ADMIN, MySQL's SHOW REPLICAS REPLICATION SLAVE.
  const Config m = config_with(
      "  - name: m\n    kind: mysql\n    primary: \"mysql://gw@p/\"\n"
      "    discovery:\n      dsn_template: \"mysql://gw@{host}:{port}/\"\n      from_primary: {}\n");
  EXPECT_NE(render_init(plan_init(m.probes[0], SqlDialect::mariadb, "%")).find("GRANT REPLICATION MASTER ADMIN ON *.* TO 'gw'@'%';"),
            std::string::npos);
  EXPECT_NE(render_init(plan_init(m.probes[0], SqlDialect::mysql, "%")).find("GRANT REPLICATION SLAVE ON *.* TO 'gw'@'%';"),
            std::string::npos);
}

TEST(Init, ADsnWithoutAUserIsAnError) {
  const Config c = config_with("  - name: pg\n    kind: postgres\n    primary: \"host=p\"\n    targets:\n      - {name: r, dsn: \"host=r\"}\n");
  EXPECT_THROW(plan_init(c.probes[0], SqlDialect::postgres), ConfigError);
}

}  // namespace
}  // namespace ghostwatch
