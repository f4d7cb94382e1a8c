// The reconciler's backends. Caches: Redis (SCAN, pipelined GET/HGET, DEL) and memcached (no
// scan: keys come from the DB's ids; multi-get, delete). Sources: PostgreSQL (one `= ANY($1)`
// query per batch) and MySQL/MariaDB (one `IN (...)` query per batch).
#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>

#include "common/parse_number.h"
#include "common/redact.h"
#include "probes/lazy_connection.h"
#include "probes/mysql/mysql_connection.h"
#include "probes/mysql/mysql_replication.h"
#include "probes/postgres/pg_connection.h"
#include "probes/reconcile/reconciler.h"

namespace ghostwatch::reconcile {
namespace {

timeval to_timeval(Duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
}

// The key pattern as a Redis glob: {id} becomes *, glob characters elsewhere are escaped.
std::string glob_of(const std::string& pattern) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern.compare(i, 4, "{id}") == 0) {
      out += '*';
      i += 3;
      continue;
    }
    if (std::string("*?[]\\").find(pattern[i]) != std::string::npos) out += '\\';
    out += pattern[i];
  }
  return out;
}

class RedisSide final : public CacheSide {
 public:
  explicit RedisSide(const ReconcileConfig& c) : config_(c) {}
  ~RedisSide() override {
    if (ctx_) redisFree(ctx_);
  }
  bool can_scan() const override { return true; }

  Status scan(const std::function<bool(const std::vector<std::string>&)>& page) override {
    if (Status s = connect(); !s) return s;
    const std::string glob = glob_of(config_.cache.key), count = std::to_string(config_.batch);
    std::string cursor = "0";
    do {
      auto* reply = static_cast<redisReply*>(redisCommand(ctx_, "SCAN %s MATCH %s COUNT %s", cursor.c_str(),
                                                          glob.c_str(), count.c_str()));
      if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        if (reply) freeReplyObject(reply);
        return failure("SCAN");
      }
      cursor.assign(reply->element[0]->str, reply->element[0]->len);
      std::vector<std::string> keys;
      for (std::size_t i = 0; i < reply->element[1]->elements; ++i) {
        keys.emplace_back(reply->element[1]->element[i]->str, reply->element[1]->element[i]->len);
      }
      freeReplyObject(reply);
      if (!keys.empty() && !page(keys)) return ok_status();
    } while (cursor != "0");
    return ok_status();
  }

  Result<std::vector<std::optional<std::string>>> read(const std::vector<std::string>& keys) override {
    if (Status s = connect(); !s) return s.error();
    const bool hash = config_.cache.format == CacheTargetConfig::Format::hash;
    for (const std::string& key : keys) {
      if (hash) redisAppendCommand(ctx_, "HGET %b %b", key.data(), key.size(), config_.cache.field.data(), config_.cache.field.size());
      else redisAppendCommand(ctx_, "GET %b", key.data(), key.size());
    }
    std::vector<std::optional<std::string>> values;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return failure("GET");
      auto* reply = static_cast<redisReply*>(raw);
      if (reply->type == REDIS_REPLY_STRING) values.emplace_back(std::string(reply->str, reply->len));
      else values.emplace_back(std::nullopt);  // absent, or a type we cannot read: a miss
      freeReplyObject(reply);
    }
    return values;
  }

  Status remove(const std::vector<std::string>& keys) override {
    if (Status s = connect(); !s) return s;
    std::vector<const char*> argv{"DEL"};
    std::vector<size_t> lengths{3};
    for (const std::string& k : keys) {
      argv.push_back(k.data());
      lengths.push_back(k.size());
    }
    auto* reply = static_cast<redisReply*>(redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lengths.data()));
    if (reply == nullptr) return failure("DEL");
    freeReplyObject(reply);
    return ok_status();
  }

 private:
  Status connect() {
    if (ctx_) return ok_status();
    ctx_ = redisConnectWithTimeout(config_.cache.host.c_str(), config_.cache.port, to_timeval(config_.connect_timeout));
    if (ctx_ == nullptr || ctx_->err) return failure("connect");
    redisSetTimeout(ctx_, to_timeval(config_.query_timeout));
    auto ok = [](redisReply* r) {
      const bool good = r != nullptr && r->type != REDIS_REPLY_ERROR;
      if (r) freeReplyObject(r);
      return good;
    };
    if (config_.cache.password && !ok(static_cast<redisReply*>(redisCommand(ctx_, "AUTH %s", config_.cache.password->c_str())))) {
      return failure("AUTH");
    }
    if (config_.cache.db != 0 && !ok(static_cast<redisReply*>(redisCommand(ctx_, "SELECT %d", config_.cache.db)))) {
      return failure("SELECT");
    }
    return ok_status();
  }
  Error failure(const char* what) {
    std::string message = "redis " + config_.cache.host + ":" + std::to_string(config_.cache.port) + ": " + what +
                          " failed" + (ctx_ && ctx_->errstr[0] ? std::string(": ") + ctx_->errstr : std::string());
    if (ctx_) redisFree(ctx_);
    ctx_ = nullptr;
    return Error{scrub(message)};
  }

  ReconcileConfig config_;
  redisContext* ctx_ = nullptr;
};

class MemcachedSide final : public CacheSide {
 public:
  explicit MemcachedSide(const ReconcileConfig& c) : config_(c), memc_(memcached_create(nullptr)) {
    memcached_server_add(memc_, c.cache.host.c_str(), static_cast<in_port_t>(c.cache.port));
    const auto ms = [](Duration d) { return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); };
    memcached_behavior_set(memc_, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, ms(c.connect_timeout));
    memcached_behavior_set(memc_, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, ms(c.query_timeout));
    memcached_behavior_set(memc_, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 0);
  }
  ~MemcachedSide() override { memcached_free(memc_); }
  bool can_scan() const override { return false; }
  Status scan(const std::function<bool(const std::vector<std::string>&)>&) override {
    return Error{"memcached cannot list its keys"};
  }

  Result<std::vector<std::optional<std::string>>> read(const std::vector<std::string>& keys) override {
    std::vector<const char*> ks;
    std::vector<size_t> lengths;
    for (const std::string& k : keys) {
      ks.push_back(k.data());
      lengths.push_back(k.size());
    }
    memcached_return_t rc = memcached_mget(memc_, ks.data(), lengths.data(), ks.size());
    if (rc != MEMCACHED_SUCCESS) return failure(rc);
    std::map<std::string, std::string> found;
    memcached_result_st* result;
    while ((result = memcached_fetch_result(memc_, nullptr, &rc)) != nullptr) {
      found.emplace(std::string(memcached_result_key_value(result), memcached_result_key_length(result)),
                    std::string(memcached_result_value(result), memcached_result_length(result)));
      memcached_result_free(result);
    }
    if (rc != MEMCACHED_END && rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND) return failure(rc);
    std::vector<std::optional<std::string>> values;
    for (const std::string& k : keys) {
      auto it = found.find(k);
      values.push_back(it == found.end() ? std::nullopt : std::optional<std::string>(it->second));
    }
    return values;
  }

  Status remove(const std::vector<std::string>& keys) override {
    for (const std::string& k : keys) {
      const memcached_return_t rc = memcached_delete(memc_, k.data(), k.size(), 0);
      if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND) return failure(rc);
    }
    return ok_status();
  }

 private:
  Error failure(memcached_return_t rc) {
    return Error{"memcached " + config_.cache.host + ":" + std::to_string(config_.cache.port) + ": " +
                 memcached_strerror(memc_, rc)};
  }
  ReconcileConfig config_;
  memcached_st* memc_;
};

// A PostgreSQL array literal of text elements: {"1","2"}.
std::string array_literal(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : ids[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

class PgSide final : public DbSide {
  // Timestamps as epoch microseconds; a timestamp without time zone counts as UTC.
  static std::string version_expression(const ReconcileConfig& c) {
    const std::string col = pg::quote_identifier(c.version_column);
    if (c.version_type == ReconcileConfig::VersionType::integer) return col + "::text";
    return "round(EXTRACT(EPOCH FROM " + col + ") * 1000000)::bigint::text";
  }

 public:
  explicit PgSide(const ReconcileConfig& c)
      : conn_(pg::ConnectOptions{c.source.dsn, c.source.password, c.connect_timeout, c.query_timeout}),
        // `= ANY($1)` lets PostgreSQL type $1 as an array of the id column's type, so the
        // primary-key index serves the lookup.
        sql_("SELECT " + pg::quote_identifier(c.id_column) + "::text, " + version_expression(c) + " FROM " +
             pg::quote_identifier(c.table) + " WHERE " + pg::quote_identifier(c.id_column) + " = ANY($1)"),
        id_(pg::quote_identifier(c.id_column)), table_(pg::quote_identifier(c.table)), batch_(c.batch) {}

  // Pages by keyset (id > last), so that no long transaction or cursor is held open.
  Status list_ids(const std::function<bool(const std::vector<std::string>&)>& page) override {
    const std::string select = "SELECT " + id_ + "::text FROM " + table_;
    const std::string order = " ORDER BY " + id_ + " LIMIT " + std::to_string(batch_);
    std::optional<std::string> last;
    while (true) {
      auto c = connection();
      if (!c) return c.error();
      // `= ANY`-style typing again: $1 takes the id column's type.
      auto rows = last ? c.value()->exec_params(select + " WHERE " + id_ + " > $1" + order, {*last})
                       : c.value()->exec_params(select + order, {});
      if (!rows) return rows.error();
      std::vector<std::string> ids;
      for (int r = 0; r < rows->size(); ++r) ids.emplace_back(*rows->get(r, 0));
      if (ids.empty() || !page(ids) || static_cast<int>(ids.size()) < batch_) return ok_status();
      last = ids.back();
    }
  }

  Result<std::map<std::string, int64_t>> versions(const std::vector<std::string>& ids) override {
    auto c = connection();
    if (!c) return c.error();
    auto rows = c.value()->exec_params(sql_, {array_literal(ids)});
    if (!rows) return rows.error();
    std::map<std::string, int64_t> out;
    for (int r = 0; r < rows->size(); ++r) {
      auto id = rows->get(r, 0);
      auto version = parse_number<int64_t>(rows->get(r, 1));
      if (!id || !version) return Error{"the version column must hold integers"};
      out.emplace(std::string(*id), *version);
    }
    return out;
  }

 private:
  Result<pg::Connection*> connection() {
    return conn_.get(std::stop_token(), [](pg::Connection&) { return ok_status(); });
  }
  LazyConnection<pg::Connection, pg::ConnectOptions> conn_;
  std::string sql_, id_, table_;
  int batch_;
};

class MysqlSide final : public DbSide {
 public:
  explicit MysqlSide(const ReconcileConfig& c) : config_(c), conn_(mysql::connect_options(c.source, probe_of(c)).value()) {}

  Result<std::map<std::string, int64_t>> versions(const std::vector<std::string>& ids) override {
    auto c = connection();
    if (!c) return c.error();
    std::string placeholders;
    for (std::size_t i = 0; i < ids.size(); ++i) placeholders += i ? ",?" : "?";
    auto rows = c.value()->execute("versions_" + std::to_string(ids.size()),
                                   "SELECT CAST(" + id() + " AS CHAR), CAST(" + version() + " AS CHAR) FROM " + table() +
                                       " WHERE " + id() + " IN (" + placeholders + ")",
                                   ids);
    if (!rows) return rows.error();
    std::map<std::string, int64_t> out;
    for (std::size_t r = 0; r < rows->rows.size(); ++r) {
      auto version = parse_number<int64_t>(rows->get(r, 1));
      if (!rows->get(r, 0) || !version) return Error{"the version column must hold integers"};
      out.emplace(*rows->get(r, 0), *version);
    }
    return out;
  }

  Status list_ids(const std::function<bool(const std::vector<std::string>&)>& page) override {
    std::optional<std::string> last;
    const std::string limit = " ORDER BY " + id() + " LIMIT " + std::to_string(config_.batch);
    while (true) {
      auto c = connection();
      if (!c) return c.error();
      auto rows = last ? c.value()->execute("ids_after", "SELECT CAST(" + id() + " AS CHAR) FROM " + table() + " WHERE " +
                                                             id() + " > ?" + limit, {*last})
                       : c.value()->execute("ids_first", "SELECT CAST(" + id() + " AS CHAR) FROM " + table() + limit, {});
      if (!rows) return rows.error();
      std::vector<std::string> ids;
      for (std::size_t r = 0; r < rows->rows.size(); ++r) ids.push_back(*rows->get(r, 0));
      if (ids.empty() || !page(ids) || static_cast<int>(ids.size()) < config_.batch) return ok_status();
      last = ids.back();
    }
  }

 private:
  static ProbeConfig probe_of(const ReconcileConfig& c) {
    ProbeConfig p;
    p.connect_timeout = c.connect_timeout;
    p.query_timeout = c.query_timeout;
    return p;
  }
  std::string id() const { return mysql::quote_identifier(config_.id_column); }
  // Timestamps as epoch microseconds; the session runs in UTC (see connection()).
  std::string version() const {
    const std::string col = mysql::quote_identifier(config_.version_column);
    if (config_.version_type == ReconcileConfig::VersionType::integer) return col;
    return "CAST(ROUND(UNIX_TIMESTAMP(" + col + ") * 1000000) AS SIGNED)";
  }
  std::string table() const { return mysql::quote_identifier(config_.table); }
  Result<mysql::Connection*> connection() {
    return conn_.get(std::stop_token(), [](mysql::Connection& c) {
      auto utc = c.query("SET time_zone = '+00:00'");
      return utc ? ok_status() : Status(utc.error());
    });
  }
  ReconcileConfig config_;
  LazyConnection<mysql::Connection, mysql::ConnectOptions> conn_;
};

}  // namespace

std::unique_ptr<CacheSide> make_cache_side(const ReconcileConfig& config) {
  if (config.cache.kind == CacheTargetConfig::Kind::memcached) return std::make_unique<MemcachedSide>(config);
  return std::make_unique<RedisSide>(config);
}

std::unique_ptr<DbSide> make_db_side(const ReconcileConfig& config) {
  if (config.source_kind == ProbeKind::mysql) return std::make_unique<MysqlSide>(config);
  return std::make_unique<PgSide>(config);
}

}  // namespace ghostwatch::reconcile
