// No secret anywhere: one distinctive password planted in every place a password can be given
// (inline in PostgreSQL DSNs and mysql:// URIs, password_file, ${ENV}, a Redis password, the web
// config's user), with connections that fail and connections that succeed, then looked for in
// everything the agent and the CLI show: the debug log, /metrics, /, /config, /readyz,
// check-config, the table and JSON reports, error messages, /proc/<pid>/cmdline.
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/base64.h"
#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;

class Secrets : public SandboxTest {};

// Sets the sandbox Redis's password for as long as it lives (and removes it after).
class RedisPassword {
 public:
  explicit RedisPassword(const std::string& password) : password_(password) { set(password, false); }
  ~RedisPassword() { set("", true); }

 private:
  void set(const std::string& value, bool authenticate) {
    const std::string addr = require_env("GW_REDIS_ADDR");
    redisContext* r = redisConnect(addr.substr(0, addr.rfind(':')).c_str(), std::stoi(addr.substr(addr.rfind(':') + 1)));
    ASSERT_TRUE(r != nullptr && !r->err);
    if (authenticate) freeReplyObject(redisCommand(r, "AUTH %s", password_.c_str()));
    auto* reply = static_cast<redisReply*>(redisCommand(r, "CONFIG SET requirepass %s", value.c_str()));
    EXPECT_TRUE(reply != nullptr && reply->type != REDIS_REPLY_ERROR) << (reply ? reply->str : "no reply");
    freeReplyObject(reply);
    redisFree(r);
  }
  std::string password_;
};

bool leaks(const std::string& text, const std::string& secret) { return text.find(secret) != std::string::npos; }

TEST_F(Secrets, APlantedPasswordAppearsNowhere) {
  const std::string pid = std::to_string(getpid());
  const std::string secret = "Gw7-Planted-" + pid + "-Xq", user = "gw_secret_" + pid;
  const std::string pg_admin = require_env("GW_PG_ADMIN_PRIMARY_DSN"), maria_admin = require_env("GW_MARIA_ADMIN_PRIMARY_DSN");
  admin_query(pg_admin, "CREATE ROLE " + user + " LOGIN PASSWORD '" + secret + "'; CREATE SCHEMA " + user +
                            " AUTHORIZATION " + user);
  maria_admin_query(maria_admin, "CREATE USER '" + user + "'@'127.0.0.1' IDENTIFIED BY '" + secret + "'");
  maria_admin_query(maria_admin, "GRANT CREATE, SELECT, INSERT, UPDATE ON `" + user + "`.* TO '" + user + "'@'127.0.0.1'");
  maria_admin_query(maria_admin, "GRANT SLAVE MONITOR ON *.* TO '" + user + "'@'127.0.0.1'");
  // The reconciler's table, in the role's own schema (first on its search_path), and its entry.
  admin_query(pg_admin, "CREATE TABLE " + user + ".accounts (id int PRIMARY KEY, version bigint NOT NULL); INSERT INTO " +
                            user + ".accounts VALUES (1, 1); ALTER TABLE " + user + ".accounts OWNER TO " + user);
  {
    const std::string addr = require_env("GW_REDIS_ADDR");
    redisContext* r = redisConnect(addr.substr(0, addr.rfind(':')).c_str(), std::stoi(addr.substr(addr.rfind(':') + 1)));
    ASSERT_TRUE(r != nullptr && !r->err);
    freeReplyObject(redisCommand(r, "SET secret-user-%s:1 1", pid.c_str()));
    redisFree(r);
  }
  const std::string password_file = write_temp_file(secret + "\n", ".pw");
  setenv("GW_TEST_SECRET", secret.c_str(), 1);
  const auto hash = run_command({"/usr/bin/mkpasswd", "-m", "bcrypt", "-R", "10", secret}, 30s);
  ASSERT_EQ(hash.exit_code, 0);
  const std::string web = write_temp_file("basic_auth_users:\n  scraper: " + hash.out.substr(0, hash.out.find('\n')) + "\n", ".yml");

  const std::string config_text = "agent:\n  id: it-secret-" + pid + "\n  log_level: debug\n  web_config: " + web + R"(
probes:
  - name: pg
    kind: postgres
    schema: )" + user + R"(
    primary: "${GW_PG_PRIMARY_DSN} user=)" + user + " password=" + secret + R"("
    interval: 100ms
    timeout: 3s
    connect_timeout: 1s
    targets:
      - name: from-file
        dsn: "${GW_PG_REPLICA1_DSN} user=)" + user + R"("
        password_file: )" + password_file + R"(
      - name: from-env
        dsn: "${GW_PG_REPLICA2_DSN} user=)" + user + R"( password=${GW_TEST_SECRET}"
      - name: refused
        dsn: "${GW_PG_REPLICA1_DSN} user=nobody_)" + pid + " password=" + secret + R"("
      - name: cache
        redis: "${GW_REDIS_ADDR}"
        key: "secret:{agent}:{probe}"
        password: "${GW_TEST_SECRET}"
    read_paths:
      - name: lb
        dsn: "${GW_PG_HAPROXY_DSN} user=)" + user + " password=" + secret + R"("
    read_delays: [0ms, 500ms]
  - name: maria
    kind: mysql
    database: )" + user + R"(
    primary: "mysql://)" + user + ":" + secret + R"(@${GW_MARIA_PRIMARY_ADDR}/"
    interval: 1200ms
    timeout: 5s
    connect_timeout: 1s
    targets:
      - name: replica
        dsn: "mysql://)" + user + R"(@${GW_MARIA_REPLICA_ADDR}/"
        password_file: )" + password_file + R"(
      - name: refused
        dsn: "mysql://nobody:)" + secret + R"(@${GW_MARIA_REPLICA_ADDR}/"
  - name: users
    kind: reconcile
    cache:
      redis: "${GW_REDIS_ADDR}"
      key: "secret-user-)" + pid + R"(:{id}"
      password: "${GW_TEST_SECRET}"
    source:
      probe: pg
      table: accounts
      id_column: id
      version_column: version
    every: 1s
    grace: 100ms
)";
  const std::string config = write_temp_file(config_text, ".yaml");
  std::vector<std::pair<std::string, std::string>> seen;  // where -> what it showed

  // check-config, and the errors of configs that hold the secret next to a mistake.
  const auto check = run_command({ghostwatch_binary(), "check-config", config}, 10s);
  EXPECT_EQ(check.exit_code, 0) << check.err;
  seen.emplace_back("check-config", check.out + check.err);
  for (const std::string& bad :
       {"probes:\n  - {name: p, kind: postgres, primary: \"host=x port=notaport password=" + secret + "\", targets: [{name: r, dsn: x}]}\n",
        "probes:\n  - {name: p, kind: mysql, primary: \"mysql://u:" + secret + "@host:99999/\", targets: [{name: r, dsn: \"mysql://u@h/\"}]}\n",
        "probes:\n  - {name: p, kind: postgres, primary: \"password=" + secret + "\", interval: 1 s, targets: [{name: r, dsn: x}]}\n"}) {
    const std::string path = write_temp_file(bad, ".yaml");
    const auto r = run_command({ghostwatch_binary(), "check-config", path}, 10s);
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    seen.emplace_back("config error", r.out + r.err);
    std::remove(path.c_str());
  }

  {
    // Connections that fail: Redis has no password yet, so AUTH is refused; "refused" targets
    // never log in. Then Redis gets the password and every other connection succeeds.
    Agent agent(config, free_port());
    const std::string auth = "Authorization: Basic " + base64_encode("scraper:" + secret) + "\r\n";
    const auto get = [&](const std::string& path) { return http_request(agent.port(), "GET", path, auth); };
    ASSERT_TRUE(wait_for([&] { return get("/metrics").body.find("target=\"refused\"} 0") != std::string::npos; }, 15s))
        << agent.log();
    EXPECT_EQ(http_request(agent.port(), "GET", "/metrics").status, 401);
    std::this_thread::sleep_for(1500ms);
    {
      RedisPassword redis(secret);
      const std::string cache_up = "ghostwatch_target_up{probe=\"pg\",target=\"cache\"} 1";
      EXPECT_TRUE(wait_for([&] { return get("/metrics").body.find(cache_up) != std::string::npos; }, 15s)) << agent.log();
      const std::string maria_seen = "ghostwatch_visibility_lag_seconds_count{probe=\"maria\",target=\"replica\"}";
      EXPECT_TRUE(wait_for([&] { return metric_value(get("/metrics").body, maria_seen).value_or(0) > 0; }, 20s)) << agent.log();
      const std::string swept = "ghostwatch_cache_sweeps_total{probe=\"users\",result=\"ok\",target=\"redis\"}";
      EXPECT_TRUE(wait_for([&] { return metric_value(get("/metrics").body, swept).value_or(0) > 0; }, 15s))
          << "the reconciler logs in to Redis with the password\n" << agent.log();
      for (const char* path : {"/metrics", "/", "/config", "/readyz"}) seen.emplace_back(path, get(path).body);
      const std::string refused = write_temp_file(config_text + "  - name: broken\n    kind: postgres\n    primary: \"password=" +
                                                     secret + "\"\n    interval: 1 s\n    targets: [{name: r, dsn: x}]\n",
                                                 ".yaml");
      // The reload reads the agent's own file: swap its content for a refused one, then back.
      std::ofstream(config, std::ios::trunc) << std::ifstream(refused).rdbuf();
      seen.emplace_back("POST /-/reload (refused)", http_request(agent.port(), "POST", "/-/reload", auth).body);
      std::ofstream(config, std::ios::trunc) << config_text;
      std::remove(refused.c_str());
      std::stringstream cmdline;
      cmdline << std::ifstream("/proc/" + std::to_string(agent.pid()) + "/cmdline").rdbuf();
      seen.emplace_back("/proc/<pid>/cmdline", cmdline.str());
    }
    agent.terminate(5s);
    seen.emplace_back("agent log (debug)", agent.log());
    EXPECT_NE(agent.log().find("level=debug"), std::string::npos) << "the log was at debug level";
    EXPECT_NE(agent.log().find("refused"), std::string::npos);
  }

  // One-shot reports, with the same mix of working and refused connections.
  for (const char* output : {"table", "json"}) {
    const auto r = run_command({ghostwatch_binary(), "probe", "--config", config, "--canaries", "2", "--output", output}, 120s);
    EXPECT_EQ(r.exit_code, 1) << "the refused targets make the run fail\n" << r.out << r.err;
    EXPECT_NE(r.out.find("refused"), std::string::npos);
    seen.emplace_back(std::string("probe --output ") + output, r.out + r.err);
  }

  for (const auto& [where, text] : seen) {
    EXPECT_FALSE(leaks(text, secret)) << "the password shows in " << where << ":\n" << text;
    EXPECT_FALSE(text.empty()) << where << " showed nothing: the search would prove nothing";
  }
  unsetenv("GW_TEST_SECRET");
  admin_query(pg_admin, "DROP SCHEMA " + user + " CASCADE; DROP ROLE " + user);
  maria_admin_query(maria_admin, "DROP USER '" + user + "'@'127.0.0.1'");
  maria_admin_query(maria_admin, "DROP DATABASE IF EXISTS `" + user + "`");
  for (const std::string& f : {config, web, password_file}) std::remove(f.c_str());
}

}  // namespace
}  // namespace ghostwatch::testing
