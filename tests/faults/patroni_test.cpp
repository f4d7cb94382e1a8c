// A real HA cluster changing shape under the agent: the sandbox's Patroni cluster (etcd, three
// PostgreSQL members; `scripts/sandbox.sh up --patroni`) is the probe's only source of targets and
// of its writer. A switchover, a failover (the leader's Patroni and PostgreSQL SIGKILLed), a fourth
// member joining and then removed for good, and the REST API unreachable. Each test leaves the
// cluster with its three members running, whoever leads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct ClusterMember {
  std::string name, role, state;
  int port = 0;
};

int api_port(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

std::vector<std::string> patroni_urls() {
  std::vector<std::string> out;
  std::stringstream in(require_env("GW_PATRONI_URLS"));
  for (std::string url; std::getline(in, url, ',');) out.push_back(url);
  return out;
}

// GET /cluster from the first member's API that answers.
std::vector<ClusterMember> cluster() {
  for (const std::string& url : patroni_urls()) {
    const HttpResult r = http_request(api_port(url), "GET", "/cluster");
    if (r.status != 200) continue;
    std::vector<ClusterMember> out;
    const auto answer = nlohmann::json::parse(r.body);  // named: a temporary would die before the loop
    for (const auto& m : answer.at("members")) {
      out.push_back({m.at("name").get<std::string>(), m.at("role").get<std::string>(), m.value("state", std::string()),
                     m.at("port").get<int>()});
    }
    return out;
  }
  return {};
}

std::string leader() {
  for (const auto& m : cluster()) {
    if (m.role == "leader" && m.state == "running") return m.name;
  }
  return "";
}

std::vector<std::string> replicas() {
  std::vector<std::string> out;
  for (const auto& m : cluster()) {
    if (m.role != "leader") out.push_back(m.name);
  }
  return out;
}

int pg_port_of(const std::string& member) {
  for (const auto& m : cluster()) {
    if (m.name == member) return m.port;
  }
  return 0;
}

std::string admin_dsn(int port) {
  return "host=127.0.0.1 port=" + std::to_string(port) + " dbname=app user=postgres password=" +
         require_env("GW_PATRONI_ADMIN_PASSWORD");
}

// /metrics every 250 ms while it lives, for the timeline of what the agent showed.
class MetricsRecorder {
 public:
  explicit MetricsRecorder(const Agent& agent, Clock::time_point t0)
      : thread_([this, &agent, t0](std::stop_token stop) {
          while (!stop.stop_requested()) {
            std::string text = agent.metrics();
            {
              std::lock_guard lock(mu_);
              snapshots_.emplace_back(seconds_since(t0), std::move(text));
            }
            std::this_thread::sleep_for(250ms);
          }
        }) {}
  ~MetricsRecorder() { stop(); }
  void stop() {
    thread_.request_stop();
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::pair<double, std::string>> snapshots() const {
    std::lock_guard lock(mu_);
    return snapshots_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<double, std::string>> snapshots_;
  std::jthread thread_;
};

bool has_target(const Agent& agent, const std::string& target) {
  return agent.metrics().find("target=\"" + target + "\"") != std::string::npos;
}

double value_in(const std::string& metrics, const std::string& series, double fallback = -1) {
  return metric_value(metrics, series).value_or(fallback);
}

// "pg-m1[up primary n=42 pend=0.00]" from one scrape; "pg-m1[-]" when it has no series.
std::string member_state(const std::string& metrics, const std::string& member) {
  const std::string up = series("ghostwatch_target_up", "ha", member);
  if (!metric_value(metrics, up)) return member + "[-]";
  std::string role = "?";
  for (const char* r : {"primary", "replica", "sync_standby", "standby_leader"}) {
    if (value_in(metrics, "ghostwatch_target_role{probe=\"ha\",role=\"" + std::string(r) + "\",target=\"" + member + "\"}") == 1) role = r;
  }
  return member + "[" + (value_in(metrics, up) == 1 ? "up" : "DOWN") + " " + role +
         " n=" + fixed(value_in(metrics, series("ghostwatch_visibility_lag_seconds_count", "ha", member), 0), 0) +
         " pend=" + fixed(value_in(metrics, series("ghostwatch_visibility_pending_seconds", "ha", member), 0), 2) + "]";
}

// One line per second: what /metrics showed for each member.
std::vector<std::string> timeline(const MetricsRecorder& recorder, const std::vector<std::string>& members, double until) {
  std::vector<std::string> out;
  const auto snaps = recorder.snapshots();
  double next = 0;
  for (const auto& [t, text] : snaps) {
    if (t < next || t > until) continue;
    std::string line = "  +" + fixed(t, 1) + " s:";
    for (const auto& m : members) line += " " + member_state(text, m);
    out.push_back(line);
    next = std::floor(t) + 1;
  }
  return out;
}

// How long each member read target_up 0 in the recording.
std::map<std::string, double> down_seconds(const MetricsRecorder& recorder, const std::vector<std::string>& members) {
  std::map<std::string, double> out;
  const auto snaps = recorder.snapshots();
  for (std::size_t i = 1; i < snaps.size(); ++i) {
    for (const auto& m : members) {
      if (value_in(snaps[i].second, series("ghostwatch_target_up", "ha", m)) == 0) out[m] += snaps[i].first - snaps[i - 1].first;
    }
  }
  return out;
}

class Patroni : public SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (std::getenv("GW_PATRONI_URLS") == nullptr) {
      const char* require = std::getenv("GHOSTWATCH_REQUIRE_SANDBOX");
      if (require && std::string(require) == "1") FAIL() << "the sandbox has no Patroni cluster (up --patroni)";
      GTEST_SKIP() << "the sandbox has no Patroni cluster (scripts/sandbox.sh up --patroni)";
    }
    ASSERT_TRUE(wait_for([] { return !leader().empty() && replicas().size() == 2; }, 60s))
        << "the cluster is not whole: " << cluster().size() << " members, leader '" << leader() << "'";
  }
  void TearDown() override {
    // Whoever leads, the next test finds three members running, and no fourth.
    run_sandbox({"patroni-remove", "pg-m3"});
    run_sandbox({"patroni-start", "pg-m0"});
    run_sandbox({"patroni-start", "pg-m1"});
    run_sandbox({"patroni-start", "pg-m2"});
    run_sandbox({"patroni-wait", "pg-m0", "pg-m1", "pg-m2"});
  }

  // `extra`: more of the patroni source's settings (", ca_file: ...").
  std::string config(const std::string& urls_yaml, const std::string& interval = "1s", const std::string& extra = "") {
    return write_temp_file(agent_yaml() + R"(  - name: ha
    kind: postgres
    interval: 200ms
    poll_interval: 10ms
    timeout: 10s
    connect_timeout: 1s
    query_timeout: 1s
    discovery:
      dsn_template: "host={host} port={port} dbname=app user=ghostwatch connect_timeout=1"
      password_file: )" + write_temp_file(require_env("GW_PG_PASSWORD") + "\n", ".pw") + R"(
      remove_after: 3
      patroni: {urls: )" + urls_yaml + ", interval: " + interval + extra + R"(}
)", ".yaml");
  }
  std::string urls_yaml() const {
    std::string out = "[";
    for (const auto& url : patroni_urls()) out += (out.size() > 1 ? ", \"" : "\"") + url + "\"";
    return out + "]";
  }
  static std::string count_of(const std::string& member) {
    return series("ghostwatch_visibility_lag_seconds_count", "ha", member);
  }
  static std::string role_series(const std::string& member, const std::string& role) {
    return "ghostwatch_target_role{probe=\"ha\",role=\"" + role + "\",target=\"" + member + "\"}";
  }
};

const std::string kWritesOk = "ghostwatch_canary_writes_total{probe=\"ha\",result=\"ok\"}";

struct Accounting {
  double written, seen, timed_out;
};

// Between two scrapes: canaries written, and seen or timed out on `member`.
Accounting accounting(const std::string& before, const std::string& after, const std::string& member) {
  const std::string count = series("ghostwatch_visibility_lag_seconds_count", "ha", member);
  const std::string timeouts = series("ghostwatch_visibility_timeouts_total", "ha", member);
  return {value_in(after, kWritesOk) - value_in(before, kWritesOk), value_in(after, count) - value_in(before, count),
          value_in(after, timeouts, 0) - value_in(before, timeouts, 0)};
}

// This test's agent's canary seq on `port` (the member's own copy of the row).
long seq_on(int port) {
  std::string out, error;
  const std::string agent = "it-" + std::to_string(getpid());  // agent_yaml()'s id
  if (!try_admin_query(admin_dsn(port),
                       "SELECT coalesce(max(seq), 0) FROM ghostwatch.canary WHERE probe = 'ha' AND agent_id = '" + agent + "'",
                       &out, &error)) {
    return -1;
  }
  return std::stol(out);
}

TEST_F(Patroni, ASwitchoverIsFollowedAndNothingLies) {
  const std::string old_leader = leader(), candidate = replicas().at(0), bystander = replicas().at(1);
  Agent agent(config(urls_yaml()), free_port());
  for (const auto& r : {candidate, bystander}) {
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, count_of(r)) >= 5; }, 30s)) << r << "\n" << agent.log();
    EXPECT_EQ(metric_or(agent, role_series(r, "replica")), 1);
  }
  EXPECT_FALSE(has_target(agent, old_leader)) << "the leader is the writer, not a target";
  const std::string before = agent.metrics();
  const long seq_before = seq_on(pg_port_of(old_leader));

  const auto t0 = Clock::now();
  MetricsRecorder recorder(agent, t0);
  const auto sw = run_command({"/usr/bin/patronictl", "-c", require_env("GW_PATRONI_CONFIG"), "switchover", "--leader", old_leader,
                               "--candidate", candidate, "--force"},
                              60s);
  ASSERT_EQ(sw.exit_code, 0) << sw.out << sw.err;
  const double returned_s = seconds_since(t0);
  // The first canary written on the new leader: its own copy of the row moves past what it had.
  const int candidate_port = pg_port_of(candidate);
  const long seq_at_return = seq_on(candidate_port);
  double first_write_s = -1;
  ASSERT_TRUE(wait_for([&] {
    if (seq_on(candidate_port) <= seq_at_return || leader() != candidate) return false;
    first_write_s = seconds_since(t0);
    return true;
  }, 30s)) << agent.log();
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, role_series(candidate, "primary")) == 1; }, 20s)) << agent.log();
  const double shown_primary_s = seconds_since(t0);
  double old_leader_sample_s = -1;
  ASSERT_TRUE(wait_for([&] {
    if (metric_or(agent, count_of(old_leader)) < 1) return false;
    old_leader_sample_s = seconds_since(t0);
    return true;
  }, 60s)) << agent.log();
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, count_of(old_leader)) >= 5; }, 30s));
  // Until the bystander has nothing outstanding (seen, or timed out after 10 s): the accounting
  // below is then complete.
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, series("ghostwatch_visibility_pending_seconds", "ha", bystander)) == 0; }, 20s));
  const double settled_s = seconds_since(t0);
  recorder.stop();
  const std::string after = agent.metrics();

  EXPECT_EQ(metric_or(agent, role_series(old_leader, "replica")), 1) << "measured as a replica under its own name";
  EXPECT_EQ(metric_or(agent, role_series(candidate, "primary")), 1);
  EXPECT_EQ(metric_or(agent, role_series(candidate, "replica")), -1) << "one role series at a time";
  const long seq_after = seq_on(candidate_port);
  EXPECT_GT(seq_after, seq_before) << "seq never goes back";
  // Accounting on the member that stayed a replica throughout: every canary acked meanwhile was
  // seen there or timed out (a few may be in flight at either scrape).
  const auto [written, seen, timed_out] = accounting(before, after, bystander);
  EXPECT_NEAR(written, seen + timed_out, 3) << "written " << written << ", seen " << seen << ", timed out " << timed_out;
  const auto down = down_seconds(recorder, {old_leader, candidate, bystander});
  EXPECT_EQ(down.count(candidate), 0u) << "the promoted member never read down";
  EXPECT_EQ(down.count(bystander), 0u) << "the bystander never read down";
  EXPECT_LT(down.count(old_leader) ? down.at(old_leader) : 0.0, 15.0) << "down only while its PostgreSQL restarts";

  record_figure("patroni switchover " + old_leader + " -> " + candidate + ": patronictl returned +" + fixed(returned_s, 2) +
                " s, first canary written on the new leader +" + fixed(first_write_s, 2) + " s, " + candidate +
                " shown as primary +" + fixed(shown_primary_s, 2) + " s, first sample of " + old_leader +
                " as a replica +" + fixed(old_leader_sample_s, 2) + " s; canaries written " + fixed(written, 0) +
                ", seen on " + bystander + " " + fixed(seen, 0) + ", timed out " + fixed(timed_out, 0) + "; seq " +
                std::to_string(seq_before) + " -> " + std::to_string(seq_after) + "; " + old_leader + " read down " +
                fixed(down.count(old_leader) ? down.at(old_leader) : 0.0, 2) + " s, the others never");
  for (const auto& line : timeline(recorder, {old_leader, candidate, bystander}, settled_s)) record_figure(line);
  agent.terminate(10s);
}

TEST_F(Patroni, AFailoverIsFollowedAndTheOldLeaderComesBackAsAReplica) {
  const std::string old_leader = leader(), a = replicas().at(0), b = replicas().at(1);
  Agent agent(config(urls_yaml()), free_port());
  for (const auto& r : {a, b}) ASSERT_TRUE(wait_for([&] { return metric_or(agent, count_of(r)) >= 5; }, 30s)) << agent.log();
  const long seq_before = seq_on(pg_port_of(old_leader));
  const std::string before = agent.metrics();

  const auto t0 = Clock::now();
  MetricsRecorder recorder(agent, t0);
  ASSERT_EQ(run_sandbox({"patroni-kill", old_leader}).exit_code, 0);
  std::string new_leader;
  ASSERT_TRUE(wait_for([&] {
    new_leader = leader();
    return !new_leader.empty() && new_leader != old_leader;
  }, 60s)) << "no new leader";
  const double elected_s = seconds_since(t0);
  const std::string stayed = new_leader == a ? b : a;
  const double ok_at_election = metric_or(agent, kWritesOk);
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, kWritesOk) > ok_at_election; }, 30s)) << agent.log();
  const double writing_again_s = seconds_since(t0);
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, role_series(new_leader, "primary")) == 1; }, 20s)) << agent.log();
  const double shown_primary_s = seconds_since(t0);

  // The old leader's Patroni starts again: it rejoins as a replica (pg_rewind) under its name.
  ASSERT_EQ(run_sandbox({"patroni-start", old_leader}).exit_code, 0);
  const double restarted_s = seconds_since(t0);
  double old_leader_sample_s = -1;
  ASSERT_TRUE(wait_for([&] {
    if (metric_or(agent, count_of(old_leader)) < 1) return false;
    old_leader_sample_s = seconds_since(t0);
    return true;
  }, 90s)) << agent.log();
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, series("ghostwatch_visibility_pending_seconds", "ha", stayed)) == 0; }, 20s));
  const double settled_s = seconds_since(t0);
  recorder.stop();
  const std::string after = agent.metrics();
  EXPECT_EQ(metric_or(agent, role_series(old_leader, "replica")), 1);
  const long seq_after = seq_on(pg_port_of(new_leader));
  EXPECT_GT(seq_after, seq_before) << "seq never goes back";
  const auto [written, seen, timed_out] = accounting(before, after, stayed);
  EXPECT_NEAR(written, seen + timed_out, 3) << "written " << written << ", seen " << seen << ", timed out " << timed_out;
  record_figure("patroni failover (" + old_leader + "'s Patroni and PostgreSQL SIGKILLed): " + new_leader +
                " elected +" + fixed(elected_s, 2) + " s, canaries written again +" + fixed(writing_again_s, 2) + " s, " +
                new_leader + " shown as primary +" + fixed(shown_primary_s, 2) + " s; " + old_leader +
                "'s Patroni restarted +" + fixed(restarted_s, 2) + " s, its first sample as a replica +" +
                fixed(old_leader_sample_s, 2) + " s; canaries written " + fixed(written, 0) + ", seen on " + stayed + " " +
                fixed(seen, 0) + ", timed out " + fixed(timed_out, 0) + "; seq " + std::to_string(seq_before) + " -> " +
                std::to_string(seq_after));
  for (const auto& line : timeline(recorder, {old_leader, a, b}, settled_s)) record_figure(line);
  agent.terminate(10s);
}

TEST_F(Patroni, AMemberThatJoinsIsMeasuredAndOneRemovedForGoodLeaves) {
  Agent agent(config(urls_yaml()), free_port());
  const std::string r = replicas().at(0);
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, count_of(r)) >= 3; }, 30s)) << agent.log();
  const auto added = run_sandbox({"patroni-add", "pg-m3"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  const auto t_joined = Clock::now();  // running, as its REST API says
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, count_of("pg-m3")) >= 1; }, 30s)) << agent.log();
  const double join_s = seconds_since(t_joined);
  EXPECT_EQ(metric_or(agent, role_series("pg-m3", "replica")), 1);
  EXPECT_LT(join_s, 5.0) << "a discovery round (1 s) and a canary (0.2 s) away";

  ASSERT_EQ(run_sandbox({"patroni-remove", "pg-m3"}).exit_code, 0);
  const auto t_removed = Clock::now();
  ASSERT_TRUE(wait_for([&] { return !has_target(agent, "pg-m3"); }, 30s)) << agent.log();
  const double leave_s = seconds_since(t_removed);
  EXPECT_GE(leave_s, 1.5) << "remove_after 3 rounds of 1 s: not at the first round that misses it";
  record_figure("patroni: pg-m3 joined (running) -> first sample " + fixed(join_s, 2) + " s; removed for good -> its series left /metrics " +
                fixed(leave_s, 2) + " s later (rounds of 1 s, remove_after 3)");
  agent.terminate(10s);
}

TEST_F(Patroni, AnUnreachableRestApiKeepsTheLastTargets) {
  // The agent reaches Patroni through a relay the test stops; the cluster itself runs on.
  const int relay_port = free_port();
  auto relay = std::make_unique<ChildProcess>(std::vector<std::string>{
      TCP_RELAY, "127.0.0.1:" + std::to_string(relay_port), "127.0.0.1:" + std::to_string(api_port(patroni_urls().at(0)))});
  Agent agent(config("[\"http://127.0.0.1:" + std::to_string(relay_port) + "\"]", "500ms"), free_port());
  const std::vector<std::string> rs = replicas();
  for (const auto& r : rs) ASSERT_TRUE(wait_for([&] { return metric_or(agent, count_of(r)) >= 3; }, 30s)) << agent.log();
  relay.reset();  // killed: connections refused from now on
  const std::string errors = "ghostwatch_discovery_errors_total{probe=\"ha\",source=\"patroni\"}";
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, errors) >= 6; }, 30s)) << agent.log();
  for (const auto& r : rs) {
    const double n = metric_or(agent, count_of(r));
    EXPECT_TRUE(wait_for([&] { return metric_or(agent, count_of(r)) > n + 3; }, 10s)) << r << " is still measured";
  }
  EXPECT_EQ(metric_or(agent, "ghostwatch_discovery_targets{probe=\"ha\",source=\"patroni\"}"), 2) << "the last good set";
  const std::string log = agent.log();
  const std::string failed = "discovery source patroni failed";
  EXPECT_EQ(log.find(failed), log.rfind(failed)) << "logged once per outage:\n" << log;
  agent.terminate(10s);
}

// Patroni's REST API behind TLS and basic auth (restapi.certfile, restapi.authentication): a proxy
// with the sandbox's certificate relays a real member's answers. The right CA and credentials
// discover the cluster; the system's CAs or a wrong password are refused, and said so.
TEST_F(Patroni, TheRestApiOverTlsWithBasicAuth) {
  const std::string dir = require_env("GW_SANDBOX_DIR");
  const int port = free_port();
  ChildProcess proxy({"/usr/bin/python3", PATRONI_TLS_PROXY, std::to_string(port), dir + "/tls/agent.crt",
                      dir + "/tls/agent.key", "gw", "s3cret-api", patroni_urls().at(0)});
  std::this_thread::sleep_for(700ms);  // Python starts and listens
  ASSERT_TRUE(proxy.alive()) << proxy.log();
  const std::string url = "https://127.0.0.1:" + std::to_string(port);
  auto agent_for = [&](const std::string& ca, const std::string& password) {
    std::string extra = ", username: gw, password_file: " + write_temp_file(password + "\n", ".pw");
    if (!ca.empty()) extra += ", ca_file: " + ca;
    return config("[\"" + url + "\"]", "500ms", extra);
  };
  const std::string errors = "ghostwatch_discovery_errors_total{probe=\"ha\",source=\"patroni\"}";
  {
    Agent agent(agent_for(require_env("GW_TLS_CA"), "s3cret-api"), free_port());
    for (const auto& r : replicas()) {
      ASSERT_TRUE(wait_for([&] { return metric_or(agent, count_of(r)) >= 3; }, 30s)) << r << "\n" << agent.log();
    }
    EXPECT_EQ(agent.log().find("s3cret-api"), std::string::npos) << "the API's password never shows";
    agent.terminate(10s);
  }
  {
    Agent agent(agent_for("", "s3cret-api"), free_port());  // the system's CAs do not know it
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, errors) >= 2; }, 30s)) << agent.log();
    EXPECT_NE(agent.log().find("SSL"), std::string::npos) << agent.log();
    EXPECT_FALSE(has_target(agent, replicas().at(0)));
    agent.terminate(10s);
  }
  {
    Agent agent(agent_for(require_env("GW_TLS_CA"), "wrong"), free_port());
    ASSERT_TRUE(wait_for([&] { return metric_or(agent, errors) >= 2; }, 30s)) << agent.log();
    EXPECT_NE(agent.log().find("HTTP 401"), std::string::npos) << agent.log();
    agent.terminate(10s);
  }
}

}  // namespace
}  // namespace ghostwatch::testing
