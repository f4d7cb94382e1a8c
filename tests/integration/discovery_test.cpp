// Discovery against the sandbox's real servers: a file of targets that changes while the agent
// runs (a replica added, one removed, one listed but down, the file broken), and from_primary on
// PostgreSQL (pg_stat_replication, with and without pg_monitor) and MariaDB (SHOW REPLICA HOSTS,
// report_host).
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;
using Discovery = SandboxTest;
using Clock = std::chrono::steady_clock;

std::string password_file(const std::string& password) { return write_temp_file(password + "\n", ".pw"); }

void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".new";
  std::ofstream(tmp) << text;
  std::rename(tmp.c_str(), path.c_str());  // as tooling that writes target files does: never half a file
}

std::string target_line(const std::string& name, const std::string& port) {
  return "- {name: " + name + ", host: 127.0.0.1, port: " + port + "}\n";
}

bool has_series_of(const Agent& agent, const std::string& target) {
  return agent.metrics().find("target=\"" + target + "\"") != std::string::npos;
}

TEST_F(Discovery, TheFileSourceAddsAndRemovesRealReplicasWhileTheAgentRuns) {
  const std::string p1 = dsn_port(require_env("GW_PG_REPLICA1_DSN")), p2 = dsn_port(require_env("GW_PG_REPLICA2_DSN"));
  const std::string targets = write_temp_file(target_line("replica-1", p1), ".yaml");
  const std::string pw = password_file(require_env("GW_PG_PASSWORD"));
  const std::string config = write_temp_file(agent_yaml() + R"(  - name: disc
    kind: postgres
    primary: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
    interval: 200ms
    timeout: 5s
    connect_timeout: 1s
    query_timeout: 1s
    discovery:
      dsn_template: "host={host} port={port} dbname=app user=ghostwatch connect_timeout=1"
      password_file: )" + pw + R"(
      remove_after: 2
      file: {path: )" + targets + R"(, interval: 500ms}
)", ".yaml");
  Agent agent(config, free_port());
  const std::string count1 = series("ghostwatch_visibility_lag_seconds_count", "disc", "replica-1");
  const std::string count2 = series("ghostwatch_visibility_lag_seconds_count", "disc", "replica-2");
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, count1) >= 3; }, 20s)) << agent.log();

  // Added: replica-2 and a member nothing listens for (down, but listed: it stays).
  write_file(targets, target_line("replica-1", p1) + target_line("replica-2", p2) + target_line("ghost", "1"));
  const auto added = Clock::now();
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, count2) >= 1; }, 10s)) << agent.log();
  const double join_s = seconds_since(added);
  EXPECT_LT(join_s, 3.0) << "a round (0.5 s) and a canary (0.2 s) away";
  EXPECT_EQ(metric_or(agent, "ghostwatch_target_role{probe=\"disc\",role=\"replica\",target=\"replica-2\"}"), 1);
  EXPECT_EQ(metric_or(agent, "ghostwatch_discovery_targets{probe=\"disc\",source=\"file\"}"), 3);
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, series("ghostwatch_target_up", "disc", "ghost")) == 0; }, 10s));
  const std::string page = http_request(agent.port(), "GET", "/").body;
  EXPECT_NE(page.find("data-target=\"replica-2\""), std::string::npos);
  EXPECT_NE(page.find("<td class=\"role\">replica</td><td class=\"source\">file</td>"), std::string::npos) << page;

  // Removed: replica-1 leaves after remove_after (2) rounds; replica-2 keeps counting; the
  // member that is down stays while it is listed.
  const double kept_before = metric_or(agent, count2);
  write_file(targets, target_line("replica-2", p2) + target_line("ghost", "1"));
  const auto removed = Clock::now();
  ASSERT_TRUE(wait_for([&] { return !has_series_of(agent, "replica-1"); }, 10s)) << agent.log();
  const double leave_s = seconds_since(removed);
  EXPECT_GE(leave_s, 0.4) << "not at the first round that misses it";
  EXPECT_TRUE(has_series_of(agent, "ghost")) << "an outage is not a removal";
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, count2) >= kept_before + 5; }, 10s)) << "its series went on";

  // A file that does not parse: the last good set stays, the errors are counted.
  write_file(targets, "- {name: replica-2, host: 127.0.0.1\n");
  const std::string errors = "ghostwatch_discovery_errors_total{probe=\"disc\",source=\"file\"}";
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, errors) >= 3; }, 10s)) << agent.log();
  EXPECT_TRUE(has_series_of(agent, "replica-2"));
  EXPECT_TRUE(has_series_of(agent, "ghost"));
  EXPECT_EQ(metric_or(agent, "ghostwatch_discovery_targets{probe=\"disc\",source=\"file\"}"), 2);
  const std::string log = agent.log();
  EXPECT_NE(log.find("discovery source file failed"), std::string::npos) << log;
  std::size_t warnings = 0;
  for (auto at = log.find("discovery source file failed"); at != std::string::npos;
       at = log.find("discovery source file failed", at + 1)) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 1u) << "once per outage";
  record_figure("discovery file source: replica-2 added -> first sample " + fixed(join_s) +
                " s (rounds of 0.5 s, canaries every 0.2 s); replica-1 removed -> its series left /metrics " +
                fixed(leave_s) + " s later (remove_after 2); a member listed but down stayed (target_up 0)");
  agent.terminate(5s);
}

// A login role with what from_primary needs on PostgreSQL (pg_monitor) and what a probe needs.
void pg_discovery_role(const std::string& name, const std::string& password, bool monitor) {
  const std::string admin = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  admin_query(admin, "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '" + name +
                         "') THEN CREATE ROLE " + name + " LOGIN; END IF; END$$; ALTER ROLE " + name + " PASSWORD '" +
                         password + "'; GRANT CONNECT, CREATE ON DATABASE app TO " + name + "; " +
                         (monitor ? "GRANT" : "REVOKE") + " pg_monitor " + (monitor ? "TO " : "FROM ") + name);
}

std::string pg_from_primary_probe(const std::string& user, const std::string& pw_file, const std::string& schema) {
  const std::string p1 = dsn_port(require_env("GW_PG_REPLICA1_DSN")), p2 = dsn_port(require_env("GW_PG_REPLICA2_DSN"));
  return R"(  - name: fp
    kind: postgres
    schema: )" + schema + R"(
    primary: {dsn: "host=127.0.0.1 port=)" + dsn_port(require_env("GW_PG_PRIMARY_DSN")) + " dbname=app user=" + user +
         R"( connect_timeout=1", password_file: )" + pw_file + R"(}
    interval: 200ms
    timeout: 5s
    connect_timeout: 1s
    query_timeout: 1s
    discovery:
      dsn_template: "host={host} port={port} dbname=app user=)" + user + R"( connect_timeout=1"
      password_file: )" + pw_file + R"(
      from_primary: {interval: 500ms, ports: {pg-replica-1: )" + p1 + ", pg-replica-2: " + p2 + R"(}}
)";
}

TEST_F(Discovery, FromPrimaryFindsThePostgresReplicasByTheirApplicationName) {
  const std::string password = "disc-" + std::to_string(getpid());
  pg_discovery_role("gw_discover", password, /*monitor=*/true);
  const std::string pw = password_file(password);
  const std::string config = write_temp_file(agent_yaml() + pg_from_primary_probe("gw_discover", pw, "gw_discover"), ".yaml");
  Agent agent(config, free_port());
  // pg-replica-1 is the sandbox primary's synchronous standby: pg_stat_replication says "sync".
  for (const auto& [replica, role] : {std::pair{"pg-replica-1", "sync_standby"}, std::pair{"pg-replica-2", "replica"}}) {
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, series("ghostwatch_visibility_lag_seconds_count", "fp", replica)) >= 3; },
                         20s))
        << replica << "\n" << agent.log();
    EXPECT_EQ(metric_or(agent, "ghostwatch_target_role{probe=\"fp\",role=\"" + std::string(role) + "\",target=\"" +
                                   std::string(replica) + "\"}"),
              1)
        << agent.metrics();
  }
  EXPECT_EQ(metric_or(agent, "ghostwatch_discovery_targets{probe=\"fp\",source=\"from_primary\"}"), 2);
  const std::string log = agent.log();
  EXPECT_EQ(log.find(password), std::string::npos) << "the password never shows";
  agent.terminate(5s);

  // The report of a one-shot run names each target's source and role.
  const auto report = run_command({ghostwatch_binary(), "probe", "--config", config, "--canaries", "3", "--output", "json"}, 60s);
  ASSERT_EQ(report.exit_code, 0) << report.out << report.err;
  const auto json = nlohmann::json::parse(report.out);
  const auto& t = report_target(json, "fp", "pg-replica-2");
  EXPECT_EQ(t.at("source"), "from_primary");
  EXPECT_EQ(t.at("role"), "replica");
  EXPECT_EQ(t.at("samples"), 3) << "the one-shot run started with the discovered targets";
}

TEST_F(Discovery, FromPrimaryWithoutPgMonitorSaysWhatIsMissing) {
  const std::string password = "nodisc-" + std::to_string(getpid());
  pg_discovery_role("gw_nomonitor", password, /*monitor=*/false);
  const std::string pw = password_file(password);
  const std::string config = write_temp_file(agent_yaml() + pg_from_primary_probe("gw_nomonitor", pw, "gw_nomonitor"), ".yaml");
  Agent agent(config, free_port());
  const std::string errors = "ghostwatch_discovery_errors_total{probe=\"fp\",source=\"from_primary\"}";
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, errors) >= 2; }, 20s)) << agent.log();
  EXPECT_NE(agent.log().find("grant it pg_monitor"), std::string::npos) << agent.log();
  EXPECT_FALSE(has_series_of(agent, "pg-replica-1"));
  agent.terminate(5s);
}

TEST_F(Discovery, FromPrimaryFindsTheMariadbReplicaByItsReportHost) {
  const std::string admin = require_env("GW_MARIA_ADMIN_PRIMARY_DSN");
  const std::string password = "mdisc" + std::to_string(getpid());
  const std::string user = "'gw_discover'@'127.0.0.1'";
  for (const std::string& sql : {"CREATE USER IF NOT EXISTS " + user + " IDENTIFIED BY '" + password + "'",
                                 "ALTER USER " + user + " IDENTIFIED BY '" + password + "'",
                                 "GRANT SELECT, INSERT, UPDATE, CREATE ON `gw_discover`.* TO " + user,
                                 "GRANT SLAVE MONITOR, REPLICATION MASTER ADMIN ON *.* TO " + user}) {
    maria_admin_query(admin, sql);
  }
  ASSERT_FALSE(HasFailure());
  const std::string pw = password_file(password);
  const std::string replica = require_env("GW_MARIA_REPLICA_ADDR");  // 127.0.0.1:port, as report_host/port say
  const std::string config = write_temp_file(agent_yaml() + R"(  - name: mfp
    kind: mysql
    database: gw_discover
    primary: {dsn: "mysql://gw_discover@${GW_MARIA_PRIMARY_ADDR}/", password_file: )" + pw + R"(}
    interval: 250ms
    timeout: 10s
    connect_timeout: 1s
    query_timeout: 1s
    discovery:
      dsn_template: "mysql://gw_discover@{host}:{port}/"
      password_file: )" + pw + R"(
      from_primary: {interval: 500ms}
)", ".yaml");
  Agent agent(config, free_port());
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, series("ghostwatch_visibility_lag_seconds_count", "mfp", replica)) >= 2; },
                       30s))
      << agent.log();
  EXPECT_EQ(metric_or(agent, "ghostwatch_target_role{probe=\"mfp\",role=\"replica\",target=\"" + replica + "\"}"), 1);
  EXPECT_EQ(metric_or(agent, "ghostwatch_discovery_targets{probe=\"mfp\",source=\"from_primary\"}"), 1);
  EXPECT_EQ(agent.log().find(password), std::string::npos);
  agent.terminate(5s);
}

}  // namespace
}  // namespace ghostwatch::testing
