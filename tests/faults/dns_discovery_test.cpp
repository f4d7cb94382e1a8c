// Discovery's dns source against a real DNS server: dnsmasq on a loopback port of its own (the
// source's `server:`), serving A records that point at relays in front of the sandbox's two
// PostgreSQL replicas (127.0.0.2 and 127.0.0.3, one port: as a headless Service's pods) and SRV
// records that name them by host and port. Records are added and removed while the agent runs;
// the server stops (a failure: the last set is kept) and comes back without the records (an
// answer: the targets leave).
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class DnsServer {
 public:
  explicit DnsServer(std::string address = "127.0.0.1", int port = free_port())
      : address_(std::move(address)), port_(port), dir_("/tmp/ghostwatch-dns-" + std::to_string(getpid())) {
    std::filesystem::create_directories(dir_);
    std::filesystem::permissions(dir_, std::filesystem::perms::all);
  }
  ~DnsServer() {
    stop();
    std::filesystem::remove_all(dir_);
  }
  int port() const { return port_; }
  std::string server() const { return address_ + ":" + std::to_string(port_); }
  const std::string& dir() const { return dir_; }

  // A records (hosts file, re-read on SIGHUP) and SRV records (the config: a restart).
  void hosts(const std::string& lines) {
    std::ofstream(dir_ + "/hosts") << lines;
    std::filesystem::permissions(dir_ + "/hosts", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                                      std::filesystem::perms::others_read | std::filesystem::perms::group_read);
    if (process_) process_->signal(SIGHUP);
  }
  void start(const std::vector<std::string>& srv_records) {
    stop();
    std::ofstream conf(dir_ + "/dnsmasq.conf");
    conf << "port=" << port_ << "\nlisten-address=" << address_ << "\nbind-interfaces\nno-resolv\nno-hosts\n"
         << "addn-hosts=" << dir_ << "/hosts\nlocal=/gw.test/\nuser=root\n";
    for (const auto& r : srv_records) conf << "srv-host=" << r << "\n";
    conf.close();
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/sbin/dnsmasq", "--keep-in-foreground", "--conf-file=" + dir_ + "/dnsmasq.conf",
                                 "--pid-file=" + dir_ + "/dnsmasq.pid", "--log-facility=" + dir_ + "/dnsmasq.log"});
    std::this_thread::sleep_for(200ms);
  }
  void stop() {
    if (process_) process_->terminate(5s);
    process_.reset();
  }

 private:
  std::string address_;
  int port_;
  std::string dir_;
  std::unique_ptr<ChildProcess> process_;
};

using DnsDiscovery = SandboxTest;

TEST_F(DnsDiscovery, FollowsARecordsAndSrvRecordsAsTheyAreAddedAndRemoved) {
  ASSERT_EQ(access("/usr/sbin/dnsmasq", X_OK), 0) << "dnsmasq is not installed (scripts/install-deps.sh)";
  const std::string p1 = dsn_port(require_env("GW_PG_REPLICA1_DSN")), p2 = dsn_port(require_env("GW_PG_REPLICA2_DSN"));
  // One port on two addresses, as a headless Service's pods: relays to the two replicas.
  const int port = free_port();
  ChildProcess relay({TCP_RELAY, "127.0.0.2:" + std::to_string(port), "127.0.0.1:" + p1,
                      "127.0.0.3:" + std::to_string(port), "127.0.0.1:" + p2});
  DnsServer dns;
  dns.hosts("127.0.0.2 replicas.gw.test\n127.0.0.1 r1.gw.test\n127.0.0.1 r2.gw.test\n");
  dns.start({"_pg._tcp.gw.test,r1.gw.test," + p1});
  const std::string pw = write_temp_file(require_env("GW_PG_PASSWORD") + "\n", ".pw");
  auto probe = [&](const std::string& name, const std::string& source, const std::string& host) {
    return "  - name: " + name + R"(
    kind: postgres
    primary: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
    interval: 200ms
    timeout: 5s
    connect_timeout: 1s
    query_timeout: 1s
    discovery:
      dsn_template: "host=)" + host + R"( port={port} dbname=app user=ghostwatch connect_timeout=1"
      password_file: )" + pw + R"(
      remove_after: 2
      dns: )" + source + "\n";
  };
  const std::string config = write_temp_file(
      agent_yaml() +
          probe("dnsa", "{name: replicas.gw.test, port: " + std::to_string(port) + ", server: \"" + dns.server() + "\", interval: 500ms}", "{host}") +
          probe("dnss", "{srv: _pg._tcp.gw.test, server: \"" + dns.server() + "\", interval: 500ms}", "{address}"),
      ".yaml");
  Agent agent(config, free_port());
  auto count = [&](const std::string& probe, const std::string& target) {
    return metric_or(agent, series("ghostwatch_visibility_lag_seconds_count", probe, target));
  };
  auto listed = [&](const std::string& probe, const std::string& target) {
    return agent.metrics().find("probe=\"" + probe + "\",target=\"" + target + "\"") != std::string::npos;
  };
  ASSERT_TRUE(wait_for([&] { return count("dnsa", "127.0.0.2") >= 3 && count("dnss", "r1.gw.test") >= 3; }, 20s)) << agent.log();
  EXPECT_EQ(metric_or(agent, "ghostwatch_target_role{probe=\"dnss\",role=\"replica\",target=\"r1.gw.test\"}"), 1);

  // Added: an A record (the hosts file, SIGHUP) and an SRV record (dnsmasq restarted with it).
  dns.hosts("127.0.0.2 replicas.gw.test\n127.0.0.3 replicas.gw.test\n127.0.0.1 r1.gw.test\n127.0.0.1 r2.gw.test\n");
  const auto a_added = Clock::now();
  ASSERT_TRUE(wait_for([&] { return count("dnsa", "127.0.0.3") >= 1; }, 10s)) << agent.log();
  const double a_join = seconds_since(a_added);
  dns.start({"_pg._tcp.gw.test,r1.gw.test," + p1, "_pg._tcp.gw.test,r2.gw.test," + p2});
  const auto srv_added = Clock::now();
  ASSERT_TRUE(wait_for([&] { return count("dnss", "r2.gw.test") >= 1; }, 10s)) << agent.log();
  const double srv_join = seconds_since(srv_added);

  // Removed: 127.0.0.2 leaves after remove_after (2) rounds; the other keeps counting.
  const double kept = count("dnsa", "127.0.0.3");
  dns.hosts("127.0.0.3 replicas.gw.test\n127.0.0.1 r1.gw.test\n127.0.0.1 r2.gw.test\n");
  const auto a_removed = Clock::now();
  ASSERT_TRUE(wait_for([&] { return !listed("dnsa", "127.0.0.2"); }, 10s)) << agent.log();
  const double a_leave = seconds_since(a_removed);
  EXPECT_GE(a_leave, 0.4) << "not at the first round that misses it";
  EXPECT_TRUE(wait_for([&] { return count("dnsa", "127.0.0.3") > kept + 3; }, 10s));

  // The server stops: every round fails, the last set is kept and measured.
  dns.stop();
  const std::string errors = "ghostwatch_discovery_errors_total{probe=\"dnss\",source=\"dns\"}";
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, errors) >= 3; }, 30s)) << agent.log();
  EXPECT_TRUE(listed("dnss", "r1.gw.test") && listed("dnss", "r2.gw.test"));
  EXPECT_TRUE(listed("dnsa", "127.0.0.3"));

  // It comes back without the records: an answer with none, so the targets leave.
  dns.hosts("127.0.0.1 r1.gw.test\n");
  dns.start({});
  const auto emptied = Clock::now();
  ASSERT_TRUE(wait_for([&] { return !listed("dnss", "r1.gw.test") && !listed("dnsa", "127.0.0.3"); }, 15s)) << agent.log();
  const double empty_leave = seconds_since(emptied);
  EXPECT_EQ(metric_or(agent, "ghostwatch_discovery_targets{probe=\"dnsa\",source=\"dns\"}"), 0);
  record_figure("discovery dns source (dnsmasq, rounds of 0.5 s, remove_after 2): an A record added -> first sample " +
                fixed(a_join) + " s; an SRV record added (dnsmasq restarted) -> first sample " + fixed(srv_join) +
                " s; an A record removed -> its series left /metrics " + fixed(a_leave) +
                " s later; the server stopped: the last set kept; back without records: the targets left after " +
                fixed(empty_leave) + " s");
  agent.terminate(5s);
}

// Without `server:` the source asks the system's resolvers: the agent runs in a mount namespace
// of its own whose /etc/resolv.conf names a dnsmasq on 127.0.0.153:53 (resolv.conf takes no
// port), so the host's resolver configuration is never touched.
TEST_F(DnsDiscovery, AsksTheSystemsResolversWithoutAServer) {
  ASSERT_EQ(access("/usr/sbin/dnsmasq", X_OK), 0) << "dnsmasq is not installed (scripts/install-deps.sh)";
  DnsServer dns("127.0.0.153", 53);
  dns.hosts("127.0.0.1 r1.gw.test\n");
  dns.start({"_pg._tcp.gw.test,r1.gw.test," + dsn_port(require_env("GW_PG_REPLICA1_DSN"))});
  const std::string resolv = dns.dir() + "/resolv.conf";
  std::ofstream(resolv) << "nameserver 127.0.0.153\noptions timeout:1 attempts:1\n";
  const std::string pw = write_temp_file(require_env("GW_PG_PASSWORD") + "\n", ".pw");
  const std::string config = write_temp_file(agent_yaml() + R"(  - name: sys
    kind: postgres
    primary: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
    interval: 200ms
    connect_timeout: 1s
    query_timeout: 1s
    discovery:
      dsn_template: "host={address} port={port} dbname=app user=ghostwatch connect_timeout=1"
      password_file: )" + pw + R"(
      dns: {srv: _pg._tcp.gw.test, interval: 500ms}
)", ".yaml");
  Agent agent({"/usr/bin/unshare", "--mount", "/bin/sh", "-c", "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"", resolv},
              config, free_port());
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, series("ghostwatch_visibility_lag_seconds_count", "sys", "r1.gw.test")) >= 3; },
                       20s))
      << agent.log();
  std::string host_resolv;
  std::getline(std::ifstream("/etc/resolv.conf"), host_resolv, '\0');
  EXPECT_EQ(host_resolv.find("127.0.0.153"), std::string::npos) << "the host's resolv.conf is untouched";
  agent.terminate(5s);
}

}  // namespace
}  // namespace ghostwatch::testing
