// The fault suite (ctest label faults): each case breaks something real in the sandbox while an
// agent runs, and asserts the figures the agent reports during the fault and after recovery,
// not just that it survived. Times to detect and to recover are recorded as figures.
#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <thread>

#include "tests/faults/fault_metrics.h"
#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class Faults : public SandboxTest {};

std::string pg_probe(const std::string& extra_targets = "", const std::string& query_timeout = "1s") {
  return agent_yaml() + pg_probe_yaml("100ms", "5s", extra_targets, query_timeout);
}


std::string postmaster_pid(const std::string& server) {
  std::ifstream in(require_env("GW_SANDBOX_DIR") + "/" + server + "/postmaster.pid");
  std::string pid;
  std::getline(in, pid);
  return pid;
}


TEST_F(Faults, AReplicaKilledWithSigkillIsDownThenRecovers) {
  const std::string path = write_temp_file(pg_probe(), ".yaml");
  Agent agent(path, free_port());
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, lag_count("replica-1")) > 5; }, 15s)) << agent.log();
  const std::string up1 = series("ghostwatch_target_up", "pg", "replica-1");
  const std::string pending1 = series("ghostwatch_visibility_pending_seconds", "pg", "replica-1");
  const auto killed = Clock::now();
  ASSERT_EQ(kill(std::stoi(postmaster_pid("pg-replica-1")), SIGKILL), 0);
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, up1) == 0; }, 10s)) << agent.log();
  const long detect_ms = ms_since(killed);
  // While it is gone: pending grows past a second, replica-2 keeps its samples, writes go on.
  const double r2 = metric_or(agent, lag_count("replica-2")), writes = metric_or(agent, kWritesOk);
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, pending1) > 1.0; }, 10s));
  EXPECT_GT(metric_or(agent, lag_count("replica-2")), r2 + 5);
  EXPECT_GT(metric_or(agent, kWritesOk), writes + 5);
  const double seen_before = metric_or(agent, lag_count("replica-1"));
  // A killed postmaster's children take a moment to notice and exit; until they have, its shared
  // memory is still in use and a new start is refused. Then it starts with crash recovery.
  CommandResult start;
  for (int attempt = 0; attempt < 20; ++attempt) {
    start = run_sandbox({"start", "pg-replica-1"}, 120s);
    if (start.exit_code == 0) break;
    std::this_thread::sleep_for(500ms);
  }
  ASSERT_EQ(start.exit_code, 0) << "pg-replica-1 did not start again after SIGKILL: " << start.err;
  const auto restarted = Clock::now();
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, up1) == 1 && metric_or(agent, lag_count("replica-1")) > seen_before; }, 30s))
      << agent.log();
  const long recover_ms = ms_since(restarted);
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, pending1) < 0.5; }, 10s));
  record_figure("fault replica-1 SIGKILL: target_up 0 after " + std::to_string(detect_ms) + " ms, pending > 1 s while down, replica-2 and writes went on; up with new samples " +
                std::to_string(recover_ms) + " ms after restart");
  std::remove(path.c_str());
}

TEST_F(Faults, AWriteBlockedByALockTimesOutAndTheNextOnesGoThrough) {
  const std::string path = write_temp_file(pg_probe("", "500ms"), ".yaml");
  Agent agent(path, free_port());
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, kWritesOk) > 5; }, 15s)) << agent.log();
  // Another session holds an exclusive lock on the canary table for 3 s.
  const std::string admin = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  const auto locked = Clock::now();
  std::thread holder([&admin] {
    admin_query(admin, "BEGIN; LOCK TABLE ghostwatch.canary IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;");
  });
  const double failed_before = metric_or(agent, kWritesFailed);
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, kWritesFailed) > failed_before; }, 5s)) << agent.log();
  const long detect_ms = ms_since(locked);
  holder.join();
  const auto unlocked = Clock::now();
  const double ok_after = metric_or(agent, kWritesOk);
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, kWritesOk) > ok_after + 3; }, 10s)) << agent.log();
  const long recover_ms = ms_since(unlocked);
  // Blocked writes are counted failures, each ended by the 500 ms query_timeout: at most about
  // 3 s / (500 ms + backoff) of them, never a pile-up.
  const double failed = metric_or(agent, kWritesFailed) - failed_before;
  EXPECT_GE(failed, 1);
  EXPECT_LE(failed, 8);
  // Ended by the client's deadline or by the server's statement_timeout, whichever comes first.
  const std::string log = agent.log();
  EXPECT_TRUE(log.find("query timed out after 500ms") != std::string::npos ||
              log.find("canceling statement due to statement timeout") != std::string::npos)
      << log;
  record_figure("fault LOCK TABLE on the canary for 3 s (query_timeout 500ms): first failed write after " + std::to_string(detect_ms) +
                " ms, " + std::to_string(static_cast<int>(failed)) + " writes failed, writes resumed " + std::to_string(recover_ms) +
                " ms after the lock ended");
  std::remove(path.c_str());
}

TEST_F(Faults, RevokedPrivilegesFailWritesUntilRestored) {
  const std::string path = write_temp_file(pg_probe(), ".yaml");
  Agent agent(path, free_port());
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, kWritesOk) > 5; }, 15s)) << agent.log();
  const std::string admin = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  // The sandbox's ghostwatch role owns the canary table: revoking from the owner works too.
  admin_query(admin, "REVOKE INSERT, UPDATE ON ghostwatch.canary FROM ghostwatch");
  const auto revoked = Clock::now();
  const double failed_before = metric_or(agent, kWritesFailed);
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, kWritesFailed) > failed_before + 2; }, 10s)) << agent.log();
  const long detect_ms = ms_since(revoked);
  EXPECT_NE(agent.log().find("permission denied for table canary"), std::string::npos) << agent.log();
  const double seen = metric_or(agent, lag_count("replica-1"));
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(metric_or(agent, lag_count("replica-1")), seen) << "no canary, no sample: nothing pretends to be seen";
  admin_query(admin, "GRANT INSERT, UPDATE ON ghostwatch.canary TO ghostwatch");
  const auto granted = Clock::now();
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, lag_count("replica-1")) > seen + 3; }, 15s)) << agent.log();
  record_figure("fault INSERT/UPDATE revoked: writes failing after " + std::to_string(detect_ms) + " ms (permission denied logged), no samples meanwhile; samples again " +
                std::to_string(ms_since(granted)) + " ms after the grant");
  std::remove(path.c_str());
}

TEST_F(Faults, AHostThatDoesNotResolveIsAClearErrorWithoutAHang) {
  const std::string path = write_temp_file(
      pg_probe("      - name: nowhere\n        dsn: \"host=no-such-host.invalid port=5432 dbname=app user=x connect_timeout=1\"\n"),
      ".yaml");
  const auto started = Clock::now();
  Agent agent(path, free_port());
  // target_up is 0 from the start until a first answer, so the error in the log is what shows
  // the attempt was made and failed.
  const std::string error = "could not translate host name \\\"no-such-host.invalid\\\"";
  ASSERT_TRUE(wait_for([&] { return agent.log().find(error) != std::string::npos; }, 10s)) << agent.log();
  const long detect_ms = ms_since(started);
  EXPECT_EQ(metric_or(agent, series("ghostwatch_target_up", "pg", "nowhere"), -1), 0) << agent.log();
  const double r1 = metric_or(agent, lag_count("replica-1"));
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, lag_count("replica-1")) > r1 + 10; }, 10s)) << "the others go on";
  EXPECT_FALSE(metric_value(agent.metrics(), lag_count("nowhere")).value_or(0) > 0) << "no sample for a target never seen";
  record_figure("fault unresolvable host: the error naming the host logged " + std::to_string(detect_ms) +
                " ms after the agent's start, target_up 0; the other replicas kept measuring");
  std::remove(path.c_str());
}

TEST_F(Faults, AReplicaOutOfConnectionsIsDownAndRecovers) {
  // Fill replica-1's connection slots with other clients (until the server refuses one), then
  // start the agent. The previous test's agent first: its backends still exiting would free
  // slots after the fill, and this agent would take one (seen under ASan).
  const std::string others = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                             "AND usename = 'ghostwatch'";
  ASSERT_TRUE(wait_for([&] { return admin_query(require_env("GW_PG_ADMIN_REPLICA1_DSN"), others) == "0"; }, 20s))
      << "replica-1 still serves earlier clients: " << admin_query(require_env("GW_PG_ADMIN_REPLICA1_DSN"), others);
  std::vector<PGconn*> clients;
  const std::string dsn = require_env("GW_PG_REPLICA1_DSN") + " password=" + require_env("GW_PG_PASSWORD");
  std::string refusal;
  // The sandbox allows 600 connections (scripts/sandbox.sh): one descriptor each.
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  while (clients.size() < 1000) {
    PGconn* c = PQconnectdb(dsn.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
      refusal = PQerrorMessage(c);
      PQfinish(c);
      break;
    }
    clients.push_back(c);
  }
  auto release = [&clients] {
    for (PGconn* c : clients) PQfinish(c);
    clients.clear();
  };
  struct ReleaseOnExit {
    std::function<void()> release;
    ~ReleaseOnExit() { release(); }
  } release_on_exit{release};
  // What a role without superuser rights is told once only reserved slots are left.
  const std::string full = "remaining connection slots are reserved";
  ASSERT_NE(refusal.find(full), std::string::npos) << refusal;
  const std::string path = write_temp_file(pg_probe(), ".yaml");
  Agent agent(path, free_port());
  const std::string up1 = series("ghostwatch_target_up", "pg", "replica-1");
  // target_up is 0 from the start until a first answer, so the refusal in the log is what shows
  // the attempt was made and failed.
  ASSERT_TRUE(wait_for([&] { return agent.log().find(full) != std::string::npos; }, 10s)) << agent.log();
  EXPECT_EQ(metric_or(agent, up1, -1), 0) << agent.log();
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, lag_count("replica-2")) > 3; }, 10s));
  const std::size_t held = clients.size();
  release();
  const auto freed = Clock::now();
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, up1) == 1 && metric_or(agent, lag_count("replica-1")) > 0; }, 20s)) << agent.log();
  record_figure("fault max_connections exhausted on replica-1 (" + std::to_string(held) +
                " other clients): target_up 0 with 'remaining connection slots are reserved', replica-2 measured "
                "meanwhile; up with samples " + std::to_string(ms_since(freed)) + " ms after they left");
  std::remove(path.c_str());
}

// The reference cache pipeline (tests/integration/cache_pipeline.cpp), 50 ms behind the primary.
std::unique_ptr<ChildProcess> start_pipeline() { return start_cache_pipeline(CACHE_PIPELINE, 50); }

std::string cache_targets() {
  return R"(      - name: redis
        redis: "${GW_REDIS_ADDR}"
        key: "canary:{agent}:{probe}"
      - name: memcached
        memcached: "${GW_MEMCACHED_ADDR}"
        key: "canary:{agent}:{probe}"
)";
}

void redis_command(const std::string& command) {
  const std::string addr = require_env("GW_REDIS_ADDR");
  redisContext* r = redisConnect(addr.substr(0, addr.rfind(':')).c_str(), std::stoi(addr.substr(addr.rfind(':') + 1)));
  ASSERT_TRUE(r != nullptr && !r->err);
  freeReplyObject(redisCommand(r, command.c_str()));
  redisFree(r);
}

TEST_F(Faults, AFlushedCacheShowsPendingNotFreshUntilThePipelineRefillsIt) {
  const std::string path = write_temp_file(pg_probe(cache_targets()), ".yaml");
  auto pipeline = start_pipeline();
  Agent agent(path, free_port());
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, lag_count("redis")) > 5; }, 15s)) << agent.log() << pipeline->log();
  // The pipeline stops and the cache is emptied: nothing new can be seen there.
  pipeline.reset();
  redis_command("FLUSHALL");
  const auto flushed = Clock::now();
  const std::string pending = series("ghostwatch_visibility_pending_seconds", "pg", "redis");
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, pending) > 1.0; }, 10s)) << agent.log();
  const long detect_ms = ms_since(flushed);
  EXPECT_EQ(metric_or(agent, series("ghostwatch_target_up", "pg", "redis")), 1) << "an empty cache still answers";
  const double samples = metric_or(agent, lag_count("redis"));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(metric_or(agent, lag_count("redis")), samples) << "a missing key is never a fresh sample";
  pipeline = start_pipeline();
  const auto refilled = Clock::now();
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, lag_count("redis")) > samples && metric_or(agent, pending) < 0.5; }, 15s))
      << agent.log() << pipeline->log();
  record_figure("fault Redis FLUSHALL with the pipeline stopped: target_up stayed 1, pending passed 1 s after " +
                std::to_string(detect_ms) + " ms, no sample meanwhile; samples again " + std::to_string(ms_since(refilled)) +
                " ms after the pipeline restarted");
  std::remove(path.c_str());
}

TEST_F(Faults, RestartedCachesAreDownThenUpWhileTheReplicasGoOn) {
  const std::string path = write_temp_file(pg_probe(cache_targets()), ".yaml");
  auto pipeline = start_pipeline();
  Agent agent(path, free_port());
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, lag_count("memcached")) > 5; }, 15s)) << agent.log() << pipeline->log();
  for (const std::string cache : {"redis", "memcached"}) {
    const std::string up = series("ghostwatch_target_up", "pg", cache);
    const auto down_at = Clock::now();
    StoppedServer stopped(cache);
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, up) == 0; }, 10s)) << cache << agent.log();
    const long detect_ms = ms_since(down_at);
    const double r1 = metric_or(agent, lag_count("replica-1"));
    EXPECT_TRUE(wait_for([&] { return metric_or(agent, lag_count("replica-1")) > r1 + 5; }, 10s)) << "replicas go on";
    stopped.start();
    pipeline = start_pipeline();  // the stand-in pipeline does not reconnect by itself
    const auto up_at = Clock::now();
    const double seen = metric_or(agent, lag_count(cache));
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, up) == 1 && metric_or(agent, lag_count(cache)) > seen; }, 20s))
        << cache << agent.log();
    record_figure("fault " + cache + " restart: target_up 0 " + std::to_string(detect_ms) + " ms after the stop began" +
                  ", the replicas kept measuring; up with new samples " + std::to_string(ms_since(up_at)) + " ms after it started");
  }
  std::remove(path.c_str());
}

TEST_F(Faults, ThePrimaryRestartedMidWriteCountsErrorsAndSeqNeverGoesBack) {
  const std::string path = write_temp_file(pg_probe(), ".yaml");
  Agent agent(path, free_port());
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, kWritesOk) > 5; }, 15s)) << agent.log();
  const std::string replica = require_env("GW_PG_ADMIN_REPLICA1_DSN");
  const std::string seq_sql = "SELECT max(seq) FROM ghostwatch.canary WHERE agent_id = 'it-" + std::to_string(getpid()) + "'";
  const long seq_before = std::stol(admin_query(replica, seq_sql));
  const double failed_before = metric_or(agent, kWritesFailed);
  long detect_ms = 0;
  const auto stopping = Clock::now();
  {
    StoppedServer primary("pg-primary");
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, kWritesFailed) > failed_before; }, 10s)) << agent.log();
    detect_ms = ms_since(stopping);
  }
  const auto started = Clock::now();
  const double ok = metric_or(agent, kWritesOk);
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, kWritesOk) > ok + 3; }, 20s)) << agent.log();
  const long recover_ms = ms_since(started);
  ASSERT_TRUE(wait_for([&] { return std::stol(admin_query(replica, seq_sql)) > seq_before; }, 10s));
  const long seq_after = std::stol(admin_query(replica, seq_sql));
  EXPECT_GT(seq_after, seq_before) << "seq never goes back";
  record_figure("fault primary restarted: first failed write " + std::to_string(detect_ms) + " ms after the stop began, writes again " +
                std::to_string(recover_ms) + " ms after it was back; seq " + std::to_string(seq_before) + " -> " + std::to_string(seq_after));
  std::remove(path.c_str());
}

void memcached_set(const std::string& key, const std::string& value) {
  memcached_st* mc = memcached_create(nullptr);
  const std::string addr = require_env("GW_MEMCACHED_ADDR");
  memcached_server_add(mc, addr.substr(0, addr.rfind(':')).c_str(),
                       static_cast<in_port_t>(std::stoi(addr.substr(addr.rfind(':') + 1))));
  EXPECT_EQ(memcached_set(mc, key.data(), key.size(), value.data(), value.size(), 0, 0), MEMCACHED_SUCCESS);
  memcached_free(mc);
}

// A reconciler sweeping `cache` (redis or memcached) every second while that cache is stopped,
// then restarted empty and refilled by the application.
void reconciler_survives_a_stopped_cache(const std::string& cache) {
  const std::string table = "gw_reconcile_fault_" + cache + std::to_string(getpid());
  const std::string prefix = "rf" + cache + std::to_string(getpid()) + ":";
  const std::string admin = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  admin_query(admin, "CREATE TABLE " + table + " (id int PRIMARY KEY, version bigint NOT NULL); INSERT INTO " + table +
                         " SELECT g, 7 FROM generate_series(1, 50) g; GRANT SELECT ON " + table + " TO ghostwatch");
  auto fill = [&] {
    for (int id = 1; id <= 50; ++id) {
      if (cache == "redis") redis_command("SET " + prefix + std::to_string(id) + " 7");
      else memcached_set(prefix + std::to_string(id), "7");
    }
  };
  fill();
  const std::string address = cache == "redis" ? "${GW_REDIS_ADDR}" : "${GW_MEMCACHED_ADDR}";
  const std::string config = write_temp_file(agent_yaml() + R"(  - name: cache
    kind: reconcile
    cache:
      )" + cache + ": \"" + address + R"("
      key: ")" + prefix + R"({id}"
    source:
      dsn: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
      table: )" + table + R"(
      id_column: id
      version_column: version
    grace: 0ms
    every: 1s
    connect_timeout: 1s
    query_timeout: 1s
)",
                                             ".yaml");
  Agent agent(config, free_port());
  const std::string labels = "probe=\"cache\",target=\"" + cache + "\"";
  const std::string ok = "ghostwatch_cache_sweeps_total{probe=\"cache\",result=\"ok\",target=\"" + cache + "\"}";
  const std::string failed = "ghostwatch_cache_sweeps_total{probe=\"cache\",result=\"error\",target=\"" + cache + "\"}";
  const std::string ratio = "ghostwatch_cache_consistency_ratio{" + labels + "}";
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, ok) >= 2; }, 15s)) << agent.log();
  EXPECT_EQ(metric_or(agent, ratio), 1);
  EXPECT_GE(metric_or(agent, "ghostwatch_cache_checked_total{" + labels + "}"), 100) << "50 entries per sweep";
  long detect_ms = 0;
  {
    const auto stop_at = Clock::now();
    StoppedServer server(cache);
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, failed) >= 1; }, 10s)) << agent.log();
    detect_ms = ms_since(stop_at);
    const double ok_during = metric_or(agent, ok);
    std::this_thread::sleep_for(2s);
    EXPECT_EQ(metric_or(agent, ok), ok_during) << "no sweep counts as done while the cache is down";
  }
  fill();  // the restarted cache is empty, as after a FLUSHALL; the application refills it
  const auto back = Clock::now();
  const double ok_back = metric_or(agent, ok);
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, ok) > ok_back; }, 15s)) << agent.log();
  EXPECT_EQ(metric_or(agent, ratio), 1);
  record_figure("fault " + cache + " down under the reconciler: a failed sweep counted " + std::to_string(detect_ms) +
                " ms after the stop, no sweep counted ok meanwhile; ok sweeps again " + std::to_string(ms_since(back)) +
                " ms after " + cache + " was back and refilled");
  admin_query(admin, "DROP TABLE " + table);
  std::remove(config.c_str());
}

TEST_F(Faults, TheReconcilerCountsFailedSweepsWhileRedisIsDownAndRecovers) { reconciler_survives_a_stopped_cache("redis"); }

TEST_F(Faults, TheReconcilerCountsFailedSweepsWhileMemcachedIsDownAndRecovers) {
  reconciler_survives_a_stopped_cache("memcached");
}

}  // namespace
}  // namespace ghostwatch::testing
