// What integration tests share about the sandbox: the fixture that requires it, config
// snippets for its servers, metric helpers and RAII guards that undo injected failures.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "tests/integration/harness.h"

namespace ghostwatch::testing {

// Skips without the sandbox, or fails when GHOSTWATCH_REQUIRE_SANDBOX=1 (as in scripts/test.sh).
class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override;
};

// An agent section with an id unique to this test process.
std::string agent_yaml();
// The postgres probe "pg" over replica-1 and replica-2 (poll 10ms), plus `extra_targets` lines.
std::string pg_probe_yaml(const std::string& interval, const std::string& timeout,
                          const std::string& extra_targets = "", const std::string& query_timeout = "1s");
// The mysql probe "maria" over the MariaDB replica "replica" (poll 5ms).
std::string maria_probe_yaml(const std::string& interval, const std::string& timeout);

// The reference cache pipeline (tests/integration/cache_pipeline.cpp, at `binary`) carrying this
// test process's canaries of probe "pg" from the sandbox primary into its Redis and memcached,
// `delay_ms` late.
std::unique_ptr<ChildProcess> start_cache_pipeline(const std::string& binary, int delay_ms);

// The least lag that replica-2's 200 ms recovery_min_apply_delay may show. The delay counts from
// the commit record's timestamp, taken before the primary answers the commit; the lag counts
// from the agent's ack. On a loaded machine the answer comes a few ms after that timestamp, so a
// canary can appear a little under 200 ms after its ack (ASan beside three busy loops, 1 ms
// polling: p50 198.3 ms). 10 ms polling usually hides this: it adds about 5 ms.
constexpr double kLeastApplyDelayLag = 0.190;

// The element of a JSON array whose "name" is `name` (a report's probes, or a probe's targets);
// throws, naming it, when there is none.
const nlohmann::json& named(const nlohmann::json& items, const std::string& name);
// The target `target` of probe `probe` in a JSON report of `ghostwatch probe`.
const nlohmann::json& report_target(const nlohmann::json& report, const std::string& probe, const std::string& target);

// Every relation of the sandbox's PostgreSQL database that `role` may change in any way, through
// its own grants or PUBLIC's (the catalogs aside: PUBLIC may UPDATE pg_settings, which is SET),
// comma-separated.
std::string pg_writable_relations(const std::string& role);

// When a write load writes: on a fixed beat; at random moments (a Poisson process: each gap
// drawn from an exponential distribution), as independent users do; or in bursts of
// kBurstWrites back to back, the bursts at random moments (a batch job, a page of writes).
enum class Arrivals { beat, random, bursts };
inline constexpr int kBurstWrites = 50;

// Writes a row (one transaction) on the sandbox's PostgreSQL primary every `period`, on average
// for random arrivals, from a client of its own (a write load beside the agent), until destroyed.
class PgWriteLoad {
 public:
  explicit PgWriteLoad(std::chrono::microseconds period, Arrivals arrivals = Arrivals::beat);
  ~PgWriteLoad();
  long writes() const { return writes_; }

 private:
  std::atomic<long> writes_{0};
  std::jthread thread_;
};


// "201.4 ms": seconds as milliseconds with one decimal, for figures.
std::string ms(double seconds);
// `value` with `digits` decimals, for figures.
std::string fixed(double value, int digits = 2);
// Seconds from `start` to now (steady clock).
double seconds_since(std::chrono::steady_clock::time_point start);
// The port=N of a libpq key=value DSN, as text.
std::string dsn_port(const std::string& dsn);

// `name{probe="probe",target="target"}`
std::string series(const std::string& name, const std::string& probe, const std::string& target);
double metric_or(const Agent& agent, const std::string& series, double fallback = -1);
// ghostwatch_target_role's series for one role of one target (1 while the target has that role).
std::string role_series(const std::string& probe, const std::string& target, const std::string& role);

// Pauses WAL replay on a PostgreSQL replica now and resumes it on scope exit (or on resume()).
class ReplayPause {
 public:
  explicit ReplayPause(std::string admin_dsn);
  ~ReplayPause();
  void resume();

 private:
  std::string dsn_;
  bool paused_ = true;
};

// Stops the MariaDB replica's "SQL_THREAD" or "IO_THREAD" now and starts it again on scope exit,
// mid-second and with its delay proven (scripts/sandbox.sh start-replication).
class StoppedReplicaThread {
 public:
  explicit StoppedReplicaThread(std::string thread);
  ~StoppedReplicaThread();
  void start();

 private:
  std::string thread_;
  bool stopped_ = true;
};

// GET BASE_URL + path_and_query from a Prometheus' HTTP API: its JSON, or discarded JSON when it
// did not answer.
nlohmann::json prometheus_get(const std::string& base_url, const std::string& path_and_query);
// The result vector of an instant query; empty when there is none or the query failed.
nlohmann::json prometheus_query(const std::string& base_url, const std::string& expr);
// dashboards/ghostwatch.json.
nlohmann::json dashboard_json();
// Fails the test for every panel query (variables matching everything) that has no data in the
// Prometheus at `base_url` within 20 s; returns how many queries there are.
int expect_every_panel_query_has_data(const std::string& base_url);

// scripts/sandbox.sh ARGS on the sandbox whose env.sh the tests run with (GW_SANDBOX_DIR), not
// the one the caller's GHOSTWATCH_SANDBOX_DIR may name.
CommandResult run_sandbox(const std::vector<std::string>& args,
                          std::chrono::milliseconds deadline = std::chrono::seconds(90));

// Fails the test unless the MariaDB replica applies writes MASTER_DELAY late, as the sandbox set
// it: proven by a timed write (scripts/sandbox.sh check-delay), which also repairs a delay that a
// reconnect of the replica's IO thread lost. Tests that measure the delay call it first.
void require_master_delay();

// Sets the MariaDB replica's MASTER_DELAY (seconds) for one test and restores the sandbox's on
// scope exit; both proven by a timed write.
class MasterDelay {
 public:
  explicit MasterDelay(const std::string& seconds);
  ~MasterDelay();
  static void set(const std::string& seconds);
};

// Cuts a PostgreSQL replica's WAL receiver off (primary_conninfo emptied and reloaded) and
// restores its primary_conninfo on scope exit (or on restore()), waiting for it to stream again.
class WalReceiverCut {
 public:
  explicit WalReceiverCut(std::string admin_dsn);
  ~WalReceiverCut();
  void restore();

 private:
  std::string dsn_, conninfo_;
  bool cut_ = false;
};

// Stops a sandbox server now and starts it again on scope exit (or on start()).
class StoppedServer {
 public:
  explicit StoppedServer(std::string name);
  ~StoppedServer();
  void start();

 private:
  void sandbox(const std::string& verb);
  std::string name_;
  bool stopped_ = true;
};

}  // namespace ghostwatch::testing
