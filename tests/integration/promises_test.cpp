// The settings users trust to prevent stale reads, measured on the sandbox against injected
// truth (pg-replica-2 200 ms behind, pg-replica-1 made 200 ms behind where a test says so,
// maria-replica MASTER_DELAY 1 s). The tests assert the physics, not exact shares:
// - pgpool-II load balancing alone reads the lagging replica; disable_load_balance_on_write =
//   always keeps a session's reads on the primary once it wrote, and only that session's;
// - synchronous_commit = remote_apply makes a commit wait for the synchronous standby's apply, so
//   a read there right after the ack is fresh and the write costs at least the apply delay;
//   `on` waits for the standby to flush only, which prevents no stale read;
// - MariaDB semi-synchronous replication waits for receipt, not apply: no fewer stale reads.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;
using Promises = SandboxTest;

// Sets pgpool's KEY=VALUE settings (scripts/sandbox.sh pgpool-set) for one test; the sandbox's
// defaults come back on scope exit.
class PgpoolSettings {
 public:
  explicit PgpoolSettings(std::vector<std::string> settings) {
    settings.insert(settings.begin(), "pgpool-set");
    const CommandResult r = run_sandbox(settings);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  ~PgpoolSettings() { run_sandbox({"pgpool-set", "defaults"}); }
};

// A PostgreSQL replica's apply delay (ms) for one test; back to `restore_ms` on scope exit.
class ApplyDelay {
 public:
  ApplyDelay(std::string replica, int ms, int restore_ms) : replica_(std::move(replica)), restore_ms_(restore_ms) {
    const CommandResult r = run_sandbox({"set-delay", replica_, std::to_string(ms)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  ~ApplyDelay() { run_sandbox({"set-delay", replica_, std::to_string(restore_ms_)}); }

 private:
  std::string replica_;
  int restore_ms_;
};

// MariaDB semi-synchronous replication on for one test (scripts/sandbox.sh semisync).
class SemiSync {
 public:
  SemiSync() {
    const CommandResult r = run_sandbox({"semisync", "on"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  ~SemiSync() { run_sandbox({"semisync", "off"}); }
};

const nlohmann::json& path_named(const nlohmann::json& probe, const std::string& name) {
  return named(probe.at("read_paths"), name);
}

const nlohmann::json& delay_named(const nlohmann::json& path, const std::string& delay) {
  for (const auto& d : path.at("delays")) {
    if (d.at("delay") == delay) return d;
  }
  throw std::runtime_error("no delay " + delay + " in " + path.dump());
}

long stale(const nlohmann::json& path, const std::string& delay) { return delay_named(path, delay).at("stale").get<long>(); }
long answered(const nlohmann::json& path, const std::string& delay) {
  const auto& d = delay_named(path, delay);
  return d.at("reads").get<long>() - d.at("errors").get<long>();
}
std::string share(const nlohmann::json& path, const std::string& delay) {
  return std::to_string(stale(path, delay)) + "/" + std::to_string(answered(path, delay));
}

// `ghostwatch probe` over `config_text` for `canaries` canaries; the JSON report.
nlohmann::json canaries_report(const std::string& config_text, int canaries) {
  const std::string config = write_temp_file(config_text, ".yaml");
  auto r = run_command({ghostwatch_binary(), "probe", "--config", config, "--canaries", std::to_string(canaries),
                        "--output", "json"},
                       120s);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return nlohmann::json::parse(r.out);
}

// Probe "pg" with a plain and a session read path through pgpool.
std::string pgpool_paths_yaml() {
  return agent_yaml() + pg_probe_yaml("100ms", "5s") + R"(    read_paths:
      - name: pgpool
        dsn: "${GW_PGPOOL_DSN} password=${GW_PG_PASSWORD}"
      - name: pgpool-session
        dsn: "${GW_PGPOOL_DSN} password=${GW_PG_PASSWORD}"
        session: true
    read_delays: [0ms, 100ms, 400ms]
)";
}

// Each read through pgpool lands on the lagging pg-replica-2 one time in three (equal weights),
// so 40 reads all fresh would be a (2/3)^40 < 1e-7 chance: a stale count of 0 is a kept promise.
TEST_F(Promises, PgpoolKeepsAWritersSessionOnThePrimaryOnlyWithDisableLoadBalanceOnWriteAlways) {
  {
    PgpoolSettings settings({"disable_load_balance_on_write=transaction"});
    const auto report = canaries_report(pgpool_paths_yaml(), 40);
    const auto& probe = named(report.at("probes"), "pg");
    const auto& plain = path_named(probe, "pgpool");
    const auto& session = path_named(probe, "pgpool-session");
    record_figure("pgpool, disable_load_balance_on_write=transaction: stale at 0 ms, plain " + share(plain, "0ms") +
                  ", session " + share(session, "0ms") + "; at 400 ms, plain " + share(plain, "400ms") + ", session " +
                  share(session, "400ms"));
    EXPECT_GE(answered(plain, "0ms"), 35);
    EXPECT_GT(stale(plain, "0ms"), 0);
    EXPECT_GT(stale(session, "0ms"), 0) << "an autocommit write ends the transaction, and with it the promise";
    EXPECT_EQ(stale(plain, "400ms"), 0) << "200 ms of apply delay is over by then";
    EXPECT_EQ(session.at("session_writes").at("ok").get<long>(), 40);
  }
  PgpoolSettings settings({"disable_load_balance_on_write=always"});
  const auto report = canaries_report(pgpool_paths_yaml(), 40);
  const auto& probe = named(report.at("probes"), "pg");
  const auto& plain = path_named(probe, "pgpool");
  const auto& session = path_named(probe, "pgpool-session");
  record_figure("pgpool, disable_load_balance_on_write=always: stale at 0 ms, plain " + share(plain, "0ms") +
                ", session " + share(session, "0ms") + "; session writes p50 " +
                ms(session.at("session_writes").at("p50_seconds").get<double>()));
  EXPECT_GE(answered(session, "0ms"), 35);
  EXPECT_EQ(stale(session, "0ms"), 0) << "after its write, the session reads the primary";
  EXPECT_EQ(stale(session, "100ms"), 0);
  EXPECT_GT(stale(plain, "0ms"), 0) << "a session that never wrote is still load balanced";
  EXPECT_EQ(probe.at("canaries_written").get<long>(), 40) << "the session's writes are counted apart";
}

// Two probes side by side on the same primary, one per setting, each reading replica-1 (the
// synchronous standby, made 200 ms late here) right after its canary's ack.
std::string sync_commit_probe(const std::string& setting) {
  return R"(  - name: sync-)" + setting + R"(
    kind: postgres
    primary: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
    interval: 300ms
    timeout: 5s
    session_settings: {synchronous_commit: )" + setting + R"(}
    targets:
      - name: replica-1
        dsn: "${GW_PG_REPLICA1_DSN} password=${GW_PG_PASSWORD}"
    read_paths:
      - {name: standby, targets: [replica-1]}
    read_delays: [0ms]
)";
}

TEST_F(Promises, RemoteApplyMakesTheSynchronousStandbyFreshAtTheAckAndOnDoesNot) {
  ApplyDelay delay("pg-replica-1", 200, 0);
  const auto report = canaries_report(agent_yaml() + sync_commit_probe("on") + sync_commit_probe("remote_apply"), 20);
  const auto& on = named(report.at("probes"), "sync-on");
  const auto& apply = named(report.at("probes"), "sync-remote_apply");
  const auto& on_reads = path_named(on, "standby");
  const auto& apply_reads = path_named(apply, "standby");
  record_figure("synchronous_commit=on, standby 200 ms late: stale at 0 ms " + share(on_reads, "0ms") + ", write p50 " +
                ms(on.at("write_p50_seconds").get<double>()) + ", p99 " + ms(on.at("write_p99_seconds").get<double>()));
  record_figure("synchronous_commit=remote_apply, standby 200 ms late: stale at 0 ms " + share(apply_reads, "0ms") +
                ", write p50 " + ms(apply.at("write_p50_seconds").get<double>()) + ", p99 " +
                ms(apply.at("write_p99_seconds").get<double>()));
  EXPECT_GE(answered(apply_reads, "0ms"), 18);
  EXPECT_EQ(stale(apply_reads, "0ms"), 0) << "the commit returned once the standby had applied it";
  EXPECT_GE(apply.at("write_p50_seconds").get<double>(), kLeastApplyDelayLag) << "the commit waits for the apply";
  EXPECT_GE(answered(on_reads, "0ms"), 18);
  EXPECT_GT(stale(on_reads, "0ms"), answered(on_reads, "0ms") / 2) << "on waits for the flush, not the apply";
  EXPECT_LT(on.at("write_p50_seconds").get<double>(), 0.1);
}

TEST_F(Promises, MariadbSemiSyncWaitsForReceiptSoTheLateReplicaStillReadsStale) {
  require_master_delay();
  const std::string admin = require_env("GW_MARIA_ADMIN_PRIMARY_DSN");
  SemiSync semisync;
  const auto yes_before = std::stol(maria_admin_query(admin, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
                                                             " WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_YES_TX'"));
  const auto report = canaries_report(agent_yaml() + maria_probe_yaml("300ms", "10s") + R"(    read_paths:
      - {name: replica, targets: [replica]}
      - name: primary-session
        dsn: "mysql://ghostwatch:${GW_MARIA_PASSWORD}@${GW_MARIA_PRIMARY_ADDR}/"
        session: true
    read_delays: [0ms, 100ms]
)",
                                   15);
  const auto yes_after = std::stol(maria_admin_query(admin, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
                                                            " WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_YES_TX'"));
  const auto& probe = named(report.at("probes"), "maria");
  const auto& replica = path_named(probe, "replica");
  const auto& session = path_named(probe, "primary-session");
  record_figure("MariaDB semi-sync, MASTER_DELAY 1 s: stale at 0 ms " + share(replica, "0ms") + ", write p50 " +
                ms(probe.at("write_p50_seconds").get<double>()) + ", " + std::to_string(yes_after - yes_before) +
                " transactions acknowledged by the replica");
  EXPECT_GE(yes_after - yes_before, 15) << "the canaries' commits waited for the replica's acknowledgement";
  EXPECT_GE(answered(replica, "0ms"), 14);
  EXPECT_EQ(stale(replica, "0ms"), answered(replica, "0ms")) << "received is not applied";
  // A session path works through a MariaDB connection too: on the primary it reads its own write.
  EXPECT_EQ(session.at("session_writes").at("ok").get<long>(), 15);
  EXPECT_EQ(stale(session, "0ms"), 0);
  EXPECT_EQ(answered(session, "0ms"), 15);
}

TEST_F(Promises, BadSandboxSettingsAreRefusedAndChangeNothing) {
  const std::string pgpool = require_env("GW_PGPOOL_DSN") + " password=" + require_env("GW_PG_PASSWORD");
  const std::string before = admin_query(pgpool, "PGPOOL SHOW disable_load_balance_on_write");
  auto refused = [](const std::vector<std::string>& args, const std::string& why) {
    const CommandResult r = run_sandbox(args);
    EXPECT_NE(r.exit_code, 0) << args.at(0);
    EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
  };
  refused({"pgpool-set", "work_mem=1GB"},
          "KEY one of: sr_check_period delay_threshold disable_load_balance_on_write statement_level_load_balance");
  refused({"pgpool-set", "delay_threshold=lots"}, "delay_threshold must be a whole number, got 'lots'");
  refused({"pgpool-set", "disable_load_balance_on_write=sometimes"}, "got 'sometimes'");
  refused({"semisync", "maybe"}, "semisync: on or off, got 'maybe'");
  EXPECT_EQ(admin_query(pgpool, "PGPOOL SHOW disable_load_balance_on_write"), before) << "pgpool kept its settings";
}

}  // namespace
}  // namespace ghostwatch::testing
