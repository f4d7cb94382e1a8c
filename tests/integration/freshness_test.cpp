// The freshness API and `ghostwatch wait` against the sandbox: a write on the primary, its
// position taken there, then asked about; replica-2 replays 200 ms late
// (recovery_min_apply_delay), replica-1 at once.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;
using Freshness = SandboxTest;
using Clock = std::chrono::steady_clock;

// A write on the primary (not a canary) and the WAL position right after its commit.
std::string write_and_take_position() {
  const std::string dsn = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  admin_query(dsn, "CREATE TABLE IF NOT EXISTS public.freshness_test (id serial PRIMARY KEY, at timestamptz)");
  // One round trip, the position taken after the COMMIT: inside the transaction it would not cover
  // the commit record, which is what an apply delay holds back.
  return admin_query(dsn, "BEGIN; INSERT INTO public.freshness_test (at) VALUES (now()); COMMIT; "
                          "SELECT pg_current_wal_lsn()::text");
}

nlohmann::json ask(int port, const std::string& query, int* status = nullptr) {
  const HttpResult r = http_request(port, "GET", "/v1/freshness?" + query);
  if (status) *status = r.status;
  return nlohmann::json::parse(r.body);
}

const nlohmann::json& target(const nlohmann::json& answer, const std::string& name) {
  for (const auto& t : answer.at("targets")) {
    if (t.at("target") == name) return t;
  }
  throw std::runtime_error("no target " + name + " in " + answer.dump());
}

double ms_since(Clock::time_point start) { return std::chrono::duration<double, std::milli>(Clock::now() - start).count(); }

TEST_F(Freshness, TheDelayedReplicaReachesAWritesPositionAfterItsDelay) {
  ASSERT_EQ(require_env("GW_PG_DELAY_MS"), "200");
  const std::string config = write_temp_file(agent_yaml() + pg_probe_yaml("250ms", "10s"), ".yaml");
  Agent agent(config, free_port());
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, series("ghostwatch_visibility_lag_seconds_count", "pg", "replica-2")) >= 3; },
                       20s))
      << agent.log();
  const std::string position = write_and_take_position();
  const Clock::time_point written = Clock::now();
  const nlohmann::json first = ask(agent.port(), "probe=pg&position=" + position);
  const double first_ms = ms_since(written);
  const auto& delayed = target(first, "replica-2");
  EXPECT_EQ(delayed.at("reached"), false) << first.dump();
  EXPECT_GT(delayed.at("expected_wait_seconds").get<double>(), 0.1) << "its recent lag is about 200 ms";
  EXPECT_LT(delayed.at("age_seconds").get<double>(), 1.5);
  // Asked again every 5 ms: each not-reached answer also has the replica polled at once.
  double reached_ms = -1;
  while (ms_since(written) < 3000) {
    if (target(ask(agent.port(), "probe=pg&position=" + position), "replica-2").at("reached") == true) {
      reached_ms = ms_since(written);
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  const bool fast_reached = target(ask(agent.port(), "probe=pg&position=" + position), "replica-1").at("reached");
  char figure[256];
  std::snprintf(figure, sizeof figure,
                "freshness: position %s written; replica-2 (200 ms apply delay) reached false at %.0f ms "
                "(expected wait %.0f ms), reached true at %.0f ms; replica-1 reached %s",
                position.c_str(), first_ms, delayed.at("expected_wait_seconds").get<double>() * 1e3, reached_ms,
                fast_reached ? "true" : "false");
  record_figure(figure);
  EXPECT_GE(reached_ms, 180) << "not before the apply delay";
  EXPECT_LE(reached_ms, 600) << "and soon after it";
  EXPECT_TRUE(fast_reached);

  int status = 0;
  const nlohmann::json bad = ask(agent.port(), "probe=pg&position=not-an-lsn", &status);
  EXPECT_EQ(status, 400);
  EXPECT_NE(bad.at("error").get<std::string>().find("LSN"), std::string::npos) << bad.dump();
  EXPECT_EQ((ask(agent.port(), "probe=nope&position=" + position, &status), status), 400);
  EXPECT_EQ((ask(agent.port(), "position=" + position, &status), status), 400);
  std::remove(config.c_str());
}

CommandResult wait_command(const std::string& config, const std::vector<std::string>& extra) {
  std::vector<std::string> argv{ghostwatch_binary(), "wait", "--config", config, "--probe", "pg"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run_command(argv, 30s);
}

TEST_F(Freshness, WaitReturnsOnceTheReplicaHasReplayedThePosition) {
  const std::string config = write_temp_file(agent_yaml() + pg_probe_yaml("1s", "10s"), ".yaml");
  const std::string position = write_and_take_position();
  const Clock::time_point start = Clock::now();
  const CommandResult r = wait_command(config, {"--position", position, "--target", "replica-2", "--timeout", "5s"});
  const double waited = ms_since(start);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("replica-2 has replayed " + position), std::string::npos) << r.err;
  EXPECT_GE(waited, 180) << "replica-2 replays 200 ms late";
  EXPECT_LE(waited, 2000);
  const Clock::time_point all = Clock::now();
  const CommandResult every = wait_command(config, {"--position", write_and_take_position(), "--timeout", "5s"});
  EXPECT_EQ(every.exit_code, 0) << every.err;
  char figure[200];
  std::snprintf(figure, sizeof figure, "ghostwatch wait: replica-2 after %.0f ms (process start included); every replica after %.0f ms",
                waited, ms_since(all));
  record_figure(figure);
  std::remove(config.c_str());
}

TEST_F(Freshness, WaitTimesOutWhileReplayIsPausedAndRefusesBadInput) {
  const std::string config = write_temp_file(agent_yaml() + pg_probe_yaml("1s", "10s"), ".yaml");
  {
    ReplayPause paused(require_env("GW_PG_ADMIN_REPLICA1_DSN"));
    const std::string position = write_and_take_position();
    const CommandResult r = wait_command(config, {"--position", position, "--target", "replica-1", "--timeout", "500ms"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("replica-1 has not replayed " + position + " within 500 ms"), std::string::npos) << r.err;
  }
  const CommandResult bad_position = wait_command(config, {"--position", "0/zz", "--timeout", "1s"});
  EXPECT_EQ(bad_position.exit_code, 2);
  EXPECT_NE(bad_position.err.find("not a position of a postgres probe"), std::string::npos) << bad_position.err;
  const CommandResult bad_target = wait_command(config, {"--position", "0/1", "--target", "replica-9"});
  EXPECT_EQ(bad_target.exit_code, 2);
  EXPECT_NE(bad_target.err.find("unknown target replica-9"), std::string::npos) << bad_target.err;
  const CommandResult bad_timeout = wait_command(config, {"--position", "0/1", "--timeout", "soon"});
  EXPECT_EQ(bad_timeout.exit_code, 2);
  EXPECT_EQ(bad_position.err.find(require_env("GW_PG_PASSWORD")), std::string::npos);
  std::remove(config.c_str());
}

}  // namespace
}  // namespace ghostwatch::testing
