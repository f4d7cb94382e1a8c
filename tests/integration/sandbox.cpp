#include "tests/integration/sandbox.h"

#include <curl/curl.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <cstdlib>
#include <random>
#include <stdexcept>

namespace ghostwatch::testing {

using namespace std::chrono_literals;

void SandboxTest::SetUp() {
  if (sandbox_available()) return;
  const char* require = std::getenv("GHOSTWATCH_REQUIRE_SANDBOX");
  if (require && std::string(require) == "1") FAIL() << "the sandbox env is not loaded but is required";
  GTEST_SKIP() << "sandbox not running (scripts/sandbox.sh up; source its env.sh)";
}

std::string agent_yaml() { return "agent:\n  id: it-" + std::to_string(getpid()) + "\nprobes:\n"; }

std::unique_ptr<ChildProcess> start_cache_pipeline(const std::string& binary, int delay_ms) {
  return std::make_unique<ChildProcess>(std::vector<std::string>{
      binary, require_env("GW_PG_PRIMARY_DSN") + " password=" + require_env("GW_PG_PASSWORD"),
      "it-" + std::to_string(getpid()), "pg", std::to_string(delay_ms), require_env("GW_REDIS_ADDR"),
      require_env("GW_MEMCACHED_ADDR")});
}

std::string pg_probe_yaml(const std::string& interval, const std::string& timeout, const std::string& extra_targets,
                          const std::string& query_timeout) {
  return R"(  - name: pg
    kind: postgres
    primary: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
    interval: )" + interval + R"(
    poll_interval: 10ms
    timeout: )" + timeout + R"(
    connect_timeout: 1s
    query_timeout: )" + query_timeout + R"(
    targets:
      - name: replica-1
        dsn: "${GW_PG_REPLICA1_DSN} password=${GW_PG_PASSWORD}"
      - name: replica-2
        dsn: "${GW_PG_REPLICA2_DSN} password=${GW_PG_PASSWORD}"
)" + extra_targets;
}

std::string maria_probe_yaml(const std::string& interval, const std::string& timeout) {
  return R"(  - name: maria
    kind: mysql
    primary: "mysql://ghostwatch:${GW_MARIA_PASSWORD}@${GW_MARIA_PRIMARY_ADDR}/"
    interval: )" + interval + R"(
    poll_interval: 5ms
    timeout: )" + timeout + R"(
    connect_timeout: 1s
    query_timeout: 1s
    targets:
      - name: replica
        dsn: "mysql://ghostwatch:${GW_MARIA_PASSWORD}@${GW_MARIA_REPLICA_ADDR}/"
)";
}

const nlohmann::json& named(const nlohmann::json& items, const std::string& name) {
  for (const auto& item : items) {
    if (item.at("name") == name) return item;
  }
  throw std::runtime_error("no " + name + " in " + items.dump());
}

const nlohmann::json& report_target(const nlohmann::json& report, const std::string& probe, const std::string& target) {
  return named(named(report.at("probes"), probe).at("targets"), target);
}

std::string pg_writable_relations(const std::string& role) {
  return admin_query(require_env("GW_PG_ADMIN_PRIMARY_DSN"),
                     "SELECT coalesce(string_agg(n.nspname || '.' || c.relname, ',' ORDER BY 1), '') FROM pg_class c "
                     "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND "
                     "n.nspname NOT IN ('pg_catalog', 'information_schema') AND "
                     "has_table_privilege('" + role + "', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')");
}

namespace {
// The gaps of a write load: `period` each, or drawn around it at random.
class Gaps {
 public:
  Gaps(std::chrono::microseconds period, Arrivals arrivals)
      : period_(period), arrivals_(arrivals), random_(std::random_device{}()),
        exponential_(1.0 / static_cast<double>(std::max<int64_t>(1, period.count()))) {}
  std::chrono::microseconds next() {
    if (arrivals_ == Arrivals::beat) return period_;
    if (arrivals_ == Arrivals::bursts && ++in_burst_ % kBurstWrites != 0) return {};
    return std::chrono::microseconds(static_cast<int64_t>(exponential_(random_)));
  }

 private:
  std::chrono::microseconds period_;
  Arrivals arrivals_;
  int in_burst_ = 0;
  std::mt19937_64 random_;
  std::exponential_distribution<double> exponential_;
};
}  // namespace

PgWriteLoad::PgWriteLoad(std::chrono::microseconds period, Arrivals arrivals) {
  const std::string dsn = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  admin_query(dsn, "CREATE TABLE IF NOT EXISTS public.write_load (id bigserial PRIMARY KEY, at timestamptz)");
  thread_ = std::jthread([this, dsn, gaps = Gaps(period, arrivals)](std::stop_token stop) mutable {
    PGconn* conn = PQconnectdb((dsn + " connect_timeout=5").c_str());
    auto next = std::chrono::steady_clock::now();
    while (!stop.stop_requested() && PQstatus(conn) == CONNECTION_OK) {
      PQclear(PQexec(conn, "INSERT INTO public.write_load (at) VALUES (now())"));
      ++writes_;
      next += gaps.next();
      std::this_thread::sleep_until(next);
    }
    PQfinish(conn);
  });
}
PgWriteLoad::~PgWriteLoad() = default;

std::string fixed(double value, int digits) {
  char out[32];
  std::snprintf(out, sizeof out, "%.*f", digits, value);
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string dsn_port(const std::string& dsn) {
  const auto at = dsn.find("port=");
  if (at == std::string::npos) return "";
  return dsn.substr(at + 5, dsn.find(' ', at) - at - 5);
}

std::string ms(double seconds) {
  char out[32];
  std::snprintf(out, sizeof out, "%.1f ms", seconds * 1e3);
  return out;
}

std::string series(const std::string& name, const std::string& probe, const std::string& target) {
  return name + "{probe=\"" + probe + "\",target=\"" + target + "\"}";
}

std::string role_series(const std::string& probe, const std::string& target, const std::string& role) {
  return "ghostwatch_target_role{probe=\"" + probe + "\",role=\"" + role + "\",target=\"" + target + "\"}";
}

double metric_or(const Agent& agent, const std::string& s, double fallback) {
  return metric_value(agent.metrics(), s).value_or(fallback);
}

ReplayPause::ReplayPause(std::string admin_dsn) : dsn_(std::move(admin_dsn)) {
  admin_query(dsn_, "SELECT pg_wal_replay_pause()");
}
ReplayPause::~ReplayPause() { resume(); }
// Replay that resumes may cancel the very session that resumed it (a recovery conflict with
// its snapshot), so success is judged by pg_is_wal_replay_paused() afterwards.
void ReplayPause::resume() {
  if (!paused_) return;
  std::string state, error;
  for (int attempt = 0; attempt < 5; ++attempt) {
    try_admin_query(dsn_, "SELECT pg_wal_replay_resume()", nullptr, &error);
    if (try_admin_query(dsn_, "SELECT pg_is_wal_replay_paused()", &state, &error) && state == "f") break;
  }
  EXPECT_EQ(state, "f") << "replay did not resume: " << error;
  paused_ = false;
}

StoppedReplicaThread::StoppedReplicaThread(std::string thread) : thread_(std::move(thread)) {
  maria_admin_query(require_env("GW_MARIA_ADMIN_REPLICA_DSN"), "STOP SLAVE " + thread_);
}
StoppedReplicaThread::~StoppedReplicaThread() { start(); }
namespace {
std::size_t append_body(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}
}  // namespace

nlohmann::json prometheus_get(const std::string& base_url, const std::string& path_and_query) {
  CURL* curl = curl_easy_init();
  std::string body;
  const std::string url = base_url + path_and_query;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &append_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  return nlohmann::json::parse(body, nullptr, false);
}

nlohmann::json prometheus_query(const std::string& base_url, const std::string& expr) {
  char* escaped = curl_easy_escape(nullptr, expr.c_str(), static_cast<int>(expr.size()));
  const auto r = prometheus_get(base_url, "/api/v1/query?query=" + std::string(escaped));
  curl_free(escaped);
  if (r.is_discarded() || r.value("status", "") != "success") return nlohmann::json::array();
  return r.at("data").at("result");
}

namespace {
std::string all_variables(std::string expr) {
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"$cluster", ".*"}, {"$probe", ".*"},
                                 {"$target", ".*"}, {"$__rate_interval", "1m"}}) {
    for (std::size_t at = expr.find(from); at != std::string::npos; at = expr.find(from, at + to.size())) {
      expr.replace(at, from.size(), to);
    }
  }
  return expr;
}
}  // namespace

nlohmann::json dashboard_json() {
  std::ifstream in(std::string(GHOSTWATCH_SOURCE_DIR) + "/dashboards/ghostwatch.json");
  return nlohmann::json::parse(in);
}

int expect_every_panel_query_has_data(const std::string& base_url) {
  int queries = 0;
  const nlohmann::json dashboard = dashboard_json();  // a temporary's member would dangle in the loop
  for (const auto& panel : dashboard.at("panels")) {
    for (const auto& t : panel.at("targets")) {
      const std::string expr = all_variables(t.at("expr"));
      EXPECT_TRUE(wait_for([&] { return !prometheus_query(base_url, expr).empty(); }, std::chrono::seconds(20)))
          << panel.at("title") << ": " << expr;
      ++queries;
    }
  }
  return queries;
}

CommandResult run_sandbox(const std::vector<std::string>& args, std::chrono::milliseconds deadline) {
  std::vector<std::string> argv{"/usr/bin/env", "GHOSTWATCH_SANDBOX_DIR=" + require_env("GW_SANDBOX_DIR"), "/bin/bash",
                                sandbox_script()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, deadline);
}

namespace {
// True when scripts/sandbox.sh ARGS succeeded, else a test failure with what it said.
bool sandbox_command(const std::vector<std::string>& args) {
  const auto r = run_sandbox(args);
  EXPECT_EQ(r.exit_code, 0) << "scripts/sandbox.sh " << ::testing::PrintToString(args) << ": " << r.err;
  return r.exit_code == 0;
}
}  // namespace

void StoppedReplicaThread::start() {
  if (!stopped_) return;
  sandbox_command({"start-replication", "maria-replica"});
  stopped_ = false;
}

void require_master_delay() {
  ASSERT_TRUE(sandbox_command({"check-delay", "maria-replica", require_env("GW_MARIA_DELAY_S")}))
      << "the MariaDB replica does not apply MASTER_DELAY as the sandbox set it";
}

MasterDelay::MasterDelay(const std::string& seconds) { set(seconds); }
MasterDelay::~MasterDelay() { set(require_env("GW_MARIA_DELAY_S")); }
void MasterDelay::set(const std::string& seconds) { sandbox_command({"set-delay", "maria-replica", seconds}); }

namespace {
std::string sql_literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}
bool receiver_streaming(const std::string& dsn) {
  std::string n, error;
  return try_admin_query(dsn, "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'", &n, &error) &&
         n == "1";
}
}  // namespace

// primary_conninfo takes effect on reload (PostgreSQL 13+): emptied, the startup process stops
// the WAL receiver and replays what it has; restored, it starts one again.
WalReceiverCut::WalReceiverCut(std::string admin_dsn) : dsn_(std::move(admin_dsn)) {
  conninfo_ = admin_query(dsn_, "SHOW primary_conninfo");
  if (conninfo_.empty()) throw std::runtime_error("the replica has no primary_conninfo to cut");
  admin_query(dsn_, "ALTER SYSTEM SET primary_conninfo = ''");
  admin_query(dsn_, "SELECT pg_reload_conf()");
  cut_ = true;
  const bool stopped = wait_for(
      [&] {
        std::string n, error;
        return try_admin_query(dsn_, "SELECT count(*) FROM pg_stat_wal_receiver", &n, &error) && n == "0";
      },
      10s);
  if (!stopped) throw std::runtime_error("the WAL receiver did not stop");
}
WalReceiverCut::~WalReceiverCut() { restore(); }
void WalReceiverCut::restore() {
  if (!cut_) return;
  admin_query(dsn_, "ALTER SYSTEM SET primary_conninfo = " + sql_literal(conninfo_));
  admin_query(dsn_, "SELECT pg_reload_conf()");
  cut_ = false;
  EXPECT_TRUE(wait_for([&] { return receiver_streaming(dsn_); }, 30s)) << "the WAL receiver did not stream again";
}

StoppedServer::StoppedServer(std::string name) : name_(std::move(name)) { sandbox("stop"); }
StoppedServer::~StoppedServer() { start(); }

void StoppedServer::start() {
  if (!stopped_) return;
  sandbox("start");
  stopped_ = false;
}

void StoppedServer::sandbox(const std::string& verb) { sandbox_command({verb, name_}); }

}  // namespace ghostwatch::testing
