// Received vs visible against the sandbox's real replicas: an apply delay (recovery_min_apply_delay,
// MASTER_DELAY) shows as a small received lag beside the large visibility lag; paused replay (or
// a stopped SQL thread) lets every canary be received and none be seen; a WAL receiver cut off
// (or a stopped IO thread) stalls both.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;
using Stages = SandboxTest;

// A report's figure in ms, "-" where it is null (no sample).
std::string ms_or_dash(const nlohmann::json& seconds) { return seconds.is_null() ? "-" : ms(seconds.get<double>()); }

// `probe --canaries N --output json`, which exits 1 when canaries time out: the probe's targets.
nlohmann::json probe_targets(const std::string& yaml, int canaries) {
  const std::string config = write_temp_file(yaml, ".yaml");
  auto r = run_command({ghostwatch_binary(), "probe", "--config", config, "--canaries", std::to_string(canaries),
                        "--output", "json"},
                       90s);
  std::remove(config.c_str());
  if (r.exit_code != 0 && r.exit_code != 1) throw std::runtime_error("probe exited " + std::to_string(r.exit_code) + ": " + r.err);
  return nlohmann::json::parse(r.out).at("probes").at(0).at("targets");
}

std::string stages(const std::string& what, const nlohmann::json& t) {
  return what + ": received " + std::to_string(t.at("received_samples").get<int>()) + " (p50 " +
         ms_or_dash(t.at("received_p50_seconds")) + ", resolution " + ms_or_dash(t.at("received_resolution_seconds")) + "), visible " +
         std::to_string(t.at("samples").get<int>()) + " (p50 " + ms_or_dash(t.at("p50_seconds")) + ", resolution " +
         ms_or_dash(t.at("resolution_seconds")) + "), timeouts " + std::to_string(t.at("timeouts").get<int>());
}

TEST_F(Stages, PostgresApplyDelayIsReceivedAtOnceAndAppliedAfterTheDelay) {
  ASSERT_EQ(require_env("GW_PG_DELAY_MS"), "200");
  const nlohmann::json targets = probe_targets(agent_yaml() + pg_probe_yaml("250ms", "10s"), 20);
  const auto& fast = named(targets, "replica-1");
  const auto& delayed = named(targets, "replica-2");
  record_figure(stages("postgres, 20 canaries, replica-1", fast));
  record_figure(stages("postgres, 20 canaries, replica-2 (recovery_min_apply_delay 200ms)", delayed));
  ASSERT_EQ(delayed.at("received_samples"), 20);
  ASSERT_EQ(delayed.at("samples"), 20);
  EXPECT_LT(delayed.at("received_p50_seconds").get<double>(), 0.030) << "the WAL arrives at once";
  EXPECT_LT(delayed.at("received_p50_seconds").get<double>() - delayed.at("received_resolution_seconds").get<double>(), 0.008)
      << "near 0 within its resolution (the poll that missed it left just before it arrived)";
  EXPECT_GE(delayed.at("p50_seconds").get<double>(), kLeastApplyDelayLag) << "and is applied after the delay";
  EXPECT_LE(delayed.at("p50_seconds").get<double>(), 0.260);
  ASSERT_EQ(fast.at("received_samples"), 20);
  EXPECT_LE(fast.at("received_p50_seconds").get<double>(), fast.at("p50_seconds").get<double>());
}

TEST_F(Stages, PostgresPausedReplayReceivesEveryCanaryAndShowsNone) {
  ReplayPause paused(require_env("GW_PG_ADMIN_REPLICA1_DSN"));
  const nlohmann::json targets = probe_targets(agent_yaml() + pg_probe_yaml("200ms", "2s"), 6);
  paused.resume();
  const auto& t = named(targets, "replica-1");
  record_figure(stages("postgres, replay paused on replica-1, 6 canaries", t));
  EXPECT_EQ(t.at("received_samples"), 6) << "the WAL receiver keeps receiving";
  EXPECT_LT(t.at("received_p50_seconds").get<double>(), 0.030);
  EXPECT_EQ(t.at("samples"), 0) << "nothing is applied";
  EXPECT_EQ(t.at("timeouts"), 6);
  EXPECT_EQ(named(targets, "replica-2").at("samples"), 6) << "the other replica is unaffected";
}

TEST_F(Stages, PostgresWalReceiverCutOffStallsBoth) {
  WalReceiverCut cut(require_env("GW_PG_ADMIN_REPLICA1_DSN"));
  const nlohmann::json targets = probe_targets(agent_yaml() + pg_probe_yaml("200ms", "2s"), 6);
  cut.restore();
  const auto& t = named(targets, "replica-1");
  record_figure(stages("postgres, WAL receiver cut off on replica-1, 6 canaries", t));
  EXPECT_EQ(t.at("received_samples"), 0);
  EXPECT_TRUE(t.at("received_p50_seconds").is_null()) << "unknown, never 0";
  EXPECT_EQ(t.at("samples"), 0);
  EXPECT_EQ(t.at("timeouts"), 6);
  EXPECT_EQ(t.at("reachable"), true) << "the replica itself answers";
  EXPECT_EQ(named(targets, "replica-2").at("received_samples"), 6);
}

// The report's strategy comparison from one run over replica-1 (no delay) and replica-2 (200 ms).
TEST_F(Stages, TheReportComparesReadStrategiesFromTheMeasuredLags) {
  const std::string config = write_temp_file(agent_yaml() + pg_probe_yaml("250ms", "10s"), ".yaml");
  auto r = run_command({ghostwatch_binary(), "probe", "--config", config, "--canaries", "20", "--output", "json"}, 90s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json report = nlohmann::json::parse(r.out);
  const nlohmann::json& s = report.at("probes").at(0).at("strategies");
  ASSERT_FALSE(s.is_null()) << r.out;
  EXPECT_EQ(s.at("canaries"), 20);
  std::map<std::string, double> stale;
  for (const auto& d : s.at("replica").at("stale_share_by_delay")) stale[d.at("delay")] = d.at("stale_share");
  const auto& pin = s.at("pin_to_primary");
  const auto& wait = s.at("wait_for_position");
  char figure[400];
  std::snprintf(figure, sizeof figure,
                "strategies, 20 canaries, replica-1 and replica-2 (200 ms), reads at 0ms..1s: random replica stale %.1f%% "
                "(0ms %.0f%%, 10ms %.0f%%, 250ms %.0f%%); pin to primary %.1f ms: primary %.1f%%, stale %.1f%%; wait <= "
                "100 ms: %.1f%% wait (p50 %.1f ms), primary %.1f%%",
                s.at("replica").at("stale_share").get<double>() * 100, stale["0ms"] * 100, stale["10ms"] * 100,
                stale["250ms"] * 100, pin.at("window_seconds").get<double>() * 1e3,
                pin.at("primary_share").get<double>() * 100, pin.at("stale_share").get<double>() * 100,
                wait.at("wait_share").get<double>() * 100, wait.at("wait_p50_seconds").get<double>() * 1e3,
                wait.at("primary_share").get<double>() * 100);
  record_figure(figure);
  EXPECT_DOUBLE_EQ(stale["0ms"], 1.0) << "no replica shows a write at once";
  EXPECT_DOUBLE_EQ(stale["100ms"], 0.5) << "replica-2 only";
  EXPECT_DOUBLE_EQ(stale["250ms"], 0.0);
  EXPECT_GE(pin.at("window_seconds").get<double>(), kLeastApplyDelayLag);
  EXPECT_LE(pin.at("window_seconds").get<double>(), 0.260);
  EXPECT_NEAR(pin.at("primary_share").get<double>(), 4.0 / 6, 1e-6) << "0ms, 10ms, 50ms and 100ms fall in the window";
  EXPECT_EQ(wait.at("primary_share"), 0.0) << "replica-1 always has it within the 100 ms budget";
  EXPECT_LE(wait.at("wait_share").get<double>(), 2.0 / 6) << "only reads at 0ms (and perhaps 10ms) wait";
  std::remove(config.c_str());
}

// Canaries further apart than MASTER_DELAY, so that each is applied after the whole delay.
TEST_F(Stages, MariadbMasterDelayIsReceivedAtOnceAndAppliedAfterTheDelay) {
  ASSERT_EQ(require_env("GW_MARIA_DELAY_S"), "1");
  ASSERT_NO_FATAL_FAILURE(require_master_delay());
  const nlohmann::json targets = probe_targets(agent_yaml() + maria_probe_yaml("1200ms", "10s"), 4);
  const auto& t = named(targets, "replica");
  record_figure(stages("mariadb, MASTER_DELAY=1, 4 canaries", t));
  ASSERT_EQ(t.at("received_samples"), 4);
  ASSERT_EQ(t.at("samples"), 4);
  EXPECT_LT(t.at("received_p50_seconds").get<double>(), 0.030) << "the IO thread receives at once";
  EXPECT_GE(t.at("p50_seconds").get<double>(), 0.95);
}

TEST_F(Stages, MariadbStoppedSqlThreadReceivesEveryCanaryAndShowsNone) {
  StoppedReplicaThread stopped("SQL_THREAD");
  const nlohmann::json targets = probe_targets(agent_yaml() + maria_probe_yaml("200ms", "2s"), 6);
  stopped.start();
  const auto& t = named(targets, "replica");
  record_figure(stages("mariadb, SQL thread stopped, 6 canaries", t));
  EXPECT_EQ(t.at("received_samples"), 6);
  EXPECT_LT(t.at("received_p50_seconds").get<double>(), 0.030);
  EXPECT_EQ(t.at("samples"), 0);
  EXPECT_EQ(t.at("timeouts"), 6);
}

TEST_F(Stages, MariadbStoppedIoThreadStallsBoth) {
  StoppedReplicaThread stopped("IO_THREAD");
  const nlohmann::json targets = probe_targets(agent_yaml() + maria_probe_yaml("200ms", "2s"), 6);
  stopped.start();
  const auto& t = named(targets, "replica");
  record_figure(stages("mariadb, IO thread stopped, 6 canaries", t));
  EXPECT_EQ(t.at("received_samples"), 0);
  EXPECT_TRUE(t.at("received_p50_seconds").is_null());
  EXPECT_EQ(t.at("samples"), 0);
  EXPECT_EQ(t.at("timeouts"), 6);
}

}  // namespace
}  // namespace ghostwatch::testing
