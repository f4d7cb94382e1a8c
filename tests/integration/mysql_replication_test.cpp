// Integration tests of the mysql probe against the sandbox's MariaDB primary and replica
// (scripts/sandbox.sh up --maria-delay-s 1): MASTER_DELAY, a stopped SQL thread and a stopped
// replica server, in one agent beside the postgres probe.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;
using MariaSandbox = SandboxTest;

std::string maria(const std::string& name) { return series(name, "maria", "replica"); }


// The least lag that MASTER_DELAY=1 may show. The delay counts from the event's timestamp, taken
// when the statement started on the primary; the lag counts from the agent's ack, one round trip
// later. So a canary can appear a little under 1 s after its ack (an ASan run: p50 999.6 ms).
constexpr double kLeastMasterDelayLag = 0.98;

// Canaries further apart than MASTER_DELAY: MariaDB then applies each after exactly the delay.
// (Closer ones are applied in batches earlier: docs/concepts/measurement.md, "Delayed
// replicas".)
TEST_F(MariaSandbox, OneProbeRunMeasuresMasterDelayAndThePostgresReplicasSideBySide) {
  ASSERT_EQ(require_env("GW_MARIA_DELAY_S"), "1") << "start the sandbox with --maria-delay-s 1";
  ASSERT_EQ(require_env("GW_PG_DELAY_MS"), "200");
  ASSERT_NO_FATAL_FAILURE(require_master_delay());
  const std::string config =
      write_temp_file(agent_yaml() + pg_probe_yaml("1200ms", "10s") + maria_probe_yaml("1200ms", "10s"), ".yaml");
  auto r = run_command({ghostwatch_binary(), "probe", "--config", config, "--canaries", "8", "--output", "json"}, 90s);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto report = nlohmann::json::parse(r.out);
  const auto& replica = report_target(report, "maria", "replica");
  const auto& pg2 = report_target(report, "pg", "replica-2");
  EXPECT_EQ(replica.at("samples"), 8);
  EXPECT_EQ(pg2.at("samples"), 8);
  const double p50 = replica.at("p50_seconds");
  record_figure("mysql probe, MASTER_DELAY=1, 8 canaries 1.2 s apart: p50 " + ms(p50) + ", max " +
                ms(replica.at("max_seconds")) + ", resolution " + ms(replica.at("resolution_seconds")) +
                "; postgres replica-2 in the same run: p50 " + ms(pg2.at("p50_seconds")));
  EXPECT_GE(p50, kLeastMasterDelayLag);
  EXPECT_LE(p50, 1.05);
  EXPECT_GE(pg2.at("p50_seconds").get<double>(), kLeastApplyDelayLag);
  EXPECT_LE(pg2.at("p50_seconds").get<double>(), 0.260);
  std::remove(config.c_str());
}

// A target that takes writes itself (here: the primary listed as a target, as after a failover)
// is shown as the primary in the gauge and the report, so its lag of 0 is not read as a healthy
// replica; the real replica is shown as one.
TEST_F(MariaSandbox, ATargetThatIsThePrimaryIsShownAsSuch) {
  const std::string config = write_temp_file(agent_yaml() + maria_probe_yaml("200ms", "10s") +
                                                 R"(      - name: itself
        dsn: "mysql://ghostwatch:${GW_MARIA_PASSWORD}@${GW_MARIA_PRIMARY_ADDR}/"
)",
                                             ".yaml");
  Agent agent(config, free_port());
  const std::string primary = role_series("maria", "itself", "primary");
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, primary, -1) == 1; }, 10s)) << agent.metrics() << agent.log();
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, role_series("maria", "replica", "replica")) == 1; }, 10s));
  auto r = run_command({ghostwatch_binary(), "probe", "--config", config, "--canaries", "2", "--output", "json"}, 60s);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report_target(report, "maria", "itself").at("role"), "primary") << r.out;
  EXPECT_EQ(report_target(report, "maria", "replica").at("role"), "replica") << r.out;
  std::remove(config.c_str());
}

// wait: server beside 1 ms polling, on the same delayed replica in one run: MASTER_GTID_WAIT
// answers the moment the replica applies each canary, so the resolution is one round trip.
TEST_F(MariaSandbox, ServerSideWaitsBesideOneMillisecondPolling) {
  ASSERT_EQ(require_env("GW_MARIA_DELAY_S"), "1");
  ASSERT_NO_FATAL_FAILURE(require_master_delay());
  auto probe = [](const std::string& name, const std::string& mode) {
    std::string yaml = maria_probe_yaml("1200ms", "10s");
    yaml.replace(yaml.find("name: maria"), 11, "name: " + name);
    yaml.replace(yaml.find("poll_interval: 5ms"), 18, "poll_interval: 1ms\n    wait: " + mode);
    return yaml;
  };
  const std::string config = write_temp_file(agent_yaml() + probe("polled", "poll") + probe("waited", "server"), ".yaml");
  auto r = run_command({ghostwatch_binary(), "probe", "--config", config, "--canaries", "6", "--output", "json"}, 90s);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto report = nlohmann::json::parse(r.out);
  const auto& polled = report_target(report, "polled", "replica");
  const auto& waited = report_target(report, "waited", "replica");
  ASSERT_EQ(polled.at("samples"), 6);
  ASSERT_EQ(waited.at("samples"), 6);
  const double resolution = waited.at("resolution_seconds"), p50 = waited.at("p50_seconds");
  char figure[320];
  std::snprintf(figure, sizeof figure,
                "MASTER_DELAY=1, 6 canaries: wait: server p50 %.2f ms, resolution %.3f ms, %.1f polls per canary; "
                "1 ms polling p50 %.2f ms, resolution %.3f ms, %.1f polls per canary",
                p50 * 1e3, resolution * 1e3, waited.at("polls_per_canary").get<double>(),
                polled.at("p50_seconds").get<double>() * 1e3, polled.at("resolution_seconds").get<double>() * 1e3,
                polled.at("polls_per_canary").get<double>());
  record_figure(figure);
  EXPECT_LE(resolution, 0.0005);
  // Two probes' canaries share the replica's delayed SQL thread, which sleeps in whole seconds
  // per event group: runs have applied them 3-313 ms later than the delay (see
  // docs/concepts/measurement.md, "Delayed replicas"), for both modes alike, so the bound is the
  // delay's next whole second.
  EXPECT_GE(p50, kLeastMasterDelayLag);
  EXPECT_LT(p50, 2.0);
  EXPECT_LE(waited.at("polls_per_canary").get<double>(), 3);
  // The two agree to within the polling's resolution.
  EXPECT_NEAR(polled.at("p50_seconds").get<double>(), p50, 0.005);
  std::remove(config.c_str());
}

TEST_F(MariaSandbox, ReportedLagBesideMeasuredLagDuringAWriteBurst) {
  const std::string config = write_temp_file(agent_yaml() + maria_probe_yaml("50ms", "10s"), ".yaml");
  auto r = run_command({ghostwatch_binary(), "probe", "--config", config, "--duration", "6s", "--output", "json"}, 90s);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto report = nlohmann::json::parse(r.out);
  const auto& replica = report_target(report, "maria", "replica");
  ASSERT_TRUE(replica.contains("reported_lag")) << replica.dump();
  const auto& reported = replica.at("reported_lag");
  record_figure("mysql probe, MASTER_DELAY=1, a canary every 50 ms for 6 s: measured p50 " +
                ms(replica.at("p50_seconds")) + ", p99 " + ms(replica.at("p99_seconds")) +
                "; Seconds_Behind_Master p50 " + ms(reported.at("p50_seconds")) + ", max " +
                ms(reported.at("max_seconds")) + " (" + std::to_string(reported.at("samples").get<int>()) +
                " readings)");
  // Read about once a second. MariaDB's own figure is whole seconds and, during MASTER_DELAY
  // waits, reads 0 or 1 depending on what the SQL thread applied before (seen: 0 throughout a
  // run while every canary took 0.6-1.4 s), which is why it is shown beside, never instead.
  EXPECT_GE(reported.at("samples").get<int>(), 5);
  EXPECT_LE(reported.at("max_seconds").get<double>(), 2.0);
  EXPECT_GT(replica.at("samples").get<int>(), 50);
  std::remove(config.c_str());
}

TEST_F(MariaSandbox, StoppedSqlThreadGrowsPendingCountsTimeoutsAndRecovers) {
  MasterDelay no_delay("0");  // so that "caught up" means pending 0, not "1 s behind"
  const std::string config = write_temp_file(agent_yaml() + maria_probe_yaml("100ms", "3s"), ".yaml");
  Agent agent(config, free_port());
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, maria("ghostwatch_visibility_lag_seconds_count")) > 0; }, 15s))
      << agent.log();
  {
    StoppedReplicaThread stopped("SQL_THREAD");
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, maria("ghostwatch_visibility_pending_seconds")) > 2.0; }, 15s));
    EXPECT_TRUE(wait_for([&] { return metric_or(agent, maria("ghostwatch_visibility_timeouts_total")) > 0; }, 10s))
        << "canaries older than the 3 s timeout must be counted";
    EXPECT_GT(metric_or(agent, maria("ghostwatch_replication_position_lag_transactions")), 0);
    // Seconds_Behind_Master is NULL with the SQL thread stopped: the series must be absent, not 0.
    EXPECT_TRUE(wait_for([&] { return !metric_value(agent.metrics(), maria("ghostwatch_reported_lag_seconds")); }, 5s));
    EXPECT_EQ(metric_or(agent, maria("ghostwatch_target_up")), 1) << "a stopped SQL thread is not a down server";
    record_figure("STOP SLAVE SQL_THREAD: pending " + ms(metric_or(agent, maria("ghostwatch_visibility_pending_seconds"))) +
                  ", timeouts " + std::to_string(int(metric_or(agent, maria("ghostwatch_visibility_timeouts_total")))) +
                  ", position lag " +
                  std::to_string(int(metric_or(agent, maria("ghostwatch_replication_position_lag_transactions")))) +
                  " transactions");
  }
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, maria("ghostwatch_visibility_pending_seconds")) == 0; }, 15s))
      << "pending after START SLAVE: " << metric_or(agent, maria("ghostwatch_visibility_pending_seconds"));
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, maria("ghostwatch_replication_position_lag_transactions")) == 0; }, 15s));
  std::remove(config.c_str());
}

TEST_F(MariaSandbox, StoppedReplicaServerIsDownWhileThePostgresProbeKeepsMeasuring) {
  const std::string config =
      write_temp_file(agent_yaml() + pg_probe_yaml("100ms", "60s") + maria_probe_yaml("100ms", "60s"), ".yaml");
  Agent agent(config, free_port());
  const std::string pg_count = series("ghostwatch_visibility_lag_seconds_count", "pg", "replica-1");
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, maria("ghostwatch_target_up")) == 1; }, 15s)) << agent.log();
  {
    StoppedServer stopped("maria-replica");
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, maria("ghostwatch_target_up")) == 0; }, 15s)) << agent.log();
    const double pg_before = metric_or(agent, pg_count);
    EXPECT_TRUE(wait_for([&] { return metric_or(agent, pg_count) > pg_before + 5; }, 10s))
        << "the postgres probe must keep measuring";
    EXPECT_GT(metric_or(agent, maria("ghostwatch_poll_errors_total")), 0);
    EXPECT_TRUE(agent.alive());
  }
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, maria("ghostwatch_target_up")) == 1; }, 30s)) << agent.log();
  std::remove(config.c_str());
}

}  // namespace
}  // namespace ghostwatch::testing
