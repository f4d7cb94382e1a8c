// A reference cache pipeline for the integration tests: it watches the canary row on the
// PostgreSQL primary and, `delay` after each change, carries it into the caches the way a
// write-through or CDC pipeline would:
//   Redis:     SET  canary:<agent>:<probe> <seq>           (plain)
//              SET  canary-json:<agent>:<probe> {"seq":N}  (json)
//              HSET canary-hash:<agent>:<probe> seq <seq>  (hash)
//              canary-inv:<agent>:<probe>: DEL (invalidation), re-filled with the new seq 20 ms
//              later as an application's next read would
//   memcached: set  canary:<agent>:<probe> <seq>
//
//   cache_pipeline PG_DSN AGENT PROBE DELAY_MS REDIS_HOST:PORT MEMCACHED_HOST:PORT
//
// CACHE_PIPELINE_REDIS_PASSWORD in the environment: Redis is sent AUTH with it first.
#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>
#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

struct Address {
  std::string host;
  int port;
};

Address parse(const std::string& text) {
  const auto colon = text.rfind(':');
  return {text.substr(0, colon), std::stoi(text.substr(colon + 1))};
}

struct Change {
  Clock::time_point due;
  std::string seq;
  bool refill = false;  // the second step of an invalidation
};

void redis_command(redisContext* r, const char* format, const std::string& a, const std::string& b = "",
                   const std::string& c = "") {
  auto* reply = static_cast<redisReply*>(redisCommand(r, format, a.c_str(), b.c_str(), c.c_str()));
  if (reply == nullptr) {
    std::fprintf(stderr, "redis: %s\n", r->errstr);
    std::exit(1);
  }
  freeReplyObject(reply);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s PG_DSN AGENT PROBE DELAY_MS REDIS_ADDR MEMCACHED_ADDR\n", argv[0]);
    return 2;
  }
  const std::string suffix = std::string(argv[2]) + ":" + argv[3];
  const auto delay = std::chrono::milliseconds(std::stoi(argv[4]));
  const Address redis_addr = parse(argv[5]), mc_addr = parse(argv[6]);

  PGconn* pg = PQconnectdb(argv[1]);
  redisContext* redis = redisConnect(redis_addr.host.c_str(), redis_addr.port);
  memcached_st* mc = memcached_create(nullptr);
  memcached_server_add(mc, mc_addr.host.c_str(), static_cast<in_port_t>(mc_addr.port));
  if (PQstatus(pg) != CONNECTION_OK || redis == nullptr || redis->err) {
    std::fprintf(stderr, "cannot connect: %s\n", PQerrorMessage(pg));
    return 1;
  }
  if (const char* password = std::getenv("CACHE_PIPELINE_REDIS_PASSWORD")) redis_command(redis, "AUTH %s", password);
  const char* params[] = {argv[2], argv[3]};
  std::string last;
  std::deque<Change> queue;
  while (true) {
    PGresult* res = PQexecParams(pg, "SELECT seq FROM ghostwatch.canary WHERE agent_id = $1 AND probe = $2", 2,
                                 nullptr, params, nullptr, nullptr, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && last != PQgetvalue(res, 0, 0)) {
      last = PQgetvalue(res, 0, 0);
      queue.push_back({Clock::now() + delay, last});
    }
    PQclear(res);
    while (!queue.empty() && queue.front().due <= Clock::now()) {
      const Change c = queue.front();
      queue.pop_front();
      if (c.refill) {
        redis_command(redis, "SET %s %s", "canary-inv:" + suffix, c.seq);
        continue;
      }
      redis_command(redis, "SET %s %s", "canary:" + suffix, c.seq);
      redis_command(redis, "SET %s %s", "canary-json:" + suffix, "{\"seq\":" + c.seq + "}");
      redis_command(redis, "HSET %s %s %s", "canary-hash:" + suffix, "seq", c.seq);
      redis_command(redis, "DEL %s", "canary-inv:" + suffix);
      queue.push_back({Clock::now() + std::chrono::milliseconds(20), c.seq, true});
      const std::string key = "canary:" + suffix;
      memcached_set(mc, key.data(), key.size(), c.seq.data(), c.seq.size(), 0, 0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}
