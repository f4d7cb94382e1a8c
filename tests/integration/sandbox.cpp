#include "tests/integration/sandbox.h"

#include <unistd.h>

#include <cstdlib>

namespace ghostwatch::testing {

using namespace std::chrono_literals;

void SandboxTest::SetUp() {
  if (sandbox_available()) return;
  const char* require = std::getenv("GHOSTWATCH_REQUIRE_SANDBOX");
  if (require && std::string(require) == "1") FAIL() << "the sandbox env is not loaded but is required";
  GTEST_SKIP() << "sandbox not running (scripts/sandbox.sh up; source its env.sh)";
}

std::string agent_yaml() { return "agent:\n  id: it-" + std::to_string(getpid()) + "\nprobes:\n"; }

std::unique_ptr<ChildProcess> start_cache_pipeline(const std::string& binary, int delay_ms) {
  return std::make_unique<ChildProcess>(std::vector<std::string>{
      binary, require_env("GW_PG_PRIMARY_DSN") + " password=" + require_env("GW_PG_PASSWORD"),
      "it-" + std::to_string(getpid()), "pg", std::to_string(delay_ms), require_env("GW_REDIS_ADDR"),
      require_env("GW_MEMCACHED_ADDR")});
}

std::string pg_probe_yaml(const std::string& interval, const std::string& timeout, const std::string& extra_targets,
                          const std::string& query_timeout) {
  return R"(  - name: pg
    kind: postgres
    primary: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
    interval: )" + interval + R"(
    poll_interval: 10ms
    timeout: )" + timeout + R"(
    connect_timeout: 1s
    query_timeout: )" + query_timeout + R"(
    targets:
      - name: replica-1
        dsn: "${GW_PG_REPLICA1_DSN} password=${GW_PG_PASSWORD}"
      - name: replica-2
        dsn: "${GW_PG_REPLICA2_DSN} password=${GW_PG_PASSWORD}"
)" + extra_targets;
}

std::string maria_probe_yaml(const std::string& interval, const std::string& timeout) {
  return R"(  - name: maria
    kind: mysql
    primary: "mysql://ghostwatch:${GW_MARIA_PASSWORD}@${GW_MARIA_PRIMARY_ADDR}/"
    interval: )" + interval + R"(
    poll_interval: 5ms
    timeout: )" + timeout + R"(
    connect_timeout: 1s
    query_timeout: 1s
    targets:
      - name: replica
        dsn: "mysql://ghostwatch:${GW_MARIA_PASSWORD}@${GW_MARIA_REPLICA_ADDR}/"
)";
}

std::string series(const std::string& name, const std::string& probe, const std::string& target) {
  return name + "{probe=\"" + probe + "\",target=\"" + target + "\"}";
}

double metric_or(const Agent& agent, const std::string& s, double fallback) {
  return metric_value(agent.metrics(), s).value_or(fallback);
}

ReplayPause::ReplayPause(std::string admin_dsn) : dsn_(std::move(admin_dsn)) {
  admin_query(dsn_, "SELECT pg_wal_replay_pause()");
}
ReplayPause::~ReplayPause() { resume(); }
// Replay that resumes may cancel the very session that resumed it (a recovery conflict with
// its snapshot), so success is judged by pg_is_wal_replay_paused() afterwards.
void ReplayPause::resume() {
  if (!paused_) return;
  std::string state, error;
  for (int attempt = 0; attempt < 5; ++attempt) {
    try_admin_query(dsn_, "SELECT pg_wal_replay_resume()", nullptr, &error);
    if (try_admin_query(dsn_, "SELECT pg_is_wal_replay_paused()", &state, &error) && state == "f") break;
  }
  EXPECT_EQ(state, "f") << "replay did not resume: " << error;
  paused_ = false;
}

StoppedServer::StoppedServer(std::string name) : name_(std::move(name)) { sandbox("stop"); }
StoppedServer::~StoppedServer() { start(); }

void StoppedServer::start() {
  if (!stopped_) return;
  sandbox("start");
  stopped_ = false;
}

void StoppedServer::sandbox(const std::string& verb) {
  auto r = run_command({"/bin/bash", sandbox_script(), verb, name_}, 90s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace ghostwatch::testing
