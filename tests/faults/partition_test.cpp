// Network faults: the agent runs in a network namespace the test makes, linked to the host by a
// veth pair, and reaches the sandbox's PostgreSQL servers through tcp_relay on the host side of
// the link. An nftables rule inside the namespace drops the packets to one server: a black hole,
// no reset, the fault that a client without deadlines would hang on.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/faults/fault_metrics.h"
#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

void sh(const std::string& command) {
  const auto r = run_command({"/bin/sh", "-c", command}, 30s);
  ASSERT_EQ(r.exit_code, 0) << command << ": " << r.err;
}

// The namespace, its link, the nftables chain inside it, and the relay on the host side.
class Partition {
 public:
  static constexpr int kPrimary = 26460, kReplica1 = 26461, kReplica2 = 26462;
  // MariaDB: the primary, the replica, and the replica again on a port of its own to black-hole.
  static constexpr int kMariaPrimary = 26463, kMariaReplica = 26464, kMariaReplicaAgain = 26465;
  // The caches: Redis, Redis again on a port of its own to black-hole, memcached.
  static constexpr int kRedis = 26466, kRedisAgain = 26467, kMemcached = 26468;

  // The relay's address by name inside the namespace (ip netns exec mounts /etc/netns/NS/hosts
  // over /etc/hosts), for targets given by host name.
  static constexpr const char* kRelayName = "gw-relay.test";

  Partition() {
    const int net = static_cast<int>(getpid() % 250) + 1;
    host_ = "10.199." + std::to_string(net) + ".1";
    inside_ = "10.199." + std::to_string(net) + ".2";
    sh("mkdir -p /etc/netns/" + ns_ + " && printf '127.0.0.1 localhost\\n" + host_ + " " + kRelayName +
       "\\n' > /etc/netns/" + ns_ + "/hosts");
    sh("ip netns add " + ns_ + " && ip link add " + veth_ + "h type veth peer name " + veth_ + "n && ip link set " + veth_ +
       "n netns " + ns_ + " && ip addr add " + host_ + "/30 dev " + veth_ + "h && ip link set " + veth_ + "h up && " + in_ns() +
       "ip addr add " + inside_ + "/30 dev " + veth_ + "n && " + in_ns() + "ip link set " + veth_ + "n up && " + in_ns() +
       "ip link set lo up && " + in_ns() + "nft add table inet gw && " + in_ns() +
       "nft add chain inet gw out '{ type filter hook output priority 0; }'");
    relay_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        TCP_RELAY, host_ + ":" + std::to_string(kPrimary), "127.0.0.1:" + port_of("GW_PG_PRIMARY_DSN"),
        host_ + ":" + std::to_string(kReplica1), "127.0.0.1:" + port_of("GW_PG_REPLICA1_DSN"),
        host_ + ":" + std::to_string(kReplica2), "127.0.0.1:" + port_of("GW_PG_REPLICA2_DSN"),
        host_ + ":" + std::to_string(kMariaPrimary), require_env("GW_MARIA_PRIMARY_ADDR"),
        host_ + ":" + std::to_string(kMariaReplica), require_env("GW_MARIA_REPLICA_ADDR"),
        host_ + ":" + std::to_string(kMariaReplicaAgain), require_env("GW_MARIA_REPLICA_ADDR"),
        host_ + ":" + std::to_string(kRedis), require_env("GW_REDIS_ADDR"),
        host_ + ":" + std::to_string(kRedisAgain), require_env("GW_REDIS_ADDR"),
        host_ + ":" + std::to_string(kMemcached), require_env("GW_MEMCACHED_ADDR")});
    wait_for([this] { return relay_->log().find("relaying") != std::string::npos; }, 5s);
  }
  ~Partition() {
    relay_.reset();
    run_command({"/bin/sh", "-c", "ip netns del " + ns_ + "; ip link del " + veth_ + "h; rm -rf /etc/netns/" + ns_}, 30s);
  }

  void blackhole(int port) { sh(in_ns() + "nft add rule inet gw out ip daddr " + host_ + " tcp dport " + std::to_string(port) + " drop"); }
  void heal() { sh(in_ns() + "nft flush chain inet gw out"); }

  // `ghostwatch run` inside the namespace, serving on its address.
  std::vector<std::string> agent_argv(const std::string& config, int port) const {
    return {"/usr/sbin/ip", "netns", "exec", ns_, ghostwatch_binary(), "run", "--config", config, "--listen",
            inside_ + ":" + std::to_string(port)};
  }
  std::string dsn(int port) const {
    return "host=" + host_ + " port=" + std::to_string(port) + " dbname=app user=ghostwatch connect_timeout=1";
  }
  // `by_name`: through kRelayName instead of the relay's address.
  std::string maria_uri(int port, bool by_name = false) const {
    return "mysql://ghostwatch:" + require_env("GW_MARIA_PASSWORD") + "@" + (by_name ? kRelayName : host_) + ":" +
           std::to_string(port) + "/";
  }
  std::string address(int port, bool by_name = false) const {
    return (by_name ? kRelayName : host_) + ":" + std::to_string(port);
  }
  const std::string& inside() const { return inside_; }

 private:
  std::string in_ns() const { return "ip netns exec " + ns_ + " "; }
  static std::string port_of(const char* dsn_env) {
    const std::string dsn = require_env(dsn_env);
    const auto at = dsn.find("port=") + 5;
    return dsn.substr(at, dsn.find(' ', at) - at);
  }
  const std::string ns_ = "gwfault-" + std::to_string(getpid());
  const std::string veth_ = "gwf" + std::to_string(getpid() % 100000);
  std::string host_, inside_;
  std::unique_ptr<ChildProcess> relay_;
};

class Partitions : public SandboxTest {};

struct NsAgent {
  NsAgent(const Partition& p, const std::string& config) : port(free_port()), host(p.inside()), process(p.agent_argv(config, port)) {
    wait_for([this] { return !metrics().empty() || !process.alive(); }, 10s);
  }
  std::string metrics() const {
    const HttpResult r = http_request(port, "GET", "/metrics", "", host);
    return r.status == 200 ? r.body : "";
  }
  double value(const std::string& series, double fallback = -1) const { return metric_value(metrics(), series).value_or(fallback); }
  int threads() const { return process.threads(); }
  int port;
  std::string host;
  ChildProcess process;
};

std::string config_through(const Partition& p) {
  const std::string pw = " password=" + require_env("GW_PG_PASSWORD");
  return agent_yaml() + "  - name: pg\n    kind: postgres\n    primary: \"" + p.dsn(Partition::kPrimary) + pw +
         "\"\n    interval: 100ms\n    poll_interval: 10ms\n    timeout: 30s\n    connect_timeout: 1s\n    query_timeout: 1s\n"
         "    targets:\n      - name: replica-1\n        dsn: \"" + p.dsn(Partition::kReplica1) + pw +
         "\"\n      - name: replica-2\n        dsn: \"" + p.dsn(Partition::kReplica2) + pw + "\"\n";
}


TEST_F(Partitions, ABlackHoledReplicaIsDownWithinItsTimeoutsWhileTheOthersGoOn) {
  Partition net;
  const std::string path = write_temp_file(config_through(net), ".yaml");
  NsAgent agent(net, path);
  ASSERT_TRUE(wait_for([&] { return agent.value(lag_count("replica-1")) > 5; }, 15s)) << agent.process.log();
  const std::string up1 = series("ghostwatch_target_up", "pg", "replica-1");
  const std::string pending1 = series("ghostwatch_visibility_pending_seconds", "pg", "replica-1");
  const int threads_before = agent.threads();
  const auto cut = Clock::now();
  net.blackhole(Partition::kReplica1);
  ASSERT_TRUE(wait_for([&] { return agent.value(up1) == 0; }, 10s)) << agent.process.log();
  const long detect_ms = ms_since(cut);
  EXPECT_LT(detect_ms, 3000) << "query_timeout is 1 s";
  const double r2 = agent.value(lag_count("replica-2")), writes = agent.value(kWritesOk);
  ASSERT_TRUE(wait_for([&] { return agent.value(pending1) > 3.0; }, 10s));
  EXPECT_GT(agent.value(lag_count("replica-2")), r2 + 10) << "replica-2 keeps its samples";
  EXPECT_GT(agent.value(kWritesOk), writes + 10) << "the writer keeps writing";
  EXPECT_EQ(agent.threads(), threads_before) << "nothing piles up";
  const double seen = agent.value(lag_count("replica-1"));
  net.heal();
  const auto healed = Clock::now();
  ASSERT_TRUE(wait_for([&] { return agent.value(up1) == 1 && agent.value(lag_count("replica-1")) > seen; }, 20s))
      << agent.process.log();
  const long recover_ms = ms_since(healed);
  EXPECT_TRUE(wait_for([&] { return agent.value(pending1) < 0.5; }, 10s));
  record_figure("fault replica-1 black-holed (nftables drop in a netns): target_up 0 after " + std::to_string(detect_ms) +
                " ms (query_timeout 1s), pending past 3 s, replica-2 and the writer went on, threads " +
                std::to_string(threads_before) + " -> " + std::to_string(agent.threads()) + "; up with samples " +
                std::to_string(recover_ms) + " ms after the rule went");
  std::remove(path.c_str());
}

TEST_F(Partitions, ABlackHoledPrimaryFailsWritesWithinTheTimeoutAndNothingPilesUp) {
  Partition net;
  const std::string path = write_temp_file(config_through(net), ".yaml");
  NsAgent agent(net, path);
  ASSERT_TRUE(wait_for([&] { return agent.value(kWritesOk) > 5; }, 15s)) << agent.process.log();
  const int threads_before = agent.threads();
  const double failed_before = agent.value(kWritesFailed);
  const auto cut = Clock::now();
  net.blackhole(Partition::kPrimary);
  ASSERT_TRUE(wait_for([&] { return agent.value(kWritesFailed) > failed_before; }, 10s)) << agent.process.log();
  const long detect_ms = ms_since(cut);
  EXPECT_LT(detect_ms, 3000) << "query_timeout is 1 s";
  std::this_thread::sleep_for(5s);
  const double failed = agent.value(kWritesFailed) - failed_before;
  EXPECT_LE(failed, 6) << "one write at a time, each ended by its deadline, then backoff";
  EXPECT_EQ(agent.threads(), threads_before) << "no growing number of threads";
  const std::string pending1 = series("ghostwatch_visibility_pending_seconds", "pg", "replica-1");
  EXPECT_LT(agent.value(pending1), 0.5) << "no canary was acked, so none is pending: no false staleness";
  const double ok = agent.value(kWritesOk);
  net.heal();
  const auto healed = Clock::now();
  ASSERT_TRUE(wait_for([&] { return agent.value(kWritesOk) > ok + 3; }, 20s)) << agent.process.log();
  record_figure("fault primary black-holed: first failed write after " + std::to_string(detect_ms) + " ms (query_timeout 1s), " +
                std::to_string(static_cast<int>(failed)) + " failed writes in 5 s, threads " + std::to_string(threads_before) +
                " -> " + std::to_string(agent.threads()) + "; writing again " + std::to_string(ms_since(healed)) +
                " ms after the rule went");
  std::remove(path.c_str());
}

// Many targets of one probe on one event loop: "hole" through a link that the test black-holes,
// t1 ... through another. Polls are sent every 50 ms whether a canary is outstanding or not, so
// the poll rate itself shows whether the stuck socket delays anyone else.
const std::string kEvery50ms =
    "    interval: 200ms\n    poll_interval: 50ms\n    idle_poll_interval: 50ms\n    timeout: 30s\n"
    "    connect_timeout: 1s\n    query_timeout: 1s\n    targets:\n";

std::string many_targets_yaml(const std::string& probe_head, const std::string& hole_dsn, const std::string& other_dsn,
                              int count) {
  std::string y = agent_yaml() + probe_head + kEvery50ms + "      - name: hole\n        dsn: \"" + hole_dsn + "\"\n";
  for (int i = 1; i < count; ++i) {
    y += "      - name: t" + std::to_string(i) + "\n        dsn: \"" + other_dsn + "\"\n";
  }
  return y;
}

// The probe "pg" with cache targets only: "hole" on Redis through a link of its own, then Redis
// and memcached in turn through theirs by host name, all reading the key that the cache
// pipeline fills.
std::string many_caches_yaml(const Partition& net, int count) {
  const auto target = [](const std::string& name, const std::string& kind, const std::string& address) {
    return "      - name: " + name + "\n        " + kind + ": \"" + address + "\"\n        key: \"canary:{agent}:{probe}\"\n";
  };
  std::string y = agent_yaml() + "  - name: pg\n    kind: postgres\n    primary: \"" + net.dsn(Partition::kPrimary) +
                  " password=" + require_env("GW_PG_PASSWORD") + "\"\n" + kEvery50ms +
                  target("hole", "redis", net.address(Partition::kRedisAgain));
  for (int i = 1; i < count; ++i) {
    const bool redis = i % 2 == 1;
    y += target("t" + std::to_string(i), redis ? "redis" : "memcached",
                net.address(redis ? Partition::kRedis : Partition::kMemcached, /*by_name=*/true));
  }
  return y;
}

// The successful polls of every target but the black-holed one.
double polls_of_the_others(const std::string& metrics) {
  double sum = 0;
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("ghostwatch_polls_total{", 0) == 0 && line.find("target=\"hole\"") == std::string::npos) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return sum;
}

// Successful polls per second of every target but "hole", over 3 s.
double others_poll_rate(const NsAgent& agent) {
  const double before = polls_of_the_others(agent.metrics());
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(3s);
  return (polls_of_the_others(agent.metrics()) - before) / (ms_since(t0) / 1000.0);
}

// The agent polls `count` targets of `probe` (many_targets_yaml); "hole" goes into the black
// hole at `hole_port` and comes back, while the others must keep their rate, and no thread is
// added. `what` names the targets in the recorded figure.
void one_black_holed_target_delays_no_other(Partition& net, const std::string& yaml, const std::string& probe, int count,
                                            int hole_port, const std::string& what, std::chrono::milliseconds warm_up) {
  const std::string path = write_temp_file(yaml, ".yaml");
  NsAgent agent(net, path);
  const std::string up_hole = series("ghostwatch_target_up", probe, "hole");
  auto lags = [&probe](const std::string& target) {
    return "ghostwatch_visibility_lag_seconds_count{probe=\"" + probe + "\",target=\"" + target + "\"}";
  };
  const std::string last = "t" + std::to_string(count - 1);
  ASSERT_TRUE(wait_for([&] { return agent.value(lags(last)) > 3 && agent.value(up_hole) == 1; }, warm_up))
      << agent.process.log();
  const int threads = agent.threads();
  EXPECT_LE(threads, 16) << count << " targets on one event loop, not a thread each";
  const double healthy = others_poll_rate(agent);
  const double configured = (count - 1) / 0.050;
  EXPECT_GE(healthy, 0.95 * configured) << count - 1 << " targets every 50 ms";
  const auto cut = Clock::now();
  net.blackhole(hole_port);
  ASSERT_TRUE(wait_for([&] { return agent.value(up_hole) == 0; }, 10s)) << agent.process.log();
  const long detect_ms = ms_since(cut);
  EXPECT_LT(detect_ms, 3000) << "query_timeout is 1 s";
  const double stuck = others_poll_rate(agent);
  EXPECT_GE(stuck, 0.95 * configured) << "the others keep their pace while one socket hangs";
  EXPECT_EQ(agent.threads(), threads) << "nothing piles up";
  const double seen = agent.value(lags("hole"));
  net.heal();
  ASSERT_TRUE(wait_for([&] { return agent.value(up_hole) == 1 && agent.value(lags("hole")) > seen; }, 20s))
      << agent.process.log();
  record_figure("fault one of " + std::to_string(count) + " " + what + " black-holed (one event loop, " +
                std::to_string(threads) + " threads): down after " + std::to_string(detect_ms) + " ms; the other " +
                std::to_string(count - 1) + " polled " + std::to_string(static_cast<int>(healthy)) + "/s before and " +
                std::to_string(static_cast<int>(stuck)) + "/s during the outage, of " +
                std::to_string(static_cast<int>(configured)) + "/s configured");
  std::remove(path.c_str());
}

// 99 through replica-2's link, one through replica-1's.
TEST_F(Partitions, OneBlackHoledTargetAmongAHundredDelaysNoOther) {
  Partition net;
  const std::string pw = " password=" + require_env("GW_PG_PASSWORD");
  const std::string head = "  - name: pg\n    kind: postgres\n    primary: \"" + net.dsn(Partition::kPrimary) + pw + "\"\n";
  one_black_holed_target_delays_no_other(
      net, many_targets_yaml(head, net.dsn(Partition::kReplica1) + pw, net.dsn(Partition::kReplica2) + pw, 100), "pg",
      100, Partition::kReplica1, "targets", 20s);
}

// MariaDB targets, which the event loop drives through the connector's non-blocking calls: 19
// through the replica's link by host name (looked up off the loop), one through a link of its own
// to the same replica.
TEST_F(Partitions, OneBlackHoledMariaDbTargetAmongTwentyDelaysNoOther) {
  Partition net;
  const std::string head = "  - name: maria\n    kind: mysql\n    primary: \"" + net.maria_uri(Partition::kMariaPrimary) + "\"\n";
  one_black_holed_target_delays_no_other(
      net,
      many_targets_yaml(head, net.maria_uri(Partition::kMariaReplicaAgain),
                        net.maria_uri(Partition::kMariaReplica, /*by_name=*/true), 20),
      "maria", 20, Partition::kMariaReplicaAgain, "MariaDB targets (19 by host name)", 30s);
}

// Cache targets, which the event loop reads on sockets of its own: 20 Redis and memcached
// targets, one of them black-holed, fed by the cache pipeline on the host.
TEST_F(Partitions, OneBlackHoledCacheAmongTwentyDelaysNoOther) {
  Partition net;
  auto pipeline = start_cache_pipeline(CACHE_PIPELINE, 50);
  one_black_holed_target_delays_no_other(net, many_caches_yaml(net, 20), "pg", 20, Partition::kRedisAgain,
                                         "cache targets (Redis and memcached, 19 by host name)", 20s);
}

TEST_F(Partitions, SigtermDuringAPartitionStopsWithinTwoSeconds) {
  Partition net;
  const std::string path = write_temp_file(config_through(net), ".yaml");
  NsAgent agent(net, path);
  ASSERT_TRUE(wait_for([&] { return agent.value(lag_count("replica-2")) > 5; }, 15s)) << agent.process.log();
  net.blackhole(Partition::kPrimary);
  net.blackhole(Partition::kReplica1);
  net.blackhole(Partition::kReplica2);
  std::this_thread::sleep_for(300ms);  // queries are now stuck in the black hole
  const auto sent = Clock::now();
  EXPECT_EQ(agent.process.terminate(5s), std::optional<int>(0));
  const long stop_ms = ms_since(sent);
  EXPECT_LT(stop_ms, 2000);
  record_figure("fault SIGTERM with every server black-holed: the agent exited 0 in " + std::to_string(stop_ms) + " ms");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ghostwatch::testing
