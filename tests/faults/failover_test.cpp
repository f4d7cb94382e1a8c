// A failover, on a sandbox of its own (the test promotes a replica and stops the primary, which
// the shared sandbox's other tests could not survive). The primary DSN names both hosts with
// target_session_attrs=read-write (libpq's multi-host form): the writer follows the new primary,
// seq never goes back, the promoted target is shown as a primary (its lag of 0 is not a healthy
// replica's), and the replica that still follows the stopped primary shows growing pending.
#include <unistd.h>

#include <fstream>
#include <map>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kPgPort = 28432, kMariaPort = 28306;

class Failover : public SandboxTest {
 protected:
  const std::string dir_ = "/tmp/ghostwatch-failover-" + std::to_string(getpid());
  CommandResult sandbox(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/env", "GHOSTWATCH_SANDBOX_DIR=" + dir_, "GW_PG_PORT_PRIMARY=" + std::to_string(kPgPort),
                                  "GW_MARIA_PORT_PRIMARY=" + std::to_string(kMariaPort), "/bin/bash", sandbox_script()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, 300s);
  }
  void TearDown() override { sandbox({"down"}); }

  // The variables the sandbox's env.sh exports.
  std::map<std::string, std::string> env() const {
    std::map<std::string, std::string> out;
    std::ifstream in(dir_ + "/env.sh");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("export ", 0) != 0) continue;
      const auto eq = line.find('=');
      const auto first = line.find('\'', eq), last = line.rfind('\'');
      if (eq == std::string::npos || first == std::string::npos || last <= first) continue;
      out[line.substr(7, eq - 7)] = line.substr(first + 1, last - first - 1);
    }
    return out;
  }
};

TEST_F(Failover, TheWriterFollowsThePromotedReplicaAndThePromotedTargetIsShownAsPrimary) {
  const auto up = sandbox({"up"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  auto e = env();
  const std::string pw = e["GW_PG_PASSWORD"];
  const std::string p0 = std::to_string(kPgPort), p1 = std::to_string(kPgPort + 1), p2 = std::to_string(kPgPort + 2);
  const std::string login = " dbname=app user=ghostwatch password=" + pw + " connect_timeout=1";
  const std::string config = agent_yaml() + "  - name: pg\n    kind: postgres\n    primary: \"host=127.0.0.1,127.0.0.1 port=" + p0 + "," +
                             p1 + login + " target_session_attrs=read-write\"\n    interval: 100ms\n    poll_interval: 10ms\n"
                             "    timeout: 5s\n    connect_timeout: 1s\n    query_timeout: 1s\n    targets:\n"
                             "      - name: replica-1\n        dsn: \"host=127.0.0.1 port=" + p1 + login + "\"\n"
                             "      - name: replica-2\n        dsn: \"host=127.0.0.1 port=" + p2 + login + "\"\n";
  const std::string path = write_temp_file(config, ".yaml");
  Agent agent(path, free_port());
  const std::string primary1 = role_series("pg", "replica-1", "primary");
  const std::string pending2 = series("ghostwatch_visibility_pending_seconds", "pg", "replica-2");
  const std::string ok = "ghostwatch_canary_writes_total{probe=\"pg\",result=\"ok\"}";
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, "ghostwatch_visibility_lag_seconds_count{probe=\"pg\",target=\"replica-2\"}") > 5; }, 20s))
      << agent.log();
  EXPECT_EQ(metric_or(agent, role_series("pg", "replica-1", "replica")), 1);
  EXPECT_EQ(metric_or(agent, primary1), -1) << "one role series at a time";
  const std::string seq_sql = "SELECT max(seq) FROM ghostwatch.canary";
  const long seq_before = std::stol(admin_query(e["GW_PG_ADMIN_REPLICA1_DSN"], seq_sql));

  // Failover: replica-1 is promoted, the old primary stops.
  const auto failover = Clock::now();
  admin_query(e["GW_PG_ADMIN_REPLICA1_DSN"], "SELECT pg_promote(true, 30)");
  ASSERT_EQ(sandbox({"stop", "pg-primary"}).exit_code, 0);
  const double ok_at_failover = metric_or(agent, ok);
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, ok) > ok_at_failover + 5; }, 20s)) << agent.log();
  const long follow_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - failover).count();
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, primary1) == 1; }, 10s)) << agent.log();
  const long seq_after = std::stol(admin_query(e["GW_PG_ADMIN_REPLICA1_DSN"], seq_sql));
  EXPECT_GT(seq_after, seq_before) << "seq never goes back";
  // replica-2 still follows the stopped primary: nothing new reaches it.
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, pending2) > 3.0; }, 15s)) << agent.log();  // (timeout 5s)
  EXPECT_EQ(metric_or(agent, role_series("pg", "replica-2", "replica")), 1);
  const HttpResult page = http_request(agent.port(), "GET", "/");
  EXPECT_NE(page.body.find("PRIMARY (not a replica"), std::string::npos) << page.body;
  const auto report = run_command({ghostwatch_binary(), "probe", "--config", path, "--canaries", "3", "--output", "json"}, 120s);
  EXPECT_NE(report.out.find("\"role\": \"primary\""), std::string::npos) << report.out << report.err;
  record_figure("fault failover (replica-1 promoted, primary stopped): writes on the new primary " + std::to_string(follow_ms) +
                " ms after the promotion, seq " + std::to_string(seq_before) + " -> " + std::to_string(seq_after) +
                ", replica-1 shown as primary (gauge, /, report), replica-2 pending past 3 s");
  agent.terminate(5s);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ghostwatch::testing
