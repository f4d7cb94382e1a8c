// TLS to every server, on the sandbox brought up with --tls (scripts/sandbox_tls.sh): verified
// connections of every kind measure what they measure in the clear, and a server with a
// certificate the client must refuse (another CA, another name) is refused before any secret
// is sent, as an impostor server that records all it receives shows.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>

#include "probes/cache/redis_link.h"
#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;

class Tls : public SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (std::getenv("GW_TLS_DIR") == nullptr) {
      const char* require = std::getenv("GHOSTWATCH_REQUIRE_SANDBOX");
      if (require && std::string(require) == "1") FAIL() << "the sandbox has no TLS (scripts/sandbox.sh up --tls)";
      GTEST_SKIP() << "the sandbox has no TLS (scripts/sandbox.sh up --tls)";
    }
  }
  static std::string tls_file(const std::string& name) { return require_env("GW_TLS_DIR") + "/" + name; }
  static std::string host_of(const std::string& address) { return address.substr(0, address.rfind(':')); }
  static std::string port_of(const std::string& address) { return address.substr(address.rfind(':') + 1); }
};

bool accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A plain local port whose connections socat carries over TLS (client certificate, verified
// server) to `address`: the reference cache pipeline speaks plain TCP.
// Returns once the tunnel accepts connections.
std::unique_ptr<ChildProcess> tls_tunnel(int port, const std::string& address, const std::string& dir) {
  auto tunnel = std::make_unique<ChildProcess>(std::vector<std::string>{
      "/usr/bin/socat", "TCP-LISTEN:" + std::to_string(port) + ",bind=127.0.0.1,reuseaddr,fork",
      "OPENSSL:" + address + ",cafile=" + dir + "/ca.crt,cert=" + dir + "/client.crt,key=" + dir +
          "/client.key,verify=1,commonname=localhost"});
  EXPECT_TRUE(wait_for([port] { return accepts(port); }, 10s))
      << "socat never listened on " << port << ": " << tunnel->log();
  return tunnel;
}

std::string agent_id() { return "it-" + std::to_string(getpid()); }

nlohmann::json probe_report(const std::string& config_text, int canaries, int expected_exit) {
  const std::string config = write_temp_file(config_text, ".yaml");
  auto r = run_command({ghostwatch_binary(), "probe", "--config", config, "--canaries", std::to_string(canaries),
                        "--output", "json"},
                       120s);
  EXPECT_EQ(r.exit_code, expected_exit) << r.out << r.err;
  return nlohmann::json::parse(r.out);
}

TEST_F(Tls, EveryConnectionKindVerifiesItsServerAndMeasuresAsInTheClear) {
  const std::string dir = require_env("GW_TLS_DIR");
  const int redis_port = free_port(), memcached_port = free_port();
  auto redis_tunnel = tls_tunnel(redis_port, require_env("GW_REDIS_TLS_ADDR"), dir);
  auto memcached_tunnel = tls_tunnel(memcached_port, require_env("GW_MEMCACHED_TLS_ADDR"), dir);
  setenv("CACHE_PIPELINE_REDIS_PASSWORD", require_env("GW_PG_PASSWORD").c_str(), 1);
  ChildProcess pipeline({CACHE_PIPELINE, require_env("GW_PG_PRIMARY_DSN") + " password=" + require_env("GW_PG_PASSWORD"),
                         agent_id(), "pgtls", "50", "127.0.0.1:" + std::to_string(redis_port),
                         "127.0.0.1:" + std::to_string(memcached_port)});
  unsetenv("CACHE_PIPELINE_REDIS_PASSWORD");
  const std::string files = "{ca_file: " + dir + "/ca.crt, cert_file: " + dir + "/client.crt, key_file: " + dir +
                            "/client.key}";
  const std::string pw = require_env("GW_SANDBOX_DIR") + "/agent.pw";
  // PostgreSQL: the role ghostwatch_cert logs in by its certificate only (hostssl ... cert;
  // hostnossl rejects it), by the name localhost (verify-full checks it). MariaDB: the user
  // ghostwatch_x509 REQUIRE X509, verify_identity against 127.0.0.1, polled on the event loop
  // (mariatls) and waited on by a thread (mariawait). redis-tls and
  // memcached-tls have no plain port.
  const std::string config = agent_yaml() + R"(  - name: pgtls
    kind: postgres
    primary: "${GW_PG_TLS_PRIMARY_DSN}"
    interval: 200ms
    poll_interval: 5ms
    timeout: 10s
    targets:
      - name: replica-1
        dsn: "${GW_PG_TLS_REPLICA1_DSN}"
      - name: replica-2
        dsn: "${GW_PG_TLS_REPLICA2_DSN}"
      - name: redis
        redis: "${GW_REDIS_TLS_ADDR}"
        key: "canary:{agent}:{probe}"
        password_file: )" + pw + R"(
        tls: )" + files + R"(
      - name: memcached
        memcached: "${GW_MEMCACHED_TLS_ADDR}"
        key: "canary:{agent}:{probe}"
        tls: )" + files + R"(
    read_paths:
      - name: replica-2
        dsn: "${GW_PG_TLS_REPLICA2_DSN}"
    read_delays: [0ms, 400ms]
  - name: mariatls
    kind: mysql
    primary: {dsn: "${GW_MARIA_TLS_PRIMARY_DSN}", password_file: )" + pw + R"(}
    interval: 1200ms
    poll_interval: 5ms
    timeout: 10s
    targets:
      - name: replica
        dsn: "${GW_MARIA_TLS_REPLICA_DSN}"
        password_file: )" + pw + R"(
  - name: mariawait
    kind: mysql
    primary: {dsn: "${GW_MARIA_TLS_PRIMARY_DSN}", password_file: )" + pw + R"(}
    interval: 1200ms
    wait: server
    timeout: 10s
    targets:
      - name: replica
        dsn: "${GW_MARIA_TLS_REPLICA_DSN}"
        password_file: )" + pw + R"(
)";
  ASSERT_EQ(run_sandbox({"check-delay", "maria-replica"}).exit_code, 0);
  // MariaDB canaries further apart than MASTER_DELAY, so that each is applied after exactly the
  // delay (closer ones are applied in batches, earlier: see mysql_replication_test.cpp).
  const nlohmann::json report = probe_report(config, 8, 0);
  for (const auto& [probe, target] : std::vector<std::pair<std::string, std::string>>{
           {"pgtls", "replica-1"}, {"pgtls", "replica-2"}, {"pgtls", "redis"}, {"pgtls", "memcached"},
           {"mariatls", "replica"}, {"mariawait", "replica"}}) {
    const auto& t = report_target(report, probe, target);
    EXPECT_EQ(t.at("samples").get<int>(), 8) << probe << "/" << target << ": " << t.dump();
    EXPECT_EQ(t.at("errors").get<int>(), 0) << probe << "/" << target << ": " << t.dump();
  }
  if (report_target(report, "pgtls", "redis").at("samples").get<int>() == 0) {
    ADD_FAILURE() << "the pipeline said: " << pipeline.log() << "\ntunnels: " << redis_tunnel->log() << memcached_tunnel->log();
    return;
  }
  // The same physics as in the clear: the delays the sandbox injects.
  EXPECT_GE(report_target(report, "pgtls", "replica-2").at("p50_seconds").get<double>(), kLeastApplyDelayLag);
  EXPECT_GE(report_target(report, "pgtls", "redis").at("p50_seconds").get<double>(), 0.045);
  EXPECT_GE(report_target(report, "pgtls", "memcached").at("p50_seconds").get<double>(), 0.045);
  EXPECT_GE(report_target(report, "mariatls", "replica").at("p50_seconds").get<double>(), 0.95);
  // wait: server waits on a connection of a thread of its own, over TLS as well.
  EXPECT_GE(report_target(report, "mariawait", "replica").at("p50_seconds").get<double>(), 0.95);
  const auto& path = named(named(report.at("probes"), "pgtls").at("read_paths"), "replica-2");
  const auto& at_once = path.at("delays").at(0);
  EXPECT_EQ(at_once.at("errors").get<int>(), 0) << path.dump();
  EXPECT_GE(at_once.at("stale").get<int>(), 7) << "replica-2 is 200 ms behind: reads at once are stale " << path.dump();
  EXPECT_EQ(path.at("delays").at(1).at("stale").get<int>(), 0) << path.dump();
  record_figure("TLS, every kind verified: replica-2 p50 " +
                ms(report_target(report, "pgtls", "replica-2").at("p50_seconds").get<double>()) + ", redis p50 " +
                ms(report_target(report, "pgtls", "redis").at("p50_seconds").get<double>()) + ", memcached p50 " +
                ms(report_target(report, "pgtls", "memcached").at("p50_seconds").get<double>()) + ", maria p50 " +
                ms(report_target(report, "mariatls", "replica").at("p50_seconds").get<double>()));
}

// An impostor on a port of its own, recording each connection (tests/integration/impostor_tls.py).
struct Impostor {
  Impostor(const std::string& protocol, const std::string& certificate, const std::string& dir)
      : port(free_port()), log(write_temp_file("", ".jsonl")),
        process({"/usr/bin/python3", IMPOSTOR_TLS, protocol, std::to_string(port), dir + "/" + certificate + ".crt",
                 dir + "/" + certificate + ".key", log}) {}
  std::vector<nlohmann::json> connections() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  int port;
  std::string log;
  ChildProcess process;
};

std::string hex(const std::string& text) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text) out += {digits[c >> 4], digits[c & 15]};
  return out;
}

TEST_F(Tls, AServerWithTheWrongCertificateIsRefusedBeforeAnySecretIsSent) {
  const std::string dir = require_env("GW_TLS_DIR");
  const std::string secret = "impostor-must-never-see-" + std::to_string(getpid());
  const std::string secret_file = write_temp_file(secret, ".pw");
  struct Case {
    std::string target, protocol, certificate, expected;
  };
  // impostor: the right name from another CA; wrong-name: the right CA for wrong.example.
  const std::vector<Case> cases = {
      {"pg-other-ca", "postgres", "impostor", "certificate verify failed"},
      {"pg-wrong-name", "postgres", "wrong-name", "does not match host name \"localhost\""},
      {"maria-other-ca", "mysql", "impostor", "certificate"},
      {"maria-wrong-name", "mysql", "wrong-name", "certificate"},
      {"maria-verify-ca-other-ca", "mysql", "impostor", "certificate"},
      {"redis-other-ca", "redis", "impostor", "TLS certificate verify failed"},
      {"redis-wrong-name", "redis", "wrong-name", "TLS certificate verify failed: IP address mismatch"},
  };
  std::map<std::string, std::unique_ptr<Impostor>> impostors;
  for (const Case& c : cases) impostors[c.target] = std::make_unique<Impostor>(c.protocol, c.certificate, dir);
  auto port = [&](const std::string& target) { return std::to_string(impostors.at(target)->port); };
  const std::string pg_tls = "dbname=app user=ghostwatch sslmode=verify-full sslrootcert=" + dir + "/ca.crt";
  const std::string maria_tls = "ssl-ca=" + dir + "/ca.crt&ssl-cert=" + dir + "/client.crt&ssl-key=" + dir + "/client.key";
  const std::string config = agent_yaml() + R"(  - name: pgtls
    kind: postgres
    primary: "${GW_PG_TLS_PRIMARY_DSN}"
    interval: 200ms
    timeout: 2s
    connect_timeout: 2s
    targets:
      - {name: pg-other-ca, dsn: "host=localhost port=)" + port("pg-other-ca") + " " + pg_tls + R"(", password_file: )" +
                             secret_file + R"(}
      - {name: pg-wrong-name, dsn: "host=localhost port=)" + port("pg-wrong-name") + " " + pg_tls +
                             R"(", password_file: )" + secret_file + R"(}
      - name: redis-other-ca
        redis: "127.0.0.1:)" + port("redis-other-ca") + R"("
        key: "canary:{agent}:{probe}"
        password_file: )" + secret_file + R"(
        tls: {ca_file: )" + dir + R"(/ca.crt}
      - name: redis-wrong-name
        redis: "127.0.0.1:)" + port("redis-wrong-name") + R"("
        key: "canary:{agent}:{probe}"
        password_file: )" + secret_file + R"(
        tls: {ca_file: )" + dir + R"(/ca.crt}
  - name: mariatls
    kind: mysql
    primary: {dsn: "${GW_MARIA_TLS_PRIMARY_DSN}", password_file: "${GW_SANDBOX_DIR}/agent.pw"}
    interval: 200ms
    timeout: 2s
    connect_timeout: 2s
    targets:
      - {name: maria-other-ca, dsn: "mysql://ghostwatch@127.0.0.1:)" + port("maria-other-ca") +
                             "/?ssl-mode=verify_identity&" + maria_tls + R"(", password_file: )" + secret_file + R"(}
      - {name: maria-wrong-name, dsn: "mysql://ghostwatch@127.0.0.1:)" + port("maria-wrong-name") +
                             "/?ssl-mode=verify_identity&" + maria_tls + R"(", password_file: )" + secret_file + R"(}
      - {name: maria-verify-ca-other-ca, dsn: "mysql://ghostwatch@127.0.0.1:)" + port("maria-verify-ca-other-ca") +
                             "/?ssl-mode=verify_ca&" + maria_tls + R"(", password_file: )" + secret_file + R"(}
)";
  const nlohmann::json report = probe_report(config, 3, 1);
  for (const Case& c : cases) {
    const std::string probe = c.protocol == "mysql" ? "mariatls" : "pgtls";
    const auto& t = report_target(report, probe, c.target);
    EXPECT_EQ(t.at("samples").get<int>(), 0) << c.target;
    EXPECT_GT(t.at("errors").get<int>(), 0) << c.target;
    const std::string error = t.value("last_error", "");
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.target << ": " << error;
    // The event loop reaches localhost at the address it looked up, which libpq names.
    EXPECT_NE(error.find("127.0.0.1"), std::string::npos) << c.target << ": the error names the host: " << error;
    EXPECT_NE(error.find(port(c.target)), std::string::npos) << c.target << ": the error names the port: " << error;
    EXPECT_EQ(error.find(secret), std::string::npos) << c.target;
    const auto connections = impostors.at(c.target)->connections();
    ASSERT_FALSE(connections.empty()) << c.target << ": the client never reached the impostor";
    for (const auto& conn : connections) {
      const std::string before = conn.at("before_tls"), after = conn.at("after_tls");
      EXPECT_EQ(after, "") << c.target << ": application bytes reached the impostor: " << conn.dump();
      EXPECT_EQ(before.find(hex(secret)), std::string::npos) << c.target << ": " << conn.dump();
      EXPECT_EQ(before.find(hex("AUTH")), std::string::npos) << c.target << ": " << conn.dump();
      EXPECT_EQ(before.find(hex("ghostwatch")), std::string::npos) << c.target << ": the user name leaked: " << conn.dump();
    }
    const auto& first = connections.front();
    record_figure("TLS refusal, " + c.target + ": the impostor received " +
                  std::to_string(first.at("before_tls").get<std::string>().size() / 2) + " bytes in the clear, handshake " +
                  first.at("handshake").get<std::string>() + ", " +
                  std::to_string(first.at("after_tls").get<std::string>().size() / 2) +
                  " bytes after it; the agent said: " + error);
  }
}

// The reconciler's Redis side (RedisLink on its thread) over TLS with a client certificate and
// AUTH: 200 entries, 3 of them stale, found exactly and repaired.
TEST_F(Tls, TheReconcilerReadsRedisOverTls) {
  const std::string dir = require_env("GW_TLS_DIR");
  const std::string address = require_env("GW_REDIS_TLS_ADDR");
  const std::string table = "tls_users_" + std::to_string(getpid());
  const std::string prefix = "tlsuser" + std::to_string(getpid()) + ":";
  const std::string admin = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  admin_query(admin, "DROP TABLE IF EXISTS " + table);
  admin_query(admin, "CREATE TABLE " + table + " (id int PRIMARY KEY, version bigint NOT NULL)");
  admin_query(admin, "INSERT INTO " + table + " SELECT g, CASE WHEN g IN (7, 70, 170) THEN 2 ELSE 1 END FROM generate_series(1, 200) g");
  admin_query(admin, "GRANT SELECT ON " + table + " TO ghostwatch");
  CacheTargetConfig cache;
  cache.host = host_of(address);
  cache.port = std::stoi(port_of(address));
  cache.password = require_env("GW_PG_PASSWORD");
  cache.tls = TlsClientFiles{dir + "/ca.crt", dir + "/client.crt", dir + "/client.key", "localhost"};
  cache::RedisLink writer(cache, 5s, 5s);
  ASSERT_TRUE(writer.connect().ok());
  for (int id = 1; id <= 200; ++id) writer.append({"SET", prefix + std::to_string(id), "{\"version\":1}"});
  ASSERT_TRUE(writer.flush().ok());
  for (int id = 1; id <= 200; ++id) {
    auto reply = writer.reply("SET");
    ASSERT_TRUE(reply.ok()) << reply.error().message;
    freeReplyObject(reply.value());
  }
  const std::string config = write_temp_file(agent_yaml() + R"(  - name: users-tls
    kind: reconcile
    cache:
      redis: "${GW_REDIS_TLS_ADDR}"
      key: ")" + prefix + R"({id}"
      format: json
      field: /version
      password_file: ${GW_SANDBOX_DIR}/agent.pw
      tls: {ca_file: )" + dir + "/ca.crt, cert_file: " + dir + "/client.crt, key_file: " + dir + R"(/client.key}
    source:
      dsn: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
      table: )" + table + R"(
      id_column: id
      version_column: version
    grace: 200ms
)",
                                             ".yaml");
  auto r = run_command({ghostwatch_binary(), "reconcile", "--config", config, "--output", "json", "--repair"}, 60s);
  ASSERT_EQ(r.exit_code, 1) << "mismatches exit 1\n" << r.out << r.err;
  const auto p = nlohmann::json::parse(r.out).at("probes").at(0);
  EXPECT_EQ(p.at("checked"), 200);
  EXPECT_EQ(p.at("counts").at("stale"), 3);
  EXPECT_EQ(p.at("repaired").size(), 3u);
  writer.append({"EXISTS", prefix + "7", prefix + "8"});
  ASSERT_TRUE(writer.flush().ok());
  auto exists = writer.reply("EXISTS");
  ASSERT_TRUE(exists.ok());
  EXPECT_EQ(static_cast<redisReply*>(exists.value())->integer, 1) << "7 repaired (deleted), 8 left";
  freeReplyObject(exists.value());
  admin_query(admin, "DROP TABLE " + table);
}

// Makes NAME.crt and NAME.key in `dir`, signed by the sandbox's CA with serial `serial`, then
// moves them over the files in use (as a certificate manager does: never half-written).
void issue(const std::string& dir, const std::string& name, const std::string& subject, int serial) {
  const std::string ca = require_env("GW_TLS_DIR");
  const std::string script =
      "set -e; cd '" + dir + "'; openssl req -newkey rsa:2048 -nodes -subj '" + subject + "' -keyout new.key -out new.csr;"
      " printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > new.ext;"
      " openssl x509 -req -in new.csr -CA '" + ca + "/ca.crt' -CAkey '" + ca + "/ca.key' -set_serial " +
      std::to_string(serial) + " -days 2 -extfile new.ext -out new.crt;"
      " chmod 600 new.key; mv new.key " + name + ".key; mv new.crt " + name + ".crt; rm -f new.csr new.ext";
  auto r = run_command({"/bin/sh", "-c", script}, 30s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

// The serial numbers (decimal) of the client certificates the agent's sessions on a replica
// logged in with, as the server saw them.
std::set<std::string> client_serials(const std::string& admin_dsn) {
  std::set<std::string> out;
  std::istringstream rows(admin_query(admin_dsn,
                                      "SELECT s.client_serial FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                                      "WHERE a.usename = 'ghostwatch_cert' AND a.application_name = 'ghostwatch'"));
  for (std::string line; std::getline(rows, line);) {
    if (!line.empty()) out.insert(line);
  }
  return out;
}

// The serial (hex) of the certificate the agent's HTTPS endpoint presents to a new connection.
std::string served_serial(int port) {
  auto r = run_command({"/bin/sh", "-c",
                        "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                            " </dev/null 2>/dev/null | openssl x509 -noout -serial"},
                       10s);
  return r.out.substr(0, r.out.find('\n'));
}

double metric_in(const std::string& text, const std::string& series) { return metric_value(text, series).value_or(-1); }

// Client certificates, the CA file and the agent's own HTTPS certificate rotated behind
// unchanged paths while the agent runs: after SIGHUP every new connection uses the new ones,
// and the samples go on.
TEST_F(Tls, RotatedCertificatesAreUsedAfterAReloadAndSamplesGoOn) {
  const std::string tls = require_env("GW_TLS_DIR");
  const std::string dir = write_temp_file("", ".dir");
  std::remove(dir.c_str());
  ASSERT_EQ(run_command({"/bin/sh", "-c", "mkdir -m 700 '" + dir + "' && cp '" + tls + "/ca.crt' '" + dir + "/'"}, 5s)
                .exit_code,
            0);
  issue(dir, "client", "/CN=ghostwatch_cert", 1001);
  issue(dir, "agent", "/CN=localhost", 2001);
  const std::string files = "{ca_file: " + dir + "/ca.crt, cert_file: " + dir + "/client.crt, key_file: " + dir +
                            "/client.key}";
  const std::string replica = "host=localhost port=" + dsn_port(require_env("GW_PG_TLS_REPLICA1_DSN")) +
                              " dbname=app user=ghostwatch_cert sslmode=verify-full sslrootcert=" + dir +
                              "/ca.crt sslcert=" + dir + "/client.crt sslkey=" + dir + "/client.key";
  // The cache holds a seq no canary reaches: each canary is seen at its first poll, a sample each.
  CacheTargetConfig cache;
  cache.host = host_of(require_env("GW_REDIS_TLS_ADDR"));
  cache.port = std::stoi(port_of(require_env("GW_REDIS_TLS_ADDR")));
  cache.password = require_env("GW_PG_PASSWORD");
  cache.tls = TlsClientFiles{tls + "/ca.crt", tls + "/client.crt", tls + "/client.key", ""};
  cache::RedisLink redis(cache, 5s, 5s);  // the test's own connection, with the sandbox's files
  ASSERT_TRUE(redis.connect().ok());
  redis.append({"SET", "canary:" + agent_id() + ":pgtls", "999999999"});
  ASSERT_TRUE(redis.flush().ok());
  auto set = redis.reply("SET");
  ASSERT_TRUE(set.ok());
  freeReplyObject(set.value());
  const std::string config = write_temp_file(agent_yaml() + R"(  - name: pgtls
    kind: postgres
    primary: "${GW_PG_TLS_PRIMARY_DSN}"
    interval: 200ms
    targets:
      - name: replica-1
        dsn: ")" + replica + R"("
      - name: redis
        redis: "${GW_REDIS_TLS_ADDR}"
        key: "canary:{agent}:{probe}"
        password_file: ${GW_SANDBOX_DIR}/agent.pw
        tls: )" + files + R"(
)",
                                             ".yaml");
  const std::string web = write_temp_file("tls_server_config:\n  cert_file: " + dir + "/agent.crt\n  key_file: " + dir +
                                              "/agent.key\n",
                                          ".yml");
  const int port = free_port();
  ChildProcess agent({ghostwatch_binary(), "run", "--config", config, "--listen", "127.0.0.1:" + std::to_string(port),
                      "--web-config", web});
  const std::string admin = require_env("GW_PG_ADMIN_REPLICA1_DSN");
  auto metrics = [&] {
    return run_command({"/usr/bin/curl", "-s", "--cacert", tls + "/ca.crt", "https://localhost:" + std::to_string(port) + "/metrics"},
                       10s)
        .out;
  };
  const std::string replica_samples = series("ghostwatch_visibility_lag_seconds_count", "pgtls", "replica-1");
  const std::string redis_samples = series("ghostwatch_visibility_lag_seconds_count", "pgtls", "redis");
  ASSERT_TRUE(wait_for([&] { return metric_in(metrics(), redis_samples) >= 3 && metric_in(metrics(), replica_samples) >= 3; }, 20s))
      << agent.log();
  EXPECT_EQ(client_serials(admin), std::set<std::string>{"1001"});
  EXPECT_EQ(served_serial(port), "serial=07D1");  // 2001

  issue(dir, "client", "/CN=ghostwatch_cert", 1002);
  issue(dir, "agent", "/CN=localhost", 2002);
  ASSERT_EQ(run_command({"/bin/sh", "-c", "cat '" + tls + "/other-ca.crt' >> '" + dir + "/ca.crt'"}, 5s).exit_code, 0);
  const std::string before = metrics();
  const auto reloaded = std::chrono::steady_clock::now();
  agent.signal(SIGHUP);
  EXPECT_TRUE(wait_for([&] { return client_serials(admin) == std::set<std::string>{"1002"}; }, 20s))
      << "the replica's sessions still show the old certificate: " << ::testing::PrintToString(client_serials(admin))
      << agent.log();
  const double switched = seconds_since(reloaded);
  EXPECT_EQ(served_serial(port), "serial=07D2");  // 2002
  EXPECT_TRUE(wait_for([&] {
    const std::string now = metrics();
    return metric_in(now, redis_samples) >= metric_in(before, redis_samples) + 3 &&
           metric_in(now, replica_samples) >= metric_in(before, replica_samples) + 3;
  }, 20s)) << "samples stopped after the rotation\n" << agent.log();
  record_figure("TLS rotation: the replica saw only the new client certificate " + ms(switched) +
                " after SIGHUP; the agent's HTTPS endpoint served serial 2002 to the next connection; samples went on: " +
                "replica-1 " + fixed(metric_in(before, replica_samples), 0) + " -> " +
                fixed(metric_in(metrics(), replica_samples), 0) + ", redis " + fixed(metric_in(before, redis_samples), 0) +
                " -> " + fixed(metric_in(metrics(), redis_samples), 0));
  EXPECT_NE(agent.log().find("probe pgtls: its TLS files changed; restarting it"), std::string::npos) << agent.log();
  EXPECT_NE(agent.log().find("the agent's TLS certificate was re-read"), std::string::npos) << agent.log();
  run_command({"/bin/rm", "-rf", dir}, 5s);
}

// require_secure_transport on both MariaDB servers for the test's duration (sandbox tls-require).
class SecureTransportRequired {
 public:
  SecureTransportRequired() { EXPECT_EQ(run_sandbox({"tls-require", "on"}).exit_code, 0); }
  ~SecureTransportRequired() { EXPECT_EQ(run_sandbox({"tls-require", "off"}).exit_code, 0); }
};

TEST_F(Tls, WithRequireSecureTransportPlainTcpIsRefusedAndTlsMeasures) {
  const std::string pw = require_env("GW_SANDBOX_DIR") + "/agent.pw";
  const std::string config = agent_yaml() + R"(  - name: mariatls
    kind: mysql
    primary: {dsn: "${GW_MARIA_TLS_PRIMARY_DSN}", password_file: )" + pw + R"(}
    interval: 300ms
    timeout: 5s
    targets:
      - name: replica
        dsn: "${GW_MARIA_TLS_REPLICA_DSN}"
        password_file: )" + pw + R"(
      - name: replica-plain
        dsn: "${GW_MARIA_REPLICA_DSN}"
        password_file: )" + pw + R"(
)";
  {
    SecureTransportRequired required;
    const nlohmann::json report = probe_report(config, 5, 1);
    EXPECT_EQ(report_target(report, "mariatls", "replica").at("samples").get<int>(), 5) << report.dump();
    const auto& plain = report_target(report, "mariatls", "replica-plain");
    EXPECT_EQ(plain.at("samples").get<int>(), 0);
    // MariaDB says nothing of TLS when it refuses a plain connection for want of it.
    EXPECT_NE(plain.value("last_error", "").find("Access denied for user 'ghostwatch'"), std::string::npos) << plain.dump();
  }
  const nlohmann::json after = probe_report(config, 3, 0);
  EXPECT_EQ(report_target(after, "mariatls", "replica-plain").at("samples").get<int>(), 3)
      << "the same plain target measures once TLS is no longer required: " << after.dump();
}

TEST_F(Tls, CheckConfigWarnsOfAnUnverifiedServer) {
  const std::string config = write_temp_file(agent_yaml() + R"(  - name: pg
    kind: postgres
    primary: "host=127.0.0.1 port=5432 dbname=app user=u sslmode=require"
    targets:
      - {name: verified, dsn: "host=localhost dbname=app user=u sslmode=verify-full sslrootcert=)" +
                                                 require_env("GW_TLS_DIR") + R"(/ca.crt"}
  - name: maria
    kind: mysql
    primary: "mysql://u@127.0.0.1:3306/?ssl-mode=required"
    targets:
      - {name: replica, dsn: "mysql://u@127.0.0.1:3307/?ssl-mode=verify_identity&ssl-ca=)" +
                                                 require_env("GW_TLS_DIR") + R"(/ca.crt"}
)",
                                             ".yaml");
  auto r = run_command({ghostwatch_binary(), "check-config", "--config", config}, 20s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("probes[0].primary: sslmode=require encrypts but does not verify the server"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("probes[1].primary: ssl-mode=required encrypts but does not verify the server"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("targets[0]"), std::string::npos) << "verified DSNs get no warning: " << r.err;
}

}  // namespace
}  // namespace ghostwatch::testing
