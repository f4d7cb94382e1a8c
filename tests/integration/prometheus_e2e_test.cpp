// End to end with a real Prometheus (started by the sandbox, scraping the agent at
// GW_AGENT_ADDR every second, with alerts/ghostwatch.rules.yml loaded): every query of every
// dashboard panel returns data, and pausing replay on a replica drives the stalled alert to
// pending or firing, and it clears after resuming.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;
using WithPrometheus = SandboxTest;

nlohmann::json prometheus_get(const std::string& path_and_query) {
  return ghostwatch::testing::prometheus_get(require_env("GW_PROMETHEUS_URL"), path_and_query);
}

bool has_data(const std::string& expr) { return !prometheus_query(require_env("GW_PROMETHEUS_URL"), expr).empty(); }

// The state of the stalled alert for `target` ("" when absent).
std::string stalled_state(const std::string& target) {
  const auto r = prometheus_get("/api/v1/alerts");
  if (r.is_discarded()) return "";
  for (const auto& a : r.at("data").at("alerts")) {
    if (a.at("labels").value("alertname", "") == "GhostwatchReplicationStalled" &&
        a.at("labels").value("target", "") == target) {
      return a.at("state");
    }
  }
  return "";
}

std::string e2e_config(const std::string& table, const std::string& key_prefix) {
  return agent_yaml() + R"(  - name: pg
    kind: postgres
    primary: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
    interval: 200ms
    poll_interval: 10ms
    timeout: 10s
    targets:
      - name: replica-1
        dsn: "${GW_PG_REPLICA1_DSN} password=${GW_PG_PASSWORD}"
      - name: replica-2
        dsn: "${GW_PG_REPLICA2_DSN} password=${GW_PG_PASSWORD}"
    read_paths:
      - name: haproxy
        dsn: "${GW_PG_HAPROXY_DSN} password=${GW_PG_PASSWORD}"
    read_delays: [0ms, 1s]
    discovery:  # listing nothing: its source's series are there for the alert rules' checks
      dsn_template: "host={host} port={port} dbname=app user=ghostwatch"
      file: {path: )" + write_temp_file("[]\n", ".yaml") + R"(, interval: 1s}
)" + maria_probe_yaml("500ms", "10s") + R"(  - name: users-cache
    kind: reconcile
    cache:
      redis: "${GW_REDIS_ADDR}"
      key: ")" + key_prefix + R"({id}"
    source:
      probe: pg
      table: )" + table + R"(
      id_column: id
      version_column: version
    grace: 0ms
    every: 2s
)";
}

TEST_F(WithPrometheus, EveryDashboardQueryHasDataAndTheStalledAlertFiresAndClears) {
  const std::string table = "e2e_users_" + std::to_string(getpid());
  const std::string primary = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  admin_query(primary, "DROP TABLE IF EXISTS " + table);
  admin_query(primary, "CREATE TABLE " + table + " (id int PRIMARY KEY, version bigint NOT NULL)");
  admin_query(primary, "INSERT INTO " + table + " SELECT g, 1 FROM generate_series(1, 10) g");
  admin_query(primary, "GRANT SELECT ON " + table + " TO ghostwatch");
  const std::string config = write_temp_file(e2e_config(table, "e2e" + std::to_string(getpid()) + ":"), ".yaml");
  const std::string addr = require_env("GW_AGENT_ADDR");
  Agent agent(config, std::stoi(addr.substr(addr.rfind(':') + 1)));
  ASSERT_TRUE(agent.alive()) << agent.log();
  ASSERT_TRUE(wait_for([] { return has_data("ghostwatch:visibility_lag_seconds:p99_5m"); }, 60s))
      << "Prometheus never had the recording rule's data";
  ASSERT_TRUE(wait_for([] { return has_data("ghostwatch_cache_consistency_ratio"); }, 30s));
  ASSERT_TRUE(wait_for([] { return has_data("ghostwatch:stale_read_ratio:rate5m"); }, 30s));
  // The default SLO's budget is evaluated once a minute.
  ASSERT_TRUE(wait_for([] { return has_data("ghostwatch:slo_error_budget_remaining:ratio"); }, 90s));

  const auto dashboard = dashboard_json();
  const int queries = expect_every_panel_query_has_data(require_env("GW_PROMETHEUS_URL"));
  EXPECT_GT(queries, 20);
  // Every raw metric a panel names is in the agent's /metrics (recorded ones are in Prometheus).
  const std::string metrics = agent.metrics();
  static const std::regex metric("ghostwatch_[A-Za-z0-9_]*");
  for (const auto& panel : dashboard.at("panels")) {
    for (const auto& t : panel.at("targets")) {
      const std::string expr = t.at("expr");
      for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) {
        EXPECT_NE(metrics.find("\n" + it->str()), std::string::npos) << panel.at("title") << ": " << it->str();
      }
    }
  }
  // ... and so is every raw metric an alert or recording rule names.
  std::ifstream rules_file(std::string(GHOSTWATCH_SOURCE_DIR) + "/alerts/ghostwatch.rules.yml");
  const std::string rules((std::istreambuf_iterator<char>(rules_file)), std::istreambuf_iterator<char>());
  for (std::sregex_iterator it(rules.begin(), rules.end(), metric), end; it != end; ++it) {
    EXPECT_NE(metrics.find("\n" + it->str()), std::string::npos) << "rules: " << it->str();
  }
  record_figure("Prometheus end to end: " + std::to_string(queries) + " dashboard queries over " +
                std::to_string(dashboard.at("panels").size()) + " panels all returned data");

  const auto paused_at = std::chrono::steady_clock::now();
  {
    ReplayPause pause(require_env("GW_PG_ADMIN_REPLICA1_DSN"));
    ASSERT_TRUE(wait_for([] { const auto s = stalled_state("replica-1"); return s == "pending" || s == "firing"; }, 90s))
        << "GhostwatchReplicationStalled never became pending";
    EXPECT_EQ(stalled_state("replica-2"), "") << "only the paused replica is stalled";
    record_figure("GhostwatchReplicationStalled pending " +
                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - paused_at).count()) +
                  " s after pg_wal_replay_pause() on replica-1");
  }
  EXPECT_TRUE(wait_for([] { return stalled_state("replica-1").empty(); }, 30s)) << "the alert did not clear after resuming";
  admin_query(primary, "DROP TABLE " + table);
  std::remove(config.c_str());
}

}  // namespace
}  // namespace ghostwatch::testing
