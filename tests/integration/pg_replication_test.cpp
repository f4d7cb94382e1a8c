// Integration tests of the PostgreSQL replication probe against the real sandbox
// (scripts/sandbox.sh up --pg-delay-ms 200; env.sh sourced): lag injected with
// recovery_min_apply_delay, paused replay and a stopped replica, measured through the
// ghostwatch binary's report and /metrics.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;

std::string sandbox_config(const std::string& interval, const std::string& timeout,
                           const std::string& extra_target = "") {
  return agent_yaml() + pg_probe_yaml(interval, timeout, extra_target);
}

std::string pg_series(const std::string& name, const std::string& target) {
  return ghostwatch::testing::series(name, "pg", target);
}

using PgSandbox = SandboxTest;

// `probe --canaries N --output json` on a config file: the report's targets, replica-1 first.
nlohmann::json probe_targets(const std::string& config, int canaries) {
  auto r = run_command({ghostwatch_binary(), "probe", "--config", config, "--canaries", std::to_string(canaries),
                        "--output", "json"},
                       60s);
  if (r.exit_code != 0) throw std::runtime_error("probe exited " + std::to_string(r.exit_code) + ": " + r.out + r.err);
  nlohmann::json targets = nlohmann::json::parse(r.out).at("probes").at(0).at("targets");
  if (targets.at(0).at("name") != "replica-1" || targets.at(1).at("name") != "replica-2") {
    throw std::runtime_error("unexpected targets: " + targets.dump());
  }
  return targets;
}

TEST_F(PgSandbox, ProbeMeasuresTheApplyDelayOfEachReplica) {
  ASSERT_EQ(require_env("GW_PG_DELAY_MS"), "200") << "start the sandbox with --pg-delay-ms 200";
  const std::string config = write_temp_file(sandbox_config("250ms", "10s"), ".yaml");
  const nlohmann::json targets = probe_targets(config, 30);
  const auto& r1 = targets.at(0);
  const auto& r2 = targets.at(1);
  EXPECT_EQ(r1.at("samples"), 30);
  EXPECT_EQ(r2.at("samples"), 30);
  const double p50_r1 = r1.at("p50_seconds"), p50_r2 = r2.at("p50_seconds");
  char figure[256];
  std::snprintf(figure, sizeof figure,
                "postgres probe, 30 canaries: p50 replica-1 %.1f ms, replica-2 (200 ms apply delay) %.1f ms; "
                "p99 %.1f / %.1f ms; resolution %.1f / %.1f ms",
                p50_r1 * 1e3, p50_r2 * 1e3, r1.at("p99_seconds").get<double>() * 1e3,
              r2.at("p99_seconds").get<double>() * 1e3, r1.at("resolution_seconds").get<double>() * 1e3,
              r2.at("resolution_seconds").get<double>() * 1e3);
  record_figure(figure);
  EXPECT_GE(p50_r2, kLeastApplyDelayLag);
  EXPECT_LE(p50_r2, 0.260);
  EXPECT_LT(p50_r1, 0.050);
  EXPECT_EQ(r1.at("timeouts"), 0);
  EXPECT_EQ(r2.at("errors"), 0);
  std::remove(config.c_str());
}

// A reader polls every poll_interval only while a canary is outstanding on its target, so 1 ms
// resolution no longer costs 1000 polls per canary, and the delayed replica keeps its figures.
TEST_F(PgSandbox, PollsFastOnlyWhileACanaryIsOutstanding) {
  std::string yaml = sandbox_config("1s", "10s");
  yaml.replace(yaml.find("poll_interval: 10ms"), 19, "poll_interval: 1ms");
  const std::string config = write_temp_file(yaml, ".yaml");
  const nlohmann::json targets = probe_targets(config, 5);
  const auto& r1 = targets.at(0);
  const auto& r2 = targets.at(1);
  ASSERT_EQ(r1.at("samples"), 5);
  ASSERT_EQ(r2.at("samples"), 5);
  const double per_canary1 = r1.at("polls_per_canary"), per_canary2 = r2.at("polls_per_canary");
  char figure[256];
  std::snprintf(figure, sizeof figure,
                "interval 1s, poll_interval 1ms, 5 canaries: polls per canary replica-1 %.1f, replica-2 (200 ms "
                "behind) %.1f; replica-2 p50 %.1f ms, resolution %.2f ms",
                per_canary1, per_canary2, r2.at("p50_seconds").get<double>() * 1e3,
                r2.at("resolution_seconds").get<double>() * 1e3);
  record_figure(figure);
  EXPECT_LE(per_canary1, 20) << "polling all along would cost about 1000";
  // About one poll per millisecond while replica-2 is 200 ms behind, and no more.
  EXPECT_GE(per_canary2, 50);
  EXPECT_LE(per_canary2, 400);
  EXPECT_GE(r2.at("p50_seconds").get<double>(), kLeastApplyDelayLag);
  EXPECT_LE(r2.at("p50_seconds").get<double>(), 0.260);
  EXPECT_LE(r2.at("resolution_seconds").get<double>(), 0.005);
  std::remove(config.c_str());
}

TEST_F(PgSandbox, PausedReplayGrowsPendingWhileTheOtherReplicaIsMeasured) {
  const std::string config = write_temp_file(sandbox_config("100ms", "60s"), ".yaml");
  Agent agent(config, free_port());
  const auto lag_count_r2 = pg_series("ghostwatch_visibility_lag_seconds_count", "replica-2");
  const auto pending_r1 = pg_series("ghostwatch_visibility_pending_seconds", "replica-1");
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, lag_count_r2) > 0; }, 10s)) << agent.log();

  ReplayPause pause(require_env("GW_PG_ADMIN_REPLICA1_DSN"));
  const double r2_before = metric_or(agent, lag_count_r2);
  const auto paused_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, pending_r1) > 2.0; }, 15s))
      << "pending on replica-1: " << metric_or(agent, pending_r1);
  record_figure("paused replay on replica-1: pending gauge passed 2 s after " +
                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - paused_at).count()) +
                " ms; replica-2 lag samples meanwhile: " + std::to_string(int(metric_or(agent, lag_count_r2) - r2_before)));
  EXPECT_GT(metric_or(agent, lag_count_r2), r2_before + 5) << "replica-2 must still be measured";
  EXPECT_GT(metric_or(agent, pg_series("ghostwatch_replication_position_lag_bytes", "replica-1")), 0);
  EXPECT_EQ(metric_or(agent, pg_series("ghostwatch_target_up", "replica-1")), 1) << "paused is not down";

  pause.resume();
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, pending_r1) < 0.5; }, 10s))
      << "pending after resume: " << metric_or(agent, pending_r1);
  std::remove(config.c_str());
}

TEST_F(PgSandbox, StoppedReplicaIsDownWhileTheAgentKeepsServing) {
  const std::string config = write_temp_file(sandbox_config("100ms", "60s"), ".yaml");
  Agent agent(config, free_port());
  const auto up_r1 = pg_series("ghostwatch_target_up", "replica-1");
  const auto lag_count_r2 = pg_series("ghostwatch_visibility_lag_seconds_count", "replica-2");
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, up_r1) == 1; }, 10s)) << agent.log();
  {
    StoppedServer stopped("pg-replica-1");
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, up_r1) == 0; }, 15s)) << agent.log();
    const double r2_before = metric_or(agent, lag_count_r2);
    EXPECT_TRUE(wait_for([&] { return metric_or(agent, lag_count_r2) > r2_before + 5; }, 10s))
        << "replica-2 must still be measured while replica-1 is down";
    EXPECT_GT(metric_or(agent, pg_series("ghostwatch_poll_errors_total", "replica-1")), 0);
    EXPECT_TRUE(agent.alive());
    EXPECT_GT(metric_or(agent, "ghostwatch_canary_writes_total{probe=\"pg\",result=\"ok\"}"), 0);
  }
  // Back up: the reader reconnects with backoff.
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, up_r1) == 1; }, 20s)) << agent.log();
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, pg_series("ghostwatch_visibility_pending_seconds", "replica-1")) < 0.5; }, 20s));
  std::remove(config.c_str());
}

TEST_F(PgSandbox, StoppedPrimaryCountsWriteErrorsAndTheWriterReconnects) {
  const std::string config = write_temp_file(sandbox_config("100ms", "60s"), ".yaml");
  Agent agent(config, free_port());
  const std::string ok = "ghostwatch_canary_writes_total{probe=\"pg\",result=\"ok\"}";
  const std::string failed = "ghostwatch_canary_writes_total{probe=\"pg\",result=\"error\"}";
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, ok) > 0; }, 10s)) << agent.log();
  {
    StoppedServer stopped("pg-primary");
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, failed) > 0; }, 15s)) << agent.log();
    // Once the canaries acked before the stop have replayed, nothing is pending: an
    // unreachable primary is not replica lag.
    EXPECT_TRUE(wait_for([&] { return metric_or(agent, pg_series("ghostwatch_visibility_pending_seconds", "replica-2")) == 0; }, 5s));
    EXPECT_GT(metric_or(agent, failed), 1) << "the writer keeps retrying";
    EXPECT_TRUE(agent.alive());
  }
  const double ok_after_restart = metric_or(agent, ok);
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, ok) > ok_after_restart + 3; }, 20s)) << agent.log();
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, pg_series("ghostwatch_target_up", "replica-1")) == 1 &&
                                    metric_or(agent, pg_series("ghostwatch_visibility_pending_seconds", "replica-1")) < 0.5; },
                       20s));
  std::remove(config.c_str());
}

TEST_F(PgSandbox, SeqNeverGoesBackWhenTheCanaryRowIsDeleted) {
  const std::string config = write_temp_file(sandbox_config("100ms", "60s"), ".yaml");
  Agent agent(config, free_port());
  const std::string agent_id = "it-" + std::to_string(getpid());
  const std::string select_seq =
      "SELECT seq FROM ghostwatch.canary WHERE agent_id = '" + agent_id + "' AND probe = 'pg'";
  const std::string primary = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  ASSERT_TRUE(wait_for([&] { return !admin_query(primary, select_seq).empty(); }, 10s));
  const long before = std::stol(admin_query(primary, select_seq));
  admin_query(primary, "DELETE FROM ghostwatch.canary WHERE agent_id = '" + agent_id + "'");
  ASSERT_TRUE(wait_for([&] { return !admin_query(primary, select_seq).empty(); }, 10s));
  EXPECT_GT(std::stol(admin_query(primary, select_seq)), before);
  std::remove(config.c_str());
}

TEST_F(PgSandbox, MetricsPassPromtoolAndHoldTheDocumentedNames) {
  const std::string config = write_temp_file(sandbox_config("100ms", "60s"), ".yaml");
  Agent agent(config, free_port());
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, pg_series("ghostwatch_visibility_lag_seconds_count", "replica-2")) > 0; }, 10s));
  const std::string metrics = agent.metrics();
  for (const char* name :
       {"ghostwatch_canary_writes_total", "ghostwatch_canary_write_seconds_bucket", "ghostwatch_visibility_lag_seconds_bucket",
        "ghostwatch_visibility_pending_seconds", "ghostwatch_visibility_timeouts_total", "ghostwatch_target_up",
        "ghostwatch_poll_errors_total", "ghostwatch_replication_position_lag_bytes", "ghostwatch_build_info"}) {
    EXPECT_NE(metrics.find(std::string("\n") + name), std::string::npos) << name;
  }
  const std::string file = write_temp_file(metrics, ".prom");
  auto r = run_command({"/bin/sh", "-c", "promtool check metrics < " + file}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  std::remove(file.c_str());
  std::remove(config.c_str());
}

TEST_F(PgSandbox, SecretsAppearNowhere) {
  const std::string password = require_env("GW_PG_PASSWORD");
  const std::string wrong = "wrong-password-0xfeed";
  const std::string config = write_temp_file(
      sandbox_config("100ms", "2s", "      - name: bad-auth\n        dsn: \"${GW_PG_REPLICA1_DSN} password=" + wrong + "\"\n"),
      ".yaml");
  Agent agent(config, free_port());
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, pg_series("ghostwatch_poll_errors_total", "bad-auth")) > 0; }, 10s));
  const std::string metrics = agent.metrics();
  ASSERT_TRUE(agent.terminate(5s).has_value());
  const std::string log = agent.log();
  EXPECT_NE(log.find("bad-auth"), std::string::npos) << "the auth failure should be logged:\n" << log;
  for (const std::string& secret : {password, wrong}) {
    EXPECT_EQ(metrics.find(secret), std::string::npos);
    EXPECT_EQ(log.find(secret), std::string::npos) << log;
  }
  auto checked = run_command({ghostwatch_binary(), "check-config", "--config", config}, 10s);
  EXPECT_EQ(checked.exit_code, 0) << checked.err;
  EXPECT_EQ(checked.out.find(password), std::string::npos);
  EXPECT_EQ(checked.out.find(wrong), std::string::npos);
  auto probed = run_command({ghostwatch_binary(), "probe", "--config", config, "-n", "2", "-o", "json"}, 30s);
  EXPECT_EQ(probed.exit_code, 1) << "bad-auth is unreachable";
  EXPECT_EQ(probed.out.find(wrong), std::string::npos);
  EXPECT_EQ(probed.err.find(wrong), std::string::npos);
  std::remove(config.c_str());
}

TEST_F(PgSandbox, SigtermStopsTheAgentWithinTwoSeconds) {
  const std::string config = write_temp_file(
      sandbox_config("100ms", "60s", "      - name: blackhole\n        dsn: \"host=127.0.0.1 port=" +
                                         std::to_string(free_port()) + " dbname=app user=x\"\n"),
      ".yaml");
  Agent agent(config, free_port());
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, pg_series("ghostwatch_target_up", "replica-2")) == 1; }, 10s));
  const auto code = agent.terminate(2s);
  ASSERT_TRUE(code.has_value()) << "the agent did not stop within 2 s of SIGTERM";
  EXPECT_EQ(*code, 0);
  std::remove(config.c_str());
}

// Targets given by host name are looked up on the resolver's threads and then polled by the event
// loop like the others: 30 PostgreSQL targets and a Redis target by "localhost" cost no thread
// each (localhost may give ::1 first, where nothing listens: the next address is tried).
TEST_F(PgSandbox, TargetsByHostNameShareTheEventLoop) {
  std::string dsn = require_env("GW_PG_REPLICA2_DSN");
  dsn.replace(dsn.find("host=127.0.0.1"), 14, "host=localhost");
  const std::string redis = require_env("GW_REDIS_ADDR");
  std::string y = agent_yaml() + "  - name: pg\n    kind: postgres\n    primary: \"${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}\"\n"
                  "    interval: 200ms\n    poll_interval: 10ms\n    timeout: 30s\n    targets:\n"
                  "      - name: cache\n        redis: \"localhost:" + redis.substr(redis.rfind(':') + 1) +
                  "\"\n        key: \"by-name:{agent}:{probe}\"\n";  // absent: an answer all the same
  constexpr int kNamed = 30;
  for (int i = 1; i <= kNamed; ++i) {
    y += "      - name: n" + std::to_string(i) + "\n        dsn: \"" + dsn + " password=${GW_PG_PASSWORD}\"\n";
  }
  const std::string path = write_temp_file(y, ".yaml");
  Agent agent(path, free_port());
  const auto all_measured = [&] {
    const std::string m = agent.metrics();
    for (int i = 1; i <= kNamed; ++i) {
      if (metric_value(m, pg_series("ghostwatch_visibility_lag_seconds_count", "n" + std::to_string(i))).value_or(0) < 2) return false;
    }
    return metric_value(m, pg_series("ghostwatch_target_up", "cache")).value_or(0) == 1;
  };
  ASSERT_TRUE(wait_for(all_measured, 20s)) << agent.log();
  EXPECT_LE(agent.threads(), 16) << kNamed + 1 << " targets by name on the event loop, not a thread each";
  std::remove(path.c_str());
}

TEST_F(PgSandbox, ProbeExitsOneWhenATargetIsUnreachable) {
  const std::string config = write_temp_file(
      sandbox_config("100ms", "1s", "      - name: nowhere\n        dsn: \"host=127.0.0.1 port=" +
                                        std::to_string(free_port()) + " dbname=app user=x\"\n"),
      ".yaml");
  auto r = run_command({ghostwatch_binary(), "probe", "--config", config, "-n", "3", "-o", "json"}, 60s);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const auto report = nlohmann::json::parse(r.out);
  const auto& targets = report["probes"][0]["targets"];
  EXPECT_EQ(targets[0]["samples"], 3);
  EXPECT_EQ(targets[2]["name"], "nowhere");
  EXPECT_EQ(targets[2]["reachable"], false);
  EXPECT_EQ(targets[2]["timeouts"], 3);
  EXPECT_GT(targets[2]["errors"].get<int>(), 0);
  std::remove(config.c_str());
}

}  // namespace
}  // namespace ghostwatch::testing
