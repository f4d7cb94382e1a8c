// `ghostwatch init` against the sandbox: the printed and applied SQL gives the agent's roles
// exactly the rights they need, every metric works with those rights, the agent writes to no
// other table, and a canary table dropped while the agent runs is handled (re-created when the
// role may, otherwise one log line naming the fix).
#include <signal.h>
#include <unistd.h>


#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;

class LeastPrivilege : public SandboxTest {};

std::string suffix() { return std::to_string(getpid()); }

std::string pg_config(const std::string& role, const std::string& password, const std::string& schema) {
  const std::string login = " user=" + role + " password=" + password + "\"";
  return agent_yaml() + R"(  - name: least
    kind: postgres
    schema: )" + schema + R"(
    primary: "${GW_PG_PRIMARY_DSN})" + login + R"(
    interval: 100ms
    poll_interval: 10ms
    timeout: 5s
    connect_timeout: 1s
    query_timeout: 1s
    targets:
      - name: replica-1
        dsn: "${GW_PG_REPLICA1_DSN})" + login + R"(
      - name: replica-2
        dsn: "${GW_PG_REPLICA2_DSN})" + login + "\n";
}

// Writes to `schema`.canary as the table statistics count them (flushed when backends exit).
long pg_canary_writes(const std::string& schema) {
  const std::string n = admin_query(require_env("GW_PG_ADMIN_PRIMARY_DSN"),
                                    "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
                                    "WHERE schemaname = '" + schema + "' AND relname = 'canary'");
  return std::stol(n);
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST_F(LeastPrivilege, PostgresWithExactlyTheGrantsInitGives) {
  const std::string role = "gw_least_" + suffix(), password = "Lp-" + suffix() + "-secret", admin = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  const std::string path = write_temp_file(pg_config(role, password, role), ".yaml");

  const auto printed = run_command({ghostwatch_binary(), "init", "--config", path}, 10s);
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_NE(printed.out.find("GRANT SELECT, INSERT, UPDATE ON \"" + role + "\".canary TO \"" + role + "\";"), std::string::npos)
      << printed.out;
  EXPECT_EQ(printed.out.find(password), std::string::npos) << "init never prints a password";
  for (int i = 0; i < 2; ++i) {  // idempotent
    const auto applied = run_command({ghostwatch_binary(), "init", "--config", path, "--apply", "--admin-dsn", admin}, 30s);
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
  }
  EXPECT_EQ(admin_query(admin, "SELECT string_agg(table_schema || '.' || table_name || ':' || privilege_type, ',' ORDER BY "
                               "privilege_type) FROM information_schema.role_table_grants WHERE grantee = '" + role + "'"),
            role + ".canary:INSERT," + role + ".canary:SELECT," + role + ".canary:UPDATE");
  EXPECT_EQ(admin_query(admin, "SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls FROM "
                               "pg_roles WHERE rolname = '" + role + "'"),
            "f");
  EXPECT_EQ(admin_query(admin, "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = '" +
                                   role + "'"),
            "0")
      << "no role memberships (not even pg_monitor)";

  // Other agents may write to the same database meanwhile: what this role may write is asked
  // of the catalog, and only its own canary table's statistics are looked at.
  EXPECT_EQ(pg_writable_relations(role), role + ".canary");
  {
    Agent agent(path, free_port());
    const std::string ok = "ghostwatch_canary_writes_total{probe=\"least\",result=\"ok\"}";
    const std::string seen2 = "ghostwatch_visibility_lag_seconds_count{probe=\"least\",target=\"replica-2\"}";
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, seen2) > 5; }, 20s)) << agent.log();
    const std::string m = agent.metrics();
    EXPECT_EQ(metric_value(m, "ghostwatch_canary_writes_total{probe=\"least\",result=\"error\"}"), 0) << agent.log();
    EXPECT_GT(metric_value(m, ok).value_or(0), 5);
    for (const char* t : {"replica-1", "replica-2"}) {
      EXPECT_EQ(metric_value(m, series("ghostwatch_target_up", "least", t)), 1) << t;
      EXPECT_GT(metric_value(m, "ghostwatch_visibility_lag_seconds_count{probe=\"least\",target=\"" + std::string(t) + "\"}").value_or(0), 0) << t;
      EXPECT_TRUE(metric_value(m, series("ghostwatch_replication_position_lag_bytes", "least", t))) << t;
    }
    EXPECT_TRUE(metric_value(m, series("ghostwatch_reported_lag_seconds", "least", "replica-2"))) << m;

    // Dropped while the agent runs: this role may not create it, so one log line names the fix.
    admin_query(admin, "DROP TABLE \"" + role + "\".canary");
    const std::string hint = "is missing and this role cannot create it";
    ASSERT_TRUE(wait_for([&] { return agent.log().find(hint) != std::string::npos; }, 10s)) << agent.log();
    const double errors_before = metric_or(agent, "ghostwatch_canary_writes_total{probe=\"least\",result=\"error\"}");
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, "ghostwatch_canary_writes_total{probe=\"least\",result=\"error\"}") > errors_before + 5; }, 15s));
    EXPECT_EQ(count_of(agent.log(), hint), 1u) << "once per outage\n" << agent.log();
    EXPECT_NE(agent.log().find("ghostwatch init --config FILE"), std::string::npos);
    const auto reapplied = run_command({ghostwatch_binary(), "init", "--config", path, "--apply", "--admin-dsn", admin}, 30s);
    ASSERT_EQ(reapplied.exit_code, 0) << reapplied.err;
    const double ok_after_fix = metric_or(agent, ok);
    EXPECT_TRUE(wait_for([&] { return metric_or(agent, ok) > ok_after_fix + 5; }, 15s)) << agent.log();
    EXPECT_NE(agent.log().find("recovered"), std::string::npos);
    EXPECT_EQ(agent.log().find(password), std::string::npos);
  }
  // Backends flush their table statistics when they exit.
  std::this_thread::sleep_for(1500ms);
  EXPECT_GT(pg_canary_writes(role), 0);
  admin_query(admin, "DROP SCHEMA \"" + role + "\" CASCADE; DROP OWNED BY \"" + role + "\"; DROP ROLE \"" + role + "\"");
  std::remove(path.c_str());
}

TEST_F(LeastPrivilege, ADroppedCanaryTableIsRecreatedWhenTheRoleMay) {
  // The sandbox's ghostwatch role may create tables: the agent re-creates its own at the next write.
  const std::string schema = "gw_owner_" + suffix(), admin = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  const std::string path = write_temp_file(pg_config("ghostwatch", require_env("GW_PG_PASSWORD"), schema), ".yaml");
  Agent agent(path, free_port());
  const std::string ok = "ghostwatch_canary_writes_total{probe=\"least\",result=\"ok\"}";
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, ok) > 3; }, 15s)) << agent.log();
  admin_query(admin, "DROP TABLE \"" + schema + "\".canary");
  const double ok_at_drop = metric_or(agent, ok);
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, ok) > ok_at_drop + 5; }, 10s)) << agent.log();
  EXPECT_EQ(admin_query(admin, "SELECT to_regclass('\"" + schema + "\".canary') IS NOT NULL"), "t");
  const std::string seen = "ghostwatch_visibility_lag_seconds_count{probe=\"least\",target=\"replica-1\"}";
  const double seen_now = metric_or(agent, seen);
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, seen) > seen_now + 3; }, 10s)) << "replicas see the new table's canaries";
  agent.terminate(5s);
  admin_query(admin, "DROP SCHEMA \"" + schema + "\" CASCADE");
  std::remove(path.c_str());
}

TEST_F(LeastPrivilege, MariaDbWithExactlyTheGrantsInitGives) {
  const std::string user = "gw_least_" + suffix(), password = "Lm-" + suffix() + "-secret";
  const std::string admin = require_env("GW_MARIA_ADMIN_PRIMARY_DSN"), replica_admin = require_env("GW_MARIA_ADMIN_REPLICA_DSN");
  const std::string login = "mysql://" + user + ":" + password + "@";
  const std::string path = write_temp_file(agent_yaml() + R"(  - name: least
    kind: mysql
    database: )" + user + R"(
    primary: ")" + login + R"(${GW_MARIA_PRIMARY_ADDR}/"
    interval: 1200ms
    poll_interval: 5ms
    timeout: 10s
    targets:
      - name: replica
        dsn: ")" + login + R"(${GW_MARIA_REPLICA_ADDR}/"
)",
                                           ".yaml");
  const auto applied = run_command({ghostwatch_binary(), "init", "--config", path, "--apply", "--admin-dsn", admin}, 30s);
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  const auto grants = maria_admin_rows(admin, "SHOW GRANTS FOR '" + user + "'@'%'");
  ASSERT_EQ(grants.size(), 2u);
  EXPECT_EQ(grants[0].rfind("GRANT SLAVE MONITOR ON *.* TO `" + user + "`@`%`", 0), 0u) << grants[0];
  EXPECT_EQ(grants[1], "GRANT SELECT, INSERT, UPDATE ON `" + user + "`.`canary` TO `" + user + "`@`%`");
  ASSERT_TRUE(wait_for([&] { return maria_admin_query(replica_admin, "SELECT COUNT(*) FROM mysql.user WHERE user = '" + user + "'") == "1"; }, 15s))
      << "the account replicates";

  const auto status = maria_admin_rows(admin, "SHOW MASTER STATUS");
  ASSERT_EQ(status.size(), 1u);
  const std::string file = status[0].substr(0, status[0].find('\t'));
  const std::string position = status[0].substr(file.size() + 1, status[0].find('\t', file.size() + 1) - file.size() - 1);
  {
    Agent agent(path, free_port());
    const std::string seen = "ghostwatch_visibility_lag_seconds_count{probe=\"least\",target=\"replica\"}";
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, seen) > 2; }, 20s)) << agent.log();
    const std::string m = agent.metrics();
    EXPECT_EQ(metric_value(m, "ghostwatch_canary_writes_total{probe=\"least\",result=\"error\"}"), 0) << agent.log();
    EXPECT_EQ(metric_value(m, series("ghostwatch_target_up", "least", "replica")), 1);
    EXPECT_TRUE(metric_value(m, series("ghostwatch_reported_lag_seconds", "least", "replica"))) << "SLAVE MONITOR suffices";
    EXPECT_TRUE(metric_value(m, series("ghostwatch_replication_position_lag_transactions", "least", "replica")));

    maria_admin_query(admin, "DROP TABLE `" + user + "`.`canary`");
    const std::string hint = "is missing and this user cannot create it";
    ASSERT_TRUE(wait_for([&] { return agent.log().find(hint) != std::string::npos; }, 10s)) << agent.log();
    std::this_thread::sleep_for(3s);
    EXPECT_EQ(count_of(agent.log(), hint), 1u) << agent.log();
    ASSERT_EQ(run_command({ghostwatch_binary(), "init", "--config", path, "--apply", "--admin-dsn", admin}, 30s).exit_code, 0);
    const double seen_now = metric_or(agent, seen);
    EXPECT_TRUE(wait_for([&] { return metric_or(agent, seen) > seen_now + 1; }, 20s)) << agent.log();
  }
  // Every row change the agent's session logged touched the canary table and nothing else.
  const auto events = maria_admin_rows(admin, "SHOW BINLOG EVENTS IN '" + file + "' FROM " + position);
  int canary_events = 0;
  for (const std::string& e : events) {
    const bool row_event = e.find("\tTable_map\t") != std::string::npos;
    const bool dml = e.find("\tQuery\t") != std::string::npos && (e.find("INSERT") != std::string::npos ||
                                                                    e.find("UPDATE") != std::string::npos ||
                                                                    e.find("DELETE") != std::string::npos);
    if (!row_event && !dml) continue;
    if (e.find(user) != std::string::npos && e.find("canary") != std::string::npos) ++canary_events;
    else if (e.find("mysql.") == std::string::npos && e.find("`mysql`") == std::string::npos) ADD_FAILURE() << "a write elsewhere: " << e;
  }
  EXPECT_GT(canary_events, 2);
  maria_admin_query(admin, "DROP DATABASE `" + user + "`");
  maria_admin_query(admin, "DROP USER '" + user + "'@'%'");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ghostwatch::testing
