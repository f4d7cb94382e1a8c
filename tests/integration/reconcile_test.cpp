// Integration tests of `ghostwatch reconcile`: 10,000 Redis entries built from a PostgreSQL
// table, a known set made stale, ahead, orphan and unparseable; the grace re-check; --repair.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>
#include <unistd.h>

#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;
using Reconcile = SandboxTest;

class Redis {
 public:
  Redis() {
    const std::string addr = require_env("GW_REDIS_ADDR");
    ctx_ = redisConnect(addr.substr(0, addr.rfind(':')).c_str(), std::stoi(addr.substr(addr.rfind(':') + 1)));
    EXPECT_TRUE(ctx_ != nullptr && !ctx_->err);
  }
  ~Redis() { redisFree(ctx_); }
  // Pipelined SETs.
  void set_many(const std::vector<std::pair<std::string, std::string>>& kv) {
    for (const auto& [k, v] : kv) redisAppendCommand(ctx_, "SET %b %b", k.data(), k.size(), v.data(), v.size());
    for (std::size_t i = 0; i < kv.size(); ++i) {
      void* reply = nullptr;
      ASSERT_EQ(redisGetReply(ctx_, &reply), REDIS_OK);
      freeReplyObject(reply);
    }
  }
  void hset(const std::string& key, const std::string& field, const std::string& value) {
    auto* r = static_cast<redisReply*>(redisCommand(ctx_, "HSET %b %b %b", key.data(), key.size(), field.data(),
                                                    field.size(), value.data(), value.size()));
    ASSERT_TRUE(r != nullptr && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
  }
  bool exists(const std::string& key) {
    auto* r = static_cast<redisReply*>(redisCommand(ctx_, "EXISTS %s", key.c_str()));
    const bool yes = r && r->integer == 1;
    freeReplyObject(r);
    return yes;
  }

 private:
  redisContext* ctx_;
};

// Each test has its own table and key space (tests of one process share the pid).
std::string g_space = "a";
std::string table() { return "users_" + std::to_string(getpid()) + g_space; }
std::string key_prefix() { return "user" + std::to_string(getpid()) + g_space + ":"; }
std::string key(int id) { return key_prefix() + std::to_string(id); }
std::string entry(int version) { return "{\"version\":" + std::to_string(version) + "}"; }

std::string reconcile_yaml(const std::string& grace) {
  return agent_yaml() + R"(  - name: users-cache
    kind: reconcile
    cache:
      redis: "${GW_REDIS_ADDR}"
      key: ")" + key_prefix() + R"({id}"
      format: json
      field: /version
    source:
      dsn: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
      table: )" + table() + R"(
      id_column: id
      version_column: version
    grace: )" + grace + R"(
    rate_limit: 200000
    batch: 500
)";
}

// A fresh table of `rows` rows at `version`, readable by the agent.
void create_table(int rows, int version) {
  const std::string primary = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  admin_query(primary, "DROP TABLE IF EXISTS " + table());
  admin_query(primary, "CREATE TABLE " + table() + " (id int PRIMARY KEY, version bigint NOT NULL)");
  admin_query(primary, "INSERT INTO " + table() + " SELECT g, " + std::to_string(version) + " FROM generate_series(1, " +
                           std::to_string(rows) + ") g");
  admin_query(primary, "GRANT SELECT ON " + table() + " TO ghostwatch");
}

// 10,000 rows and their cache entries, of which: stale 11, 222, 3333, 4444 (DB moved on),
// ahead 55, 666 (cache newer), orphan 20001, 20002 (no row), unparseable 77.
void build_dataset() {
  create_table(10000, 1);
  admin_query(require_env("GW_PG_ADMIN_PRIMARY_DSN"), "UPDATE " + table() + " SET version = 2 WHERE id IN (11, 222, 3333, 4444)");
  std::vector<std::pair<std::string, std::string>> kv;
  for (int id = 1; id <= 10000; ++id) kv.emplace_back(key(id), entry(1));
  kv.emplace_back(key(55), entry(5));
  kv.emplace_back(key(666), entry(5));
  kv.emplace_back(key(20001), entry(1));
  kv.emplace_back(key(20002), entry(1));
  kv.emplace_back(key(77), "garbage");
  Redis().set_many(kv);
}

std::set<std::string> keys_of(const nlohmann::json& mismatches, const std::string& kind) {
  std::set<std::string> out;
  for (const auto& m : mismatches) {
    if (m.at("kind") == kind) out.insert(m.at("key").get<std::string>());
  }
  return out;
}

TEST_F(Reconcile, ReportsExactlyTheStaleAheadAndOrphanEntriesThenRepairsThem) {
  g_space = "a";
  build_dataset();
  const std::string config = write_temp_file(reconcile_yaml("1s"), ".yaml");
  const auto start = std::chrono::steady_clock::now();
  auto r = run_command({ghostwatch_binary(), "reconcile", "--config", config, "--output", "json"}, 120s);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.exit_code, 1) << "persistent mismatches exit 1\n" << r.out << r.err;
  const auto p = nlohmann::json::parse(r.out).at("probes").at(0);
  EXPECT_EQ(p.at("checked"), 10001);  // 10,000 rows + 2 orphans - 1 unparseable
  EXPECT_EQ(p.at("counts").at("stale"), 4);
  EXPECT_EQ(p.at("counts").at("ahead"), 2);
  EXPECT_EQ(p.at("counts").at("orphan"), 2);
  EXPECT_EQ(p.at("counts").at("unparseable"), 1);
  EXPECT_EQ(keys_of(p.at("mismatches"), "stale"), (std::set<std::string>{key(11), key(222), key(3333), key(4444)}));
  EXPECT_EQ(keys_of(p.at("mismatches"), "ahead"), (std::set<std::string>{key(55), key(666)}));
  EXPECT_EQ(keys_of(p.at("mismatches"), "orphan"), (std::set<std::string>{key(20001), key(20002)}));
  for (const auto& m : p.at("mismatches")) {
    if (m.at("key") == key(11)) {
      EXPECT_EQ(m.at("cache_version"), 1);
      EXPECT_EQ(m.at("db_version"), 2);
    }
    if (m.at("kind") == "orphan") {
      EXPECT_TRUE(m.at("db_version").is_null());
    }
  }
  record_figure("reconcile: 10,003 Redis entries against PostgreSQL in " + std::to_string(seconds).substr(0, 4) +
                " s (1 s grace included): consistent_ratio " + p.at("consistent_ratio").dump() +
                ", stale 4, ahead 2, orphan 2, unparseable 1, exactly the planted set");

  auto repaired = run_command({ghostwatch_binary(), "reconcile", "--config", config, "--output", "json", "--repair"}, 120s);
  ASSERT_EQ(repaired.exit_code, 1) << repaired.err;
  const auto rp = nlohmann::json::parse(repaired.out).at("probes").at(0);
  EXPECT_EQ(rp.at("repaired").size(), 6u);
  Redis redis;
  for (int id : {11, 222, 3333, 4444, 20001, 20002}) EXPECT_FALSE(redis.exists(key(id))) << id;
  for (int id : {55, 666, 77, 1, 10000}) EXPECT_TRUE(redis.exists(key(id))) << id << " must be left alone";
  EXPECT_NE(repaired.err.find("repaired (deleted) " + key(20001)), std::string::npos) << "each deletion is logged";

  auto after = run_command({ghostwatch_binary(), "reconcile", "--config", config, "--output", "json"}, 120s);
  const auto ap = nlohmann::json::parse(after.out).at("probes").at(0);
  EXPECT_EQ(ap.at("counts").at("stale"), 0);
  EXPECT_EQ(ap.at("counts").at("orphan"), 0);
  EXPECT_EQ(ap.at("counts").at("ahead"), 2);
  admin_query(require_env("GW_PG_ADMIN_PRIMARY_DSN"), "DROP TABLE " + table());
  std::remove(config.c_str());
}

TEST_F(Reconcile, AnEntryFixedWithinTheGracePeriodIsNotReported) {
  g_space = "b";
  const std::string primary = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  create_table(10, 1);
  std::vector<std::pair<std::string, std::string>> kv;
  for (int id = 1; id <= 10; ++id) kv.emplace_back(key(id), entry(1));
  Redis().set_many(kv);
  // The DB moves to version 2; the cache follows a second later, within the 3 s grace.
  admin_query(primary, "UPDATE " + table() + " SET version = 2 WHERE id = 7");
  const std::string config = write_temp_file(reconcile_yaml("3s"), ".yaml");
  CommandResult r;
  std::thread sweep([&] { r = run_command({ghostwatch_binary(), "reconcile", "--config", config, "--output", "json"}, 60s); });
  std::this_thread::sleep_for(1s);
  Redis().set_many({{key(7), entry(2)}});
  sweep.join();
  EXPECT_NE(r.err.find("re-checking 1 mismatches"), std::string::npos) << "it was a candidate\n" << r.err;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto p = nlohmann::json::parse(r.out).at("probes").at(0);
  EXPECT_EQ(p.at("mismatches").size(), 0u);
  EXPECT_EQ(p.at("checked"), 10);
  admin_query(primary, "DROP TABLE " + table());
  std::remove(config.c_str());
}

TEST_F(Reconcile, TheAgentSweepsPeriodicallyAndExportsTheCounts) {
  g_space = "c";
  const std::string primary = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  create_table(100, 3);
  std::vector<std::pair<std::string, std::string>> kv;
  for (int id = 1; id <= 100; ++id) kv.emplace_back(key(id), entry(id <= 3 ? 2 : 3));  // 3 stale
  Redis().set_many(kv);
  std::string yaml = reconcile_yaml("0ms");
  yaml += "    every: 1s\n";
  const std::string config = write_temp_file(yaml, ".yaml");
  Agent agent(config, free_port());
  const std::string labels = "{probe=\"users-cache\",target=\"redis\"}";
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, "ghostwatch_cache_sweeps_total{probe=\"users-cache\",result=\"ok\",target=\"redis\"}") >= 2; }, 15s))
      << agent.log() << agent.metrics();
  const std::string metrics = agent.metrics();
  EXPECT_EQ(metric_value(metrics, "ghostwatch_cache_stale_entries" + labels), 3);
  EXPECT_GE(metric_value(metrics, "ghostwatch_cache_checked_total" + labels).value_or(0), 200);
  EXPECT_GE(metric_value(metrics, "ghostwatch_cache_mismatches_total{kind=\"stale\",probe=\"users-cache\",target=\"redis\"}").value_or(0), 6);
  EXPECT_DOUBLE_EQ(metric_value(metrics, "ghostwatch_cache_consistency_ratio" + labels).value_or(0), 0.97);
  const std::string file = write_temp_file(metrics, ".prom");
  auto r = run_command({"/bin/sh", "-c", "promtool check metrics < " + file}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  std::remove(file.c_str());
  admin_query(primary, "DROP TABLE " + table());
  std::remove(config.c_str());
}

TEST_F(Reconcile, TimestampVersionsReadFromAProbesPrimary) {
  g_space = "t";
  const std::string primary = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  admin_query(primary, "DROP TABLE IF EXISTS " + table());
  admin_query(primary, "CREATE TABLE " + table() + " (id int PRIMARY KEY, updated_at timestamptz NOT NULL)");
  admin_query(primary, "INSERT INTO " + table() + " SELECT g, '2026-01-02 03:04:05.123456+00'::timestamptz + g * interval '1 minute' FROM generate_series(1, 20) g");
  admin_query(primary, "GRANT SELECT ON " + table() + " TO ghostwatch");
  std::vector<std::pair<std::string, std::string>> kv;
  for (int id = 1; id <= 20; ++id) {
    const std::string iso = admin_query(primary, "SELECT to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM " +
                                                     table() + " WHERE id = " + std::to_string(id));
    kv.emplace_back(key(id), "{\"updated_at\":\"" + iso + "\"}");
  }
  kv.emplace_back(key(5), "{\"updated_at\":\"2026-01-01T00:00:00Z\"}");   // older than the row: stale
  kv.emplace_back(key(6), "{\"updated_at\":\"2027-01-01T00:00:00Z\"}");   // newer: ahead
  Redis().set_many(kv);
  const std::string config = write_temp_file(agent_yaml() + pg_probe_yaml("1s", "10s") + R"(  - name: ts-cache
    kind: reconcile
    cache:
      redis: "${GW_REDIS_ADDR}"
      key: ")" + key_prefix() + R"({id}"
      format: json
      field: /updated_at
    source:
      probe: pg
      table: )" + table() + R"(
      id_column: id
      version_column: updated_at
      version_type: timestamp
    grace: 200ms
)",
                                             ".yaml");
  auto r = run_command({ghostwatch_binary(), "reconcile", "--config", config, "--output", "json"}, 60s);
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  const auto p = nlohmann::json::parse(r.out).at("probes").at(0);
  EXPECT_EQ(p.at("checked"), 20);
  EXPECT_EQ(keys_of(p.at("mismatches"), "stale"), (std::set<std::string>{key(5)}));
  EXPECT_EQ(keys_of(p.at("mismatches"), "ahead"), (std::set<std::string>{key(6)}));
  admin_query(primary, "DROP TABLE " + table());
  std::remove(config.c_str());
}

// One `ghostwatch reconcile` of table() on the PostgreSQL primary against the cache described by
// `cache` (the YAML lines under `cache:`); expects persistent mismatches (exit 1) and returns
// the probe's JSON.
nlohmann::json sweep_pg_table(const std::string& cache, int batch) {
  const std::string config = write_temp_file(agent_yaml() + R"(  - name: users
    kind: reconcile
    cache:
)" + cache + R"(    source:
      dsn: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
      table: )" + table() + R"(
      id_column: id
      version_column: version
    grace: 200ms
    batch: )" + std::to_string(batch) + "\n",
                                             ".yaml");
  auto r = run_command({ghostwatch_binary(), "reconcile", "--config", config, "--output", "json"}, 60s);
  std::remove(config.c_str());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  return nlohmann::json::parse(r.out).at("probes").at(0);
}

// Text ids that need quoting in an array literal, hash fields, one field missing (a miss), and
// more batches than the reconciler keeps in flight.
TEST_F(Reconcile, RedisHashFieldsAgainstATextKeyedTable) {
  g_space = "h";
  const std::string primary = require_env("GW_PG_ADMIN_PRIMARY_DSN");
  admin_query(primary, "DROP TABLE IF EXISTS " + table());
  admin_query(primary, "CREATE TABLE " + table() + " (id text PRIMARY KEY, version bigint NOT NULL)");
  admin_query(primary, "INSERT INTO " + table() + " SELECT 'u-' || g, 1 FROM generate_series(1, 2000) g");
  admin_query(primary, "INSERT INTO " + table() + " VALUES ('q\"uo\\te', 3), ('a,b {c}', 1)");
  admin_query(primary, "UPDATE " + table() + " SET version = 2 WHERE id IN ('u-17', 'u-1999')");
  admin_query(primary, "GRANT SELECT ON " + table() + " TO ghostwatch");
  Redis redis;
  for (int id = 1; id <= 2000; ++id) {
    const std::string k = key_prefix() + "u-" + std::to_string(id);
    redis.hset(k, id == 300 ? "other" : "v", "1");
  }
  redis.hset(key_prefix() + "q\"uo\\te", "v", "2");  // stale
  redis.hset(key_prefix() + "a,b {c}", "v", "1");
  redis.hset(key_prefix() + "u-99999", "v", "1");  // orphan
  const auto p = sweep_pg_table("      redis: \"${GW_REDIS_ADDR}\"\n      key: \"" + key_prefix() +
                                     "{id}\"\n      format: hash\n      field: v\n",
                                 50);
  EXPECT_EQ(p.at("checked"), 2002) << "2000 + 2 quoted ids - 1 miss + 1 orphan";
  EXPECT_EQ(keys_of(p.at("mismatches"), "stale"),
            (std::set<std::string>{key_prefix() + "u-17", key_prefix() + "u-1999", key_prefix() + "q\"uo\\te"}));
  EXPECT_EQ(keys_of(p.at("mismatches"), "orphan"), (std::set<std::string>{key_prefix() + "u-99999"}));
  EXPECT_EQ(p.at("counts").at("ahead"), 0);
  admin_query(primary, "DROP TABLE " + table());
}

class Memcached {
 public:
  Memcached() : mc_(memcached_create(nullptr)) {
    const std::string addr = require_env("GW_MEMCACHED_ADDR");
    memcached_server_add(mc_, addr.substr(0, addr.rfind(':')).c_str(),
                         static_cast<in_port_t>(std::stoi(addr.substr(addr.rfind(':') + 1))));
  }
  ~Memcached() { memcached_free(mc_); }
  void set(const std::string& k, const std::string& v) {
    ASSERT_EQ(memcached_set(mc_, k.data(), k.size(), v.data(), v.size(), 0, 0), MEMCACHED_SUCCESS);
  }
  bool exists(const std::string& k) {
    size_t len = 0;
    uint32_t flags = 0;
    memcached_return_t rc;
    char* v = memcached_get(mc_, k.data(), k.size(), &len, &flags, &rc);
    free(v);
    return rc == MEMCACHED_SUCCESS;
  }

 private:
  memcached_st* mc_;
};

// memcached cannot list its keys: they come from the MariaDB table's ids, a page at a time.
TEST_F(Reconcile, MemcachedAgainstAMariadbTableWithIdsPagedFromTheDb) {
  const std::string tbl = "users_" + std::to_string(getpid()) + "m";
  const std::string prefix = "mcuser" + std::to_string(getpid()) + ":";
  const std::string admin = require_env("GW_MARIA_ADMIN_PRIMARY_DSN");
  maria_admin_query(admin, "CREATE DATABASE IF NOT EXISTS ghostwatch");
  maria_admin_query(admin, "DROP TABLE IF EXISTS ghostwatch." + tbl);
  maria_admin_query(admin, "CREATE TABLE ghostwatch." + tbl + " (id INT PRIMARY KEY, version BIGINT NOT NULL) ENGINE=InnoDB");
  maria_admin_query(admin, "INSERT INTO ghostwatch." + tbl + " SELECT seq, 1 FROM ghostwatch.seq_1_to_1000");
  maria_admin_query(admin, "UPDATE ghostwatch." + tbl + " SET version = 2 WHERE id IN (13, 500)");
  Memcached mc;
  for (int id = 1; id <= 1000; ++id) {
    if (id == 999) continue;  // a miss: not a mismatch
    mc.set(prefix + std::to_string(id), id == 42 ? "5" : id == 7 ? "garbage" : "1");
  }
  const std::string config = write_temp_file(agent_yaml() + R"(  - name: mc-users
    kind: reconcile
    cache:
      memcached: "${GW_MEMCACHED_ADDR}"
      key: ")" + prefix + R"({id}"
    source:
      dsn: "mysql://ghostwatch:${GW_MARIA_PASSWORD}@${GW_MARIA_PRIMARY_ADDR}/ghostwatch"
      table: )" + tbl + R"(
      id_column: id
      version_column: version
    grace: 500ms
    batch: 128
)",
                                             ".yaml");
  auto r = run_command({ghostwatch_binary(), "reconcile", "--config", config, "--output", "json", "--repair"}, 120s);
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  const auto p = nlohmann::json::parse(r.out).at("probes").at(0);
  EXPECT_EQ(p.at("checked"), 998);  // 1000 ids - 1 miss - 1 unparseable
  EXPECT_EQ(p.at("counts").at("stale"), 2);
  EXPECT_EQ(p.at("counts").at("ahead"), 1);
  EXPECT_EQ(p.at("counts").at("orphan"), 0);
  EXPECT_EQ(p.at("counts").at("unparseable"), 1);
  EXPECT_EQ(keys_of(p.at("mismatches"), "stale"), (std::set<std::string>{prefix + "13", prefix + "500"}));
  EXPECT_EQ(keys_of(p.at("mismatches"), "ahead"), (std::set<std::string>{prefix + "42"}));
  EXPECT_FALSE(mc.exists(prefix + "13"));
  EXPECT_FALSE(mc.exists(prefix + "500"));
  EXPECT_TRUE(mc.exists(prefix + "42")) << "ahead entries are left alone";
  EXPECT_TRUE(mc.exists(prefix + "7"));
  maria_admin_query(admin, "DROP TABLE ghostwatch." + tbl);
  std::remove(config.c_str());
}

// memcached against PostgreSQL: ids paged from the table on one connection while the versions'
// lookups are in flight on others.
TEST_F(Reconcile, MemcachedAgainstAPostgresTableWithIdsPagedFromTheDb) {
  g_space = "p";
  create_table(1000, 1);
  admin_query(require_env("GW_PG_ADMIN_PRIMARY_DSN"), "UPDATE " + table() + " SET version = 3 WHERE id IN (2, 640, 1000)");
  const std::string prefix = "mcpg" + std::to_string(getpid()) + ":";
  Memcached mc;
  for (int id = 1; id <= 1000; ++id) {
    if (id == 10) continue;  // a miss
    mc.set(prefix + std::to_string(id), id == 11 ? "9" : "1");
  }
  const auto p = sweep_pg_table("      memcached: \"${GW_MEMCACHED_ADDR}\"\n      key: \"" + prefix + "{id}\"\n", 64);
  EXPECT_EQ(p.at("checked"), 999);
  EXPECT_EQ(keys_of(p.at("mismatches"), "stale"),
            (std::set<std::string>{prefix + "2", prefix + "640", prefix + "1000"}));
  EXPECT_EQ(keys_of(p.at("mismatches"), "ahead"), (std::set<std::string>{prefix + "11"}));
  admin_query(require_env("GW_PG_ADMIN_PRIMARY_DSN"), "DROP TABLE " + table());
}

}  // namespace
}  // namespace ghostwatch::testing
