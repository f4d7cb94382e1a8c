// Reconcile throughput: the reconciler (SCAN pages, MGET, one `unnest($1)` lookup per batch,
// several batches in flight on both sides) against the naive loop (one GET and one SELECT per
// key), on the same data, in one run.
//
// Method: against a sandbox (scripts/sandbox.sh up; source its env.sh), create a PostgreSQL
// table of N rows (vacuumed and analysed at once) and N Redis entries holding the same versions,
// then RUNS times, alternately:
//   1. the naive loop over the N keys: GET key; SELECT version FROM t WHERE id = $1; compare;
//   2. Reconciler::sweep with grace 0 and no rate limit (batch 500),
// each on fresh connections. Every run prints keys/s of both, the reconciler's own CPU time per
// key and the ratio; the last line gives the ratios and their median. Both run on loopback on
// the same machine within seconds of each other, so the ratio, not the absolute figure, is what
// carries over; alternating them spreads the machine's noise over both.
//
//   build/bench/reconcile_bench [N=100000] [RUNS=3] [reconciler]
// The word `reconciler` skips the naive loop (to profile the sweep alone).
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "bench/sandbox.h"
#include "probes/reconcile/reconciler.h"

namespace {

using ghostwatch::bench::connect_pg;
using ghostwatch::bench::process_cpu_seconds;
using ghostwatch::bench::sandbox_env;

redisContext* redis(const std::string& addr) {
  redisContext* r = redisConnect(addr.substr(0, addr.rfind(':')).c_str(), std::stoi(addr.substr(addr.rfind(':') + 1)));
  if (!r || r->err) {
    std::fprintf(stderr, "redis: cannot connect\n");
    std::exit(1);
  }
  return r;
}

void exec(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
    std::fprintf(stderr, "%s: %s", sql.c_str(), PQresultErrorMessage(r));
    std::exit(1);
  }
  PQclear(r);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Busy and total jiffies of all cores (/proc/stat), to tell a sweep bound by the machine's CPU
// (every core busy) from one bound by waiting.
std::pair<double, double> machine_jiffies() {
  std::FILE* f = std::fopen("/proc/stat", "r");
  unsigned long long v[8] = {};
  if (f == nullptr || std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                                  &v[5], &v[6], &v[7]) != 8) {
    if (f) std::fclose(f);
    return {0, 0};
  }
  std::fclose(f);
  const double idle = static_cast<double>(v[3] + v[4]);
  double total = 0;
  for (unsigned long long x : v) total += static_cast<double>(x);
  return {total - idle, total};
}

// One GET and one SELECT per key; returns the seconds it took.
double naive_loop(int n, const std::string& prefix, const std::string& table, const std::string& dsn,
                  const std::string& redis_addr, int run) {
  PGconn* c = connect_pg(dsn);
  redisContext* r = redis(redis_addr);
  const std::string select = "SELECT version FROM " + table + " WHERE id = $1";
  PQclear(PQprepare(c, "v", select.c_str(), 1, nullptr));
  long mismatches = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int id = 1; id <= n; ++id) {
    const std::string key = prefix + std::to_string(id), ids = std::to_string(id);
    auto* reply = static_cast<redisReply*>(redisCommand(r, "GET %s", key.c_str()));
    const char* params[] = {ids.c_str()};
    PGresult* row = PQexecPrepared(c, "v", 1, params, nullptr, nullptr, 0);
    if (reply->type != REDIS_REPLY_STRING || PQntuples(row) != 1 || std::string(reply->str) != PQgetvalue(row, 0, 0)) {
      ++mismatches;
    }
    PQclear(row);
    freeReplyObject(reply);
  }
  const double took = seconds_since(start);
  PQfinish(c);
  redisFree(r);
  std::printf("run %d: naive GET + SELECT per key: %6.2f s, %7.0f keys/s (%ld mismatches)\n", run, took, n / took,
              mismatches);
  return took;
}

// One sweep on fresh connections; returns the seconds it took, or a negative number on failure.
double sweep(int n, const ghostwatch::ReconcileConfig& config, int run) {
  ghostwatch::reconcile::Reconciler reconciler(config, ghostwatch::reconcile::make_cache_side(config),
                                               ghostwatch::reconcile::make_db_side(config));
  const double cpu_before = process_cpu_seconds();
  const auto machine_before = machine_jiffies();
  const auto start = std::chrono::steady_clock::now();
  auto result = reconciler.sweep({}, std::stop_token());
  const double took = seconds_since(start), cpu = process_cpu_seconds() - cpu_before;
  const auto machine_after = machine_jiffies();
  const double busy = (machine_after.first - machine_before.first) / (machine_after.second - machine_before.second);
  if (!result) {
    std::fprintf(stderr, "sweep failed: %s\n", result.error().message.c_str());
    return -1;
  }
  std::printf(
      "run %d: reconciler (batch %d):       %6.2f s, %7.0f keys/s (%ld checked, %zu mismatches; %.2f us CPU/key; "
      "machine %.0f%% busy)\n",
      run, config.batch, took, n / took, result->checked, result->mismatches.size(), cpu * 1e6 / n, busy * 100);
  return took;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 3;
  const bool reconciler_only = argc > 3 && std::string(argv[3]) == "reconciler";
  const std::string table = "bench_users_" + std::to_string(getpid());
  const std::string prefix = "bench" + std::to_string(getpid()) + ":";
  const std::string agent_dsn = std::string(sandbox_env("GW_PG_PRIMARY_DSN")) + " password=" + sandbox_env("GW_PG_PASSWORD");
  const std::string redis_addr = sandbox_env("GW_REDIS_ADDR");

  PGconn* admin = connect_pg(sandbox_env("GW_PG_ADMIN_PRIMARY_DSN"));
  exec(admin, "CREATE TABLE " + table + " (id int PRIMARY KEY, version bigint NOT NULL)");
  exec(admin, "INSERT INTO " + table + " SELECT g, 1 FROM generate_series(1, " + std::to_string(n) + ") g");
  exec(admin, "GRANT SELECT ON " + table + " TO ghostwatch");
  // Done now rather than by autovacuum, which would start on the fresh table within its naptime
  // (a minute), in the middle of whichever run is going on.
  exec(admin, "VACUUM ANALYZE " + table);
  redisContext* r = redis(redis_addr);
  for (int id = 1; id <= n; ++id) redisAppendCommand(r, "SET %s%d 1", prefix.c_str(), id);
  for (int id = 1; id <= n; ++id) {
    void* reply = nullptr;
    redisGetReply(r, &reply);
    freeReplyObject(reply);
  }

  ghostwatch::ReconcileConfig config;
  config.name = "bench";
  config.cache.host = redis_addr.substr(0, redis_addr.rfind(':'));
  config.cache.port = std::stoi(redis_addr.substr(redis_addr.rfind(':') + 1));
  config.cache.key = prefix + "{id}";
  config.source.dsn = agent_dsn;
  config.table = table;
  config.id_column = "id";
  config.version_column = "version";
  config.grace = std::chrono::seconds(0);
  config.rate_limit = 1e9;

  std::vector<double> ratios;
  int status = 0;
  for (int run = 1; run <= runs && status == 0; ++run) {
    const double naive = reconciler_only ? 0 : naive_loop(n, prefix, table, agent_dsn, redis_addr, run);
    const double batched = sweep(n, config, run);
    if (batched < 0) status = 1;
    else if (!reconciler_only) ratios.push_back(naive / batched);
  }
  if (!ratios.empty()) {
    std::sort(ratios.begin(), ratios.end());
    std::printf("ratio per run:");
    for (double x : ratios) std::printf(" %.1fx", x);
    std::printf("; median %.1fx\n", ratios[ratios.size() / 2]);
  }

  exec(admin, "DROP TABLE " + table);
  freeReplyObject(redisCommand(
      r, "EVAL %s 0", ("for _,k in ipairs(redis.call('KEYS','" + prefix + "*')) do redis.call('DEL',k) end").c_str()));
  PQfinish(admin);
  redisFree(r);
  return status;
}
