// A fleet end to end (scripts/sandbox.sh fleet-up): an HA pair of agents on the PostgreSQL
// cluster "orders" and one agent on the MariaDB cluster "billing", each cluster's Prometheus in
// agent mode remote-writing with its `cluster` label to a central Prometheus that evaluates the
// shipped rules and the rules `ghostwatch rules` made of the fleet's SLOs, and Alertmanager
// delivering to a webhook that logs every notification. Faults are real (replay paused, agents
// stopped); what is asserted is what reached the webhook, and when.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;

// scripts/sandbox.sh ARGS, with this build's binary for the fleet's agents.
CommandResult fleet_command(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/env", "GHOSTWATCH_SANDBOX_DIR=" + require_env("GW_SANDBOX_DIR"),
                                "GHOSTWATCH_BIN=" + ghostwatch_binary(), "/bin/bash", sandbox_script()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, 90s);
}

// fleet-up writes GW_FLEET_* into the sandbox's env.sh, after this process read it.
void load_fleet_env() {
  std::ifstream in(require_env("GW_SANDBOX_DIR") + "/env.sh");
  static const std::regex line(R"(^export (GW_FLEET_[A-Z_]+)='([^']*)'$)");
  std::smatch m;
  for (std::string text; std::getline(in, text);) {
    if (std::regex_match(text, m, line)) setenv(m[1].str().c_str(), m[2].str().c_str(), 1);
  }
}

nlohmann::json central_query(const std::string& expr) {
  return prometheus_query(require_env("GW_FLEET_PROMETHEUS_URL"), expr);
}

std::set<std::string> clusters_of(const std::string& expr) {
  std::set<std::string> out;
  for (const auto& s : central_query(expr)) out.insert(s.at("metric").value("cluster", ""));
  return out;
}

// One alert in one webhook call.
struct Delivered {
  double received_at;
  std::string status;  // firing or resolved
  nlohmann::json labels;
};

std::vector<Delivered> delivered() {
  std::vector<Delivered> out;
  std::ifstream in(require_env("GW_FLEET_NOTIFICATIONS"));
  for (std::string line; std::getline(in, line);) {
    const auto call = nlohmann::json::parse(line, nullptr, false);
    if (call.is_discarded()) continue;
    for (const auto& alert : call.at("notification").at("alerts")) {
      out.push_back({call.at("received_at").get<double>(), alert.at("status"), alert.at("labels")});
    }
  }
  return out;
}

bool matches(const nlohmann::json& labels, const std::map<std::string, std::string>& want) {
  for (const auto& [key, value] : want) {
    if (labels.value(key, "") != value) return false;
  }
  return true;
}

std::vector<Delivered> delivered(const std::map<std::string, std::string>& want, const std::string& status) {
  std::vector<Delivered> out;
  for (const Delivered& d : delivered()) {
    if (d.status == status && matches(d.labels, want)) out.push_back(d);
  }
  return out;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string labels_text(const nlohmann::json& labels) {
  std::string out;
  for (const auto& [key, value] : labels.items()) {
    if (key == "job") continue;
    out += (out.empty() ? "" : ",") + key + "=" + value.get<std::string>();
  }
  return "{" + out + "}";
}

// The faults, in order, with when each happened (the webhook's clock is this machine's).
struct Event {
  std::string what;
  double at;
};

// Waits for the first delivery of `status` matching `want` after `since`.
std::optional<Delivered> await(const std::map<std::string, std::string>& want, const std::string& status,
                               const Event& since, std::chrono::seconds deadline) {
  std::optional<Delivered> found;
  wait_for([&] {
    for (const Delivered& d : delivered(want, status)) {
      if (d.received_at >= since.at) {
        found = d;
        return true;
      }
    }
    return false;
  }, deadline);
  return found;
}

// Every delivery the webhook logged, each timed from the last fault before it: the note's table.
void record_deliveries(const std::vector<Event>& events) {
  for (const Delivered& d : delivered()) {
    const Event* last = nullptr;
    for (const Event& e : events) {
      if (e.at <= d.received_at) last = &e;
    }
    record_figure("fleet notification: " + d.status + " " + labels_text(d.labels) +
                  (last ? " " + fixed(d.received_at - last->at, 1) + " s after " + last->what : " before any fault"));
  }
}

class Fleet : public SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (IsSkipped()) return;
    const auto r = fleet_command({"fleet-up"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    load_fleet_env();
  }
  void TearDown() override {
    if (!IsSkipped()) {
      const auto r = fleet_command({"fleet-down"});
      EXPECT_EQ(r.exit_code, 0) << r.err;
    }
  }
};

TEST_F(Fleet, OneNotificationPerProblemThroughRemoteWriteAndAlertmanager) {
  // The recorded series keep the cluster label each edge Prometheus added.
  ASSERT_TRUE(wait_for([] {
    return clusters_of("ghostwatch:visibility_lag_seconds:p99_5m") == std::set<std::string>{"orders", "billing"};
  }, 90s)) << "the central Prometheus never had both clusters' lag";
  EXPECT_EQ(central_query("ghostwatch:visibility_lag_seconds:p99_5m{cluster=\"orders\",target=\"replica-1\"}").size(), 1u)
      << "the HA pair's two agents must make one series per target";
  ASSERT_TRUE(wait_for([] { return clusters_of("ghostwatch:slo_error_budget_remaining:ratio").size() == 2; }, 90s))
      << "no error budget series for both clusters (evaluated once a minute)";
  const int queries = expect_every_panel_query_has_data(require_env("GW_FLEET_PROMETHEUS_URL"));
  EXPECT_GT(queries, 20);
  record_figure("fleet: " + std::to_string(queries) + " dashboard queries over " +
                std::to_string(dashboard_json().at("panels").size()) + " panels all returned data from the central Prometheus");

  // 1. Replay paused on orders' replica-1, watched by both agents of the pair.
  std::vector<Event> events;
  const std::map<std::string, std::string> stalled{
      {"alertname", "GhostwatchReplicationStalled"}, {"cluster", "orders"}, {"target", "replica-1"}};
  const std::map<std::string, std::string> page{{"alertname", "GhostwatchSLOFastBurn"}, {"cluster", "orders"},
                                                {"target", "replica-1"}, {"slo", "orders-replicas"},
                                                {"severity", "page"}};
  {
    events.push_back({"pg_wal_replay_pause() on orders' replica-1", unix_now()});
    ReplayPause pause(require_env("GW_PG_ADMIN_REPLICA1_DSN"));
    EXPECT_TRUE(await(page, "firing", events.back(), 90s)) << "the fast burn of SLO orders-replicas never paged";
    EXPECT_TRUE(await(stalled, "firing", events.back(), 90s)) << "GhostwatchReplicationStalled never reached the webhook";
    events.push_back({"pg_wal_replay_resume()", unix_now()});
  }
  EXPECT_TRUE(await(stalled, "resolved", events.back(), 60s)) << "no resolved notification after replay resumed";
  std::this_thread::sleep_for(5s);  // time for a duplicate to arrive, if one were coming
  EXPECT_EQ(delivered(stalled, "firing").size(), 1u) << "one firing notification for the pair's two agents";
  EXPECT_EQ(delivered(stalled, "resolved").size(), 1u);
  EXPECT_EQ(delivered(page, "firing").size(), 1u) << "one page for the pair's two agents";
  EXPECT_TRUE(delivered({{"alertname", "GhostwatchReplicationStalled"}, {"target", "replica-2"}}, "firing").empty());
  EXPECT_TRUE(delivered({{"alertname", "GhostwatchReplicationStalled"}, {"cluster", "billing"}}, "firing").empty());

  // 2. One agent of the pair stops: its cluster is still watched (down, not absent). The only
  //    agent of billing stops: absent for billing, and for billing only.
  events.push_back({"stopping agents orders-b and billing", unix_now()});
  ASSERT_EQ(fleet_command({"stop", "agent-orders-b"}).exit_code, 0);
  ASSERT_EQ(fleet_command({"stop", "agent-billing"}).exit_code, 0);
  const std::map<std::string, std::string> billing_absent{{"alertname", "GhostwatchAgentAbsent"}, {"cluster", "billing"}};
  EXPECT_TRUE(await(billing_absent, "firing", events.back(), 60s));
  EXPECT_TRUE(await({{"alertname", "GhostwatchAgentDown"}, {"cluster", "orders"}}, "firing", events.back(), 60s));
  std::this_thread::sleep_for(5s);
  EXPECT_TRUE(delivered({{"alertname", "GhostwatchAgentAbsent"}, {"cluster", "orders"}}, "firing").empty())
      << "orders still has agent orders-a";
  events.push_back({"restarting them", unix_now()});
  ASSERT_EQ(fleet_command({"start", "agent-billing"}).exit_code, 0);
  ASSERT_EQ(fleet_command({"start", "agent-orders-b"}).exit_code, 0);
  EXPECT_TRUE(await(billing_absent, "resolved", events.back(), 60s));
  EXPECT_EQ(delivered(billing_absent, "firing").size(), 1u);
  record_deliveries(events);
}

}  // namespace
}  // namespace ghostwatch::testing
