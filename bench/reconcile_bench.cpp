// Reconcile throughput: the reconciler (SCAN pages, pipelined GETs, one `= ANY($1)` query per
// batch) against the naive loop (one GET and one SELECT per key), on the same data, in one run.
//
// Method: against a sandbox (scripts/sandbox.sh up; source its env.sh), create a PostgreSQL
// table of N rows and N Redis entries holding the same versions, then time
//   1. the naive loop over the N keys: GET key; SELECT version FROM t WHERE id = $1; compare;
//   2. Reconciler::sweep with grace 0 and no rate limit (batch 500),
// each on fresh connections, and report keys/s and the ratio. Both run on loopback on the same
// machine in the same minute, so the ratio, not the absolute figure, is what carries over.
//
//   build/bench/reconcile_bench [N=20000]
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/sandbox.h"
#include "probes/reconcile/reconciler.h"

namespace {

using ghostwatch::bench::connect_pg;
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

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const std::string table = "bench_users_" + std::to_string(getpid());
  const std::string prefix = "bench" + std::to_string(getpid()) + ":";
  const std::string agent_dsn = std::string(sandbox_env("GW_PG_PRIMARY_DSN")) + " password=" + sandbox_env("GW_PG_PASSWORD");
  const std::string redis_addr = sandbox_env("GW_REDIS_ADDR");

  PGconn* admin = connect_pg(sandbox_env("GW_PG_ADMIN_PRIMARY_DSN"));
  exec(admin, "CREATE TABLE " + table + " (id int PRIMARY KEY, version bigint NOT NULL)");
  exec(admin, "INSERT INTO " + table + " SELECT g, 1 FROM generate_series(1, " + std::to_string(n) + ") g");
  exec(admin, "GRANT SELECT ON " + table + " TO ghostwatch");
  redisContext* r = redis(redis_addr);
  for (int id = 1; id <= n; ++id) redisAppendCommand(r, "SET %s%d 1", prefix.c_str(), id);
  for (int id = 1; id <= n; ++id) {
    void* reply = nullptr;
    redisGetReply(r, &reply);
    freeReplyObject(reply);
  }

  // 1. The naive loop.
  PGconn* c = connect_pg(agent_dsn);
  redisContext* nr = redis(redis_addr);
  const std::string select = "SELECT version FROM " + table + " WHERE id = $1";
  PQclear(PQprepare(c, "v", select.c_str(), 1, nullptr));
  long naive_mismatches = 0;
  auto start = std::chrono::steady_clock::now();
  for (int id = 1; id <= n; ++id) {
    const std::string key = prefix + std::to_string(id), ids = std::to_string(id);
    auto* reply = static_cast<redisReply*>(redisCommand(nr, "GET %s", key.c_str()));
    const char* params[] = {ids.c_str()};
    PGresult* row = PQexecPrepared(c, "v", 1, params, nullptr, nullptr, 0);
    if (reply->type != REDIS_REPLY_STRING || PQntuples(row) != 1 || std::string(reply->str) != PQgetvalue(row, 0, 0)) {
      ++naive_mismatches;
    }
    PQclear(row);
    freeReplyObject(reply);
  }
  const double naive = seconds_since(start);

  // 2. The reconciler.
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
  ghostwatch::reconcile::Reconciler reconciler(config, ghostwatch::reconcile::make_cache_side(config),
                                               ghostwatch::reconcile::make_db_side(config));
  start = std::chrono::steady_clock::now();
  auto result = reconciler.sweep({}, std::stop_token());
  const double batched = seconds_since(start);
  if (!result) {
    std::fprintf(stderr, "sweep failed: %s\n", result.error().message.c_str());
    return 1;
  }

  std::printf("keys: %d (checked by the reconciler: %ld; mismatches: naive %ld, reconciler %zu)\n", n,
              result->checked, naive_mismatches, result->mismatches.size());
  std::printf("naive GET + SELECT per key: %.2f s, %.0f keys/s\n", naive, n / naive);
  std::printf("reconciler (batch %d):       %.2f s, %.0f keys/s\n", config.batch, batched, n / batched);
  std::printf("ratio: %.1fx\n", naive / batched);

  exec(admin, "DROP TABLE " + table);
  freeReplyObject(redisCommand(
      r, "EVAL %s 0", ("for _,k in ipairs(redis.call('KEYS','" + prefix + "*')) do redis.call('DEL',k) end").c_str()));
  PQfinish(c);
  PQfinish(admin);
  redisFree(nr);
  redisFree(r);
  return 0;
}
