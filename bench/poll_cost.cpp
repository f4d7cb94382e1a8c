// Poll cost: the agent's CPU time per poll against blocking clients (libpq, or the MariaDB
// connector with --mysql) running the same poll statement, in one run.
//
// Method: against a sandbox (scripts/sandbox.sh up; source its env.sh), for each target count N,
// right after one another so that all three see the same machine:
//   1. the back-to-back floor: one connection to replica-1, the reader's poll statement
//      (pg::poll_statement prepared; with --mysql the event-loop reader's text statement, the
//      canary's seq and @@GLOBAL.gtid_slave_pos) executed back to back for the run's seconds,
//      never sleeping; this process's CPU time (user + system, getrusage) divided by the
//      executions;
//   2. the paced floor: the same polls as the agent's run below, done by the simplest blocking
//      client: one thread, N connections over the replicas (PostgreSQL's two, MariaDB's one),
//      each polled every P in turn,
//      sleeping until each poll is due. It pays what any poller of N targets at that pace pays
//      and the back-to-back loop does not: a sleep and a wake-up between polls, and at many
//      targets a server backend that is asleep at every poll and must be woken;
//   3. `ghostwatch run` with one postgres (or mysql) probe and the same N targets, polled all along
//      (poll_interval = idle_poll_interval = P: 1 ms for one target, 10 ms for up to 100,
//      100 ms beyond, so at most ~10,000 polls/s), a canary a second (--canary-interval MS);
//      once every target is up (the time it took is shown) and one second more, the agent's CPU
//      time (/proc/PID/stat) and the sum of ghostwatch_polls_total (/metrics) are read twice,
//      the run's seconds apart, with a gzip scrape every MS meanwhile (--scrape-every MS, as
//      Prometheus scrapes; none by default). CPU per poll = CPU delta / polls delta; the poll
//      rate is shown against the configured N / P (with scrapes: whether they delay the
//      polls). Then 20 GET /metrics without and 20 with gzip: the CPU of the agent's HTTP
//      threads (civetweb's, from /proc/PID/task) per scrape, render and compression included,
//      and the answer's size. RSS and threads at the end.
// `ratio` is the agent against the paced floor (what the agent adds to the polls themselves),
// `b2b ratio` against the back-to-back one. The ratios carry over, not the absolute figures.
// The sandbox's replicas take 600 connections each: up to 1000 PostgreSQL targets over the two,
// 500 MariaDB targets on its one. A MariaDB poll that finds a canary not yet received by the
// replica also reads SHOW REPLICA STATUS, as the agent's reader does, and the floors do not:
// the ratio includes that second statement while one is outstanding.
//
// With --tls every N is measured twice, in the clear and over TLS (the sandbox's up --tls:
// PostgreSQL's ghostwatch_cert role with verify-full and a client certificate, MariaDB's
// ghostwatch_x509 user with verify_identity and one), the floors' connections likewise, and
// the table gains the RSS each TLS target adds. TLS costs most at connect (the handshake), once
// per connection: a table before the runs gives this client's CPU and wall time per connect
// over 50 sequential connects: PostgreSQL in the clear and over TLS with the same password role
// (the handshake alone), and with the certificate role (no SCRAM); MariaDB in the clear and over
// TLS.
//
// GHOSTWATCH_BIN=path runs that agent binary instead of this build's.
//
//   build/bench/poll_cost [--mysql] [--tls] [--canary-interval MS] [--scrape-every MS] [SECONDS=10] [N...=1 10 100]
#include <arpa/inet.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "bench/sandbox.h"
#include "probes/mysql/mysql_replication.h"
#include "probes/postgres/pg_replication.h"

namespace {

using Clock = std::chrono::steady_clock;

using ghostwatch::bench::connect_pg;
using ghostwatch::bench::process_cpu_seconds;
using ghostwatch::bench::sandbox_env;

bool g_tls = false;  // the floors' connections and the agent's targets over TLS
int g_canary_ms = 1000;  // --canary-interval: the agent's probe interval
int g_scrape_ms = 0;     // --scrape-every: gzip scrapes through the measured window, as Prometheus's


// One blocking connection to a replica that runs the agent's poll statement.
class PollClient {
 public:
  virtual ~PollClient() = default;
  virtual void poll() = 0;
};

// What differs between the two kinds: the canary table, the floors' connections and the agent's
// probe.
struct Kind {
  const char* probe_name;
  const char* probe_kind;  // in the agent's config
  int replicas;
  void (*ensure_canary_table)();
  std::unique_ptr<PollClient> (*connect)(int replica);  // replica: 1 .. replicas
  std::string (*probe_yaml)(int targets);
};

// --- PostgreSQL ---------------------------------------------------------------------------------

void pg_exec_or_exit(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    std::fprintf(stderr, "%s: %s", sql.c_str(), PQerrorMessage(c));
    std::exit(1);
  }
  PQclear(r);
}

std::string pg_password() { return std::string(" password=") + sandbox_env("GW_PG_PASSWORD"); }

// A fresh sandbox has no canary table until an agent has written once; the floor's statement
// needs it on the replica.
void pg_ensure_canary_table() {
  PGconn* primary = connect_pg(sandbox_env("GW_PG_PRIMARY_DSN") + pg_password());
  pg_exec_or_exit(primary, "CREATE SCHEMA IF NOT EXISTS ghostwatch");
  pg_exec_or_exit(primary, ghostwatch::pg::canary_table_ddl("ghostwatch"));
  PQfinish(primary);
  PGconn* replica = connect_pg(sandbox_env("GW_PG_REPLICA1_DSN") + pg_password());
  for (int i = 0; i < 100; ++i) {
    PGresult* r = PQexec(replica, "SELECT to_regclass('ghostwatch.canary') IS NOT NULL");
    const bool there = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (there) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the replicas apply it late
  }
  PQfinish(replica);
}

// libpq's default (sslmode=prefer) takes TLS wherever the server offers it, as the sandbox's does
// with up --tls: the plain rows say so.
constexpr const char* kPgPlain = " sslmode=disable";

std::string pg_replica_dsn(int replica) {
  if (g_tls) return sandbox_env(replica == 1 ? "GW_PG_TLS_REPLICA1_DSN" : "GW_PG_TLS_REPLICA2_DSN");
  return sandbox_env(replica == 1 ? "GW_PG_REPLICA1_DSN" : "GW_PG_REPLICA2_DSN") + pg_password() + kPgPlain;
}

class PgPollClient final : public PollClient {
 public:
  explicit PgPollClient(int replica) : conn_(connect_pg(pg_replica_dsn(replica))) {
    PGresult* prepared = PQprepare(conn_, "poll", ghostwatch::pg::poll_statement("ghostwatch").c_str(), 2, nullptr);
    if (PQresultStatus(prepared) != PGRES_COMMAND_OK) {
      std::fprintf(stderr, "prepare: %s", PQerrorMessage(conn_));
      std::exit(1);
    }
    PQclear(prepared);
  }
  ~PgPollClient() override { PQfinish(conn_); }
  void poll() override {
    const char* params[] = {"poll-cost", "pg"};
    PGresult* r = PQexecPrepared(conn_, "poll", 2, params, nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      std::fprintf(stderr, "poll: %s", PQerrorMessage(conn_));
      std::exit(1);
    }
    PQclear(r);
  }

 private:
  PGconn* conn_;
};

std::string pg_probe_yaml(int targets) {
  std::ostringstream y;
  if (g_tls) y << "    primary: \"${GW_PG_TLS_PRIMARY_DSN}\"\n    targets:\n";
  else y << "    primary: \"${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}" << kPgPlain << "\"\n    targets:\n";
  for (int i = 0; i < targets; ++i) {
    if (g_tls) y << "      - name: t" << i << "\n        dsn: \"${GW_PG_TLS_REPLICA" << (i % 2 + 1) << "_DSN}\"\n";
    else y << "      - name: t" << i << "\n        dsn: \"${GW_PG_REPLICA" << (i % 2 + 1) << "_DSN} password=${GW_PG_PASSWORD}" << kPgPlain << "\"\n";
  }
  return y.str();
}

// --- MariaDB ------------------------------------------------------------------------------------

MYSQL* connect_mysql(const char* addr_variable) {
  const std::string addr = sandbox_env(addr_variable);
  const std::string host = addr.substr(0, addr.rfind(':'));
  const unsigned port = static_cast<unsigned>(std::stoul(addr.substr(addr.rfind(':') + 1)));
  MYSQL* c = mysql_init(nullptr);
  const unsigned timeout = 5;
  mysql_options(c, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  const std::string tls = g_tls ? sandbox_env("GW_TLS_DIR") : "";
  if (g_tls) {  // as the agent's ssl-mode=verify_identity with a client certificate
    const std::string ca = tls + "/ca.crt", cert = tls + "/client.crt", key = tls + "/client.key";
    const my_bool yes = 1;
    mysql_options(c, MYSQL_OPT_SSL_CA, ca.c_str());
    mysql_options(c, MYSQL_OPT_SSL_CERT, cert.c_str());
    mysql_options(c, MYSQL_OPT_SSL_KEY, key.c_str());
    mysql_options(c, MYSQL_OPT_SSL_ENFORCE, &yes);
    mysql_options(c, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &yes);
  }
  if (!mysql_real_connect(c, host.c_str(), g_tls ? "ghostwatch_x509" : "ghostwatch", sandbox_env("GW_MARIA_PASSWORD"),
                          nullptr, port, nullptr, 0)) {
    std::fprintf(stderr, "mariadb %s: %s\n", addr.c_str(), mysql_error(c));
    std::exit(1);
  }
  return c;
}

// The statement without a result set (DDL) or with one (a SELECT), whose rows are read and freed.
MYSQL_RES* mysql_query_or_exit(MYSQL* c, const std::string& sql) {
  if (mysql_real_query(c, sql.data(), sql.size()) != 0) {
    std::fprintf(stderr, "%s: %s\n", sql.c_str(), mysql_error(c));
    std::exit(1);
  }
  MYSQL_RES* res = mysql_store_result(c);
  if (!res && mysql_field_count(c) != 0) {
    std::fprintf(stderr, "%s: %s\n", sql.c_str(), mysql_error(c));
    std::exit(1);
  }
  return res;
}

void mysql_ensure_canary_table() {
  MYSQL* primary = connect_mysql("GW_MARIA_PRIMARY_ADDR");
  mysql_free_result(mysql_query_or_exit(primary, "CREATE DATABASE IF NOT EXISTS `ghostwatch`"));
  mysql_free_result(mysql_query_or_exit(primary, ghostwatch::mysql::canary_table_ddl("ghostwatch")));
  mysql_close(primary);
  MYSQL* replica = connect_mysql("GW_MARIA_REPLICA_ADDR");
  for (int i = 0; i < 100; ++i) {  // MASTER_DELAY applies it late
    MYSQL_RES* res = mysql_query_or_exit(
        replica, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'ghostwatch' AND table_name = 'canary'");
    MYSQL_ROW row = mysql_fetch_row(res);
    const bool there = row && row[0] && std::string(row[0]) == "1";
    mysql_free_result(res);
    if (there) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  mysql_close(replica);
}

// The agent's event-loop reader's statement: the text protocol, the values as literals.
class MysqlPollClient final : public PollClient {
 public:
  MysqlPollClient()
      : conn_(connect_mysql("GW_MARIA_REPLICA_ADDR")),
        sql_("SELECT (SELECT seq FROM " + ghostwatch::mysql::canary_table("ghostwatch") +
             " WHERE agent_id = 'poll-cost' AND probe = 'maria'), @@GLOBAL.gtid_slave_pos") {}
  ~MysqlPollClient() override { mysql_close(conn_); }
  void poll() override { mysql_free_result(mysql_query_or_exit(conn_, sql_)); }

 private:
  MYSQL* conn_;
  std::string sql_;
};

std::string mysql_probe_yaml(int targets) {
  std::ostringstream y;
  const std::string password = "\n        password_file: \"${GW_SANDBOX_DIR}/agent.pw\"\n";
  if (g_tls) y << "    primary: {dsn: \"${GW_MARIA_TLS_PRIMARY_DSN}\", password_file: \"${GW_SANDBOX_DIR}/agent.pw\"}\n    targets:\n";
  else y << "    primary: \"mysql://ghostwatch:${GW_MARIA_PASSWORD}@${GW_MARIA_PRIMARY_ADDR}/\"\n    targets:\n";
  for (int i = 0; i < targets; ++i) {
    if (g_tls) y << "      - name: t" << i << "\n        dsn: \"${GW_MARIA_TLS_REPLICA_DSN}\"" << password;
    else y << "      - name: t" << i << "\n        dsn: \"mysql://ghostwatch:${GW_MARIA_PASSWORD}@${GW_MARIA_REPLICA_ADDR}/\"\n";
  }
  return y.str();
}

const Kind kPostgres{"pg", "postgres", 2, pg_ensure_canary_table,
                     [](int replica) -> std::unique_ptr<PollClient> { return std::make_unique<PgPollClient>(replica); },
                     pg_probe_yaml};
const Kind kMysql{"maria", "mysql", 1, mysql_ensure_canary_table,
                  [](int) -> std::unique_ptr<PollClient> { return std::make_unique<MysqlPollClient>(); },
                  mysql_probe_yaml};

// --- The floors and the agent -------------------------------------------------------------------

// The back-to-back floor: CPU per execution of the poll statement by a plain blocking client on
// one connection, never sleeping.
double back_to_back_cpu_per_poll(const Kind& kind, double seconds) {
  const auto client = kind.connect(1);
  const double cpu0 = process_cpu_seconds();
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  long polls = 0;
  for (; Clock::now() < end; ++polls) client->poll();
  return (process_cpu_seconds() - cpu0) / static_cast<double>(polls);
}

// The paced floor: the same polls as the agent's run, done by the simplest blocking client. One
// thread, `targets` connections over the replicas as the agent's, each polled every
// `poll_ms` in turn (slot k at start + k * poll_ms / targets, for connection k mod targets),
// sleeping until each slot. It pays what the agent cannot avoid either: sleeping and waking
// between polls, and a backend asleep at every poll when there are many.
double paced_cpu_per_poll(const Kind& kind, double seconds, int targets, int poll_ms) {
  std::vector<std::unique_ptr<PollClient>> conns;
  for (int i = 0; i < targets; ++i) conns.push_back(kind.connect(i % kind.replicas + 1));
  const auto slot = std::chrono::duration<double, std::milli>(static_cast<double>(poll_ms) / targets);
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  const double cpu0 = process_cpu_seconds();
  long polls = 0;
  for (long k = 0;; ++k) {
    const auto due = start + std::chrono::duration_cast<Clock::duration>(slot * static_cast<double>(k));
    if (due >= end) break;
    std::this_thread::sleep_until(due);  // returns at once when the client runs behind
    conns[static_cast<std::size_t>(k % targets)]->poll();
    ++polls;
  }
  return (process_cpu_seconds() - cpu0) / static_cast<double>(polls);
}

int poll_ms_for(int targets) { return targets == 1 ? 1 : targets <= 100 ? 10 : 100; }

std::string config_for(const Kind& kind, int targets, int poll_ms, int port) {
  std::ostringstream y;
  y << "agent:\n  id: poll-cost\n  listen: 127.0.0.1:" << port << "\nprobes:\n  - name: " << kind.probe_name
    << "\n    kind: " << kind.probe_kind << "\n    interval: " << g_canary_ms << "ms\n"
    << "    poll_interval: " << poll_ms << "ms\n    idle_poll_interval: " << poll_ms << "ms\n"
    << kind.probe_yaml(targets);
  return y.str();
}

// A process's CPU time, or one of its threads' (`task`).
double child_cpu_seconds(pid_t pid, const std::string& task = "") {
  std::ifstream in("/proc/" + std::to_string(pid) + (task.empty() ? "" : "/task/" + task) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {  // field 3 is the state; utime is 14, stime 15
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string status_field(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  }
  return "?";
}

// The CPU time of the agent's HTTP worker threads (civetweb names them): what its scrapes cost,
// apart from the polls' threads.
double http_threads_cpu_seconds(pid_t pid) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  double seconds = 0;
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) return 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(tasks + "/" + entry->d_name + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind("civetweb", 0) == 0) seconds += child_cpu_seconds(pid, entry->d_name);
  }
  closedir(dir);
  return seconds;
}

// One GET of /metrics on loopback (HTTP/1.0: the body ends with the connection); empty on error.
// With `gzip`, asked as Prometheus asks (the body stays compressed: its size is what travels).
std::string get_metrics(int port, bool gzip = false) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string out;
  const std::string request = std::string("GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n") +
                              (gzip ? "Accept-Encoding: gzip\r\n" : "") + "\r\n";
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
    char buf[65536];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return out;
}

// The sum of a metric over every series ("ghostwatch_polls_total{", "ghostwatch_target_up{").
double sum_of(const std::string& metrics, std::string_view series_prefix) {
  double sum = 0;
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series_prefix, 0) == 0) sum += std::atof(line.c_str() + line.rfind(' ') + 1);
  }
  return sum;
}
double polls_total(const std::string& metrics) { return sum_of(metrics, "ghostwatch_polls_total{"); }
double targets_up(const std::string& metrics) { return sum_of(metrics, "ghostwatch_target_up{"); }

struct ScrapeFigures {
  double cpu_ms = 0;  // the agent's HTTP threads' CPU per scrape
  std::size_t bytes = 0;  // the answer as sent, headers included
};

// 20 scrapes in a row: the HTTP threads' CPU per scrape (clock ticks of 10 ms: 20 scrapes make
// the tick's error a few percent at a thousand targets) and the answer's size.
ScrapeFigures scrape_cost(pid_t pid, int port, bool gzip) {
  constexpr int kScrapes = 20;
  ScrapeFigures f;
  const double cpu0 = http_threads_cpu_seconds(pid);
  for (int i = 0; i < kScrapes; ++i) f.bytes = get_metrics(port, gzip).size();
  f.cpu_ms = (http_threads_cpu_seconds(pid) - cpu0) * 1e3 / kScrapes;
  return f;
}

struct AgentFigures {
  double cpu_per_poll = 0, polls_per_second = 0, configured_per_second = 0, warm_up_seconds = 0;
  ScrapeFigures plain, gzip;
  int scrapes = 0;  // during the measured window (--scrape-every)
  std::string rss, threads;
};

// Waits `seconds`, scraping with gzip every g_scrape_ms meanwhile when asked; returns the scrapes.
int wait_scraping(int port, double seconds) {
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  if (g_scrape_ms <= 0) {
    std::this_thread::sleep_until(end);
    return 0;
  }
  int scrapes = 0;
  for (auto next = Clock::now(); next < end; next += std::chrono::milliseconds(g_scrape_ms)) {
    std::this_thread::sleep_until(next);
    if (!get_metrics(port, true).empty()) ++scrapes;
  }
  std::this_thread::sleep_until(end);
  return scrapes;
}

AgentFigures measure_agent(const Kind& kind, int targets, double seconds) {
  const int poll_ms = poll_ms_for(targets);
  const int port = 29480;
  char path[] = "/tmp/poll-cost-XXXXXX.yaml";
  const int fd = mkstemps(path, 5);
  const std::string yaml = config_for(kind, targets, poll_ms, port);
  if (fd < 0 || write(fd, yaml.data(), yaml.size()) != static_cast<ssize_t>(yaml.size())) std::exit(1);
  close(fd);
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    freopen("/dev/null", "w", stderr);
    // GHOSTWATCH_BIN measures another build (an earlier commit's, for a before-and-after).
    const char* binary = std::getenv("GHOSTWATCH_BIN") ? std::getenv("GHOSTWATCH_BIN") : GHOSTWATCH_BINARY;
    execl(binary, binary, "run", "--config", path, static_cast<char*>(nullptr));
    _exit(127);
  }
  // Warm-up: every target up (a thousand connections take seconds, checked every 2 s), then one
  // more second.
  const auto started = Clock::now();
  double up = 0;
  while (Clock::now() < started + std::chrono::seconds(90) && (up = targets_up(get_metrics(port))) < targets) {
    // Not faster than this: a scrape while a thousand connections are being set up leaves the
    // long-lived connection memory spread over the scrape's freed blocks (+3 MB of RSS when
    // scraped every 500 ms); Prometheus scrapes every 15 s by default.
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  const double warm_up = std::chrono::duration<double>(Clock::now() - started).count();
  if (up < targets) std::fprintf(stderr, "only %.0f of %d targets up after 90 s\n", up, targets);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const double cpu0 = child_cpu_seconds(pid), polls0 = polls_total(get_metrics(port));
  const auto t0 = Clock::now();
  AgentFigures f;
  f.scrapes = wait_scraping(port, seconds);
  const double cpu1 = child_cpu_seconds(pid), polls1 = polls_total(get_metrics(port));
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  f.plain = scrape_cost(pid, port, false);
  f.gzip = scrape_cost(pid, port, true);
  f.rss = status_field(pid, "VmRSS");
  f.warm_up_seconds = warm_up;
  f.threads = status_field(pid, "Threads");
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  std::remove(path);
  if (polls1 <= polls0) {
    std::fprintf(stderr, "the agent with %d targets counted no polls\n", targets);
    std::exit(1);
  }
  f.cpu_per_poll = (cpu1 - cpu0) / (polls1 - polls0);
  f.polls_per_second = (polls1 - polls0) / elapsed;
  f.configured_per_second = targets * 1000.0 / poll_ms;
  return f;
}

// The client's CPU and wall time per connect (and close), over `count` sequential connects: the
// handshake is where TLS costs, once per connection.
template <class Connect>
std::pair<double, double> connect_cost(int count, Connect connect) {
  const double cpu0 = process_cpu_seconds();
  const auto t0 = Clock::now();
  for (int i = 0; i < count; ++i) connect();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  return {(process_cpu_seconds() - cpu0) / count, wall / count};
}

void print_connect_cost(const char* what, std::pair<double, double> cost) {
  std::printf("  %-44s %6.0f us CPU, %5.1f ms wall\n", what, cost.first * 1e6, cost.second * 1e3);
}

// PostgreSQL: the same role and password in the clear and over TLS (verify-full), which isolates
// the handshake; then the certificate role, which needs no password (SCRAM's key derivation is
// the client's largest connect cost in the clear).
void print_connect_costs(const Kind& kind, int count) {
  std::printf("connect and close, %d in a row to replica 1, this client's cost each:\n", count);
  if (&kind == &kMysql) {
    g_tls = false;
    print_connect_cost("in the clear, password", connect_cost(count, [&] { kind.connect(1).reset(); }));
    g_tls = true;
    print_connect_cost("TLS verify_identity, certificate and password", connect_cost(count, [&] { kind.connect(1).reset(); }));
    return;
  }
  const std::string plain = sandbox_env("GW_PG_REPLICA1_DSN") + pg_password();
  const std::string verified = plain + " sslmode=verify-full sslrootcert=" + sandbox_env("GW_TLS_DIR") + "/ca.crt";
  auto pg = [](const std::string& dsn) { return [dsn] { PQfinish(connect_pg(dsn)); }; };
  print_connect_cost("in the clear, password (SCRAM)", connect_cost(count, pg(plain + kPgPlain)));
  print_connect_cost("TLS verify-full, password (SCRAM)", connect_cost(count, pg(verified)));
  print_connect_cost("TLS verify-full, client certificate (cert)", connect_cost(count, pg(sandbox_env("GW_PG_TLS_REPLICA1_DSN"))));
}

double kilobytes(const std::string& status_value) { return std::atof(status_value.c_str()); }

void print_row(const char* connections, int n, const AgentFigures& f, double paced, double back_to_back) {
  std::printf("%6s %8d %10.0f %10.0f %10.1f %13.1f %13.1f %7.2fx %8.2fx %10s %8s %6.1f / %4.1f ms %5zu / %4zu kB %6.1f s",
              connections, n, f.polls_per_second, f.configured_per_second, f.cpu_per_poll * 1e6, paced * 1e6,
              back_to_back * 1e6, f.cpu_per_poll / paced, f.cpu_per_poll / back_to_back,
              f.rss.c_str() + f.rss.find_first_not_of(" \t"), f.threads.c_str() + f.threads.find_first_not_of(" \t"),
              f.plain.cpu_ms, f.gzip.cpu_ms, f.plain.bytes / 1024, f.gzip.bytes / 1024, f.warm_up_seconds);
  if (g_scrape_ms > 0) std::printf(" %7d", f.scrapes);
  std::printf("\n");
}

struct Row {
  AgentFigures agent;
  double paced = 0, back_to_back = 0;
};

// Both floors right before the agent's run, so that all three see the same machine.
Row measure(const Kind& kind, int n, double seconds) {
  Row r;
  r.back_to_back = back_to_back_cpu_per_poll(kind, seconds);
  r.paced = paced_cpu_per_poll(kind, seconds, n, poll_ms_for(n));
  r.agent = measure_agent(kind, n, seconds);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int arg = 1;
  bool mysql = false;
  for (; argc > arg && std::string(argv[arg]).rfind("--", 0) == 0; ++arg) {
    const std::string flag = argv[arg];
    if (flag == "--mysql") mysql = true;
    else if (flag == "--tls") g_tls = true;
    else if ((flag == "--canary-interval" || flag == "--scrape-every") && argc > arg + 1) {
      const int ms = std::atoi(argv[++arg]);
      if (ms < 1) {
        std::fprintf(stderr, "poll_cost: %s takes milliseconds above 0, not '%s'\n", flag.c_str(), argv[arg]);
        return 2;
      }
      (flag == "--canary-interval" ? g_canary_ms : g_scrape_ms) = ms;
    } else {
      std::fprintf(stderr,
                   "poll_cost: unknown option %s (known: --mysql, --tls, --canary-interval MS, --scrape-every MS)\n",
                   flag.c_str());
      return 2;
    }
  }
  const bool tls = g_tls;
  const Kind& kind = mysql ? kMysql : kPostgres;
  const double seconds = argc > arg ? std::atof(argv[arg]) : 10;
  std::vector<int> counts;
  for (int i = arg + 1; i < argc; ++i) counts.push_back(std::atoi(argv[i]));
  if (counts.empty()) counts = {1, 10, 100};
  if (seconds <= 0 || std::any_of(counts.begin(), counts.end(), [&](int n) { return n < 1 || n > 500 * kind.replicas; })) {
    std::fprintf(stderr, "usage: poll_cost [--mysql] [--tls] [--canary-interval MS] [--scrape-every MS] [SECONDS > 0] [N...], N from 1 to %d (the sandbox's replicas take 600 connections each)\n",
                 500 * kind.replicas);
    return 2;
  }
  kind.ensure_canary_table();
  if (tls) {
    print_connect_costs(kind, 50);
    std::printf("\n");
  }
  std::printf("canary every %d ms; %s\n", g_canary_ms,
              g_scrape_ms > 0 ? ("scraped with gzip every " + std::to_string(g_scrape_ms) + " ms while measured").c_str()
                              : "not scraped while measured");
  std::printf("%6s %8s %10s %10s %10s %13s %13s %8s %8s %10s %8s %16s %17s %8s%s\n", "conn", "targets", "polls/s",
              "configured", "us CPU/poll", "paced us/poll", "b2b us/poll", "ratio", "b2b ratio", "RSS", "threads",
              "scrape CPU/gz", "size/gz", "all up", g_scrape_ms > 0 ? " scrapes" : "");
  for (int n : counts) {
    g_tls = false;
    const Row plain = measure(kind, n, seconds);
    print_row("plain", n, plain.agent, plain.paced, plain.back_to_back);
    if (!tls) continue;
    g_tls = true;
    const Row secure = measure(kind, n, seconds);
    print_row("tls", n, secure.agent, secure.paced, secure.back_to_back);
    std::printf("%6s %8d RSS per TLS target: %+.1f kB (TLS run minus the plain run, over %d targets)\n", "", n,
                (kilobytes(secure.agent.rss) - kilobytes(plain.agent.rss)) / n, n);
  }
  return 0;
}
