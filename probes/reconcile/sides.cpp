// The reconciler's backends: Redis (SCAN, pipelined GET/HGET, DEL) and PostgreSQL (one
// `= ANY($1)` query per batch). memcached (no scan: ids paged from the DB) and MySQL sources are
// rejected by the config loader until they exist.
#include <hiredis/hiredis.h>

#include "common/parse_number.h"
#include "common/redact.h"
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
    auto ok = [this](redisReply* r) {
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
 public:
  explicit PgSide(const ReconcileConfig& c)
      : options_{c.source.dsn, c.source.password, c.connect_timeout, c.query_timeout},
        // `= ANY($1)` lets PostgreSQL type $1 as an array of the id column's type, so the
        // primary-key index serves the lookup.
        sql_("SELECT " + pg::quote_identifier(c.id_column) + "::text, " + pg::quote_identifier(c.version_column) +
             "::text FROM " + pg::quote_identifier(c.table) + " WHERE " + pg::quote_identifier(c.id_column) +
             " = ANY($1)") {}

  Result<std::map<std::string, int64_t>> versions(const std::vector<std::string>& ids) override {
    if (conn_ && conn_->broken()) conn_.reset();
    if (!conn_) {
      auto opened = pg::Connection::open(options_, std::stop_token());
      if (!opened) return opened.error();
      conn_ = std::move(opened.value());
    }
    auto rows = conn_->exec_params(sql_, {array_literal(ids)});
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
  pg::ConnectOptions options_;
  std::string sql_;
  std::unique_ptr<pg::Connection> conn_;
};

}  // namespace

std::unique_ptr<CacheSide> make_cache_side(const ReconcileConfig& config) { return std::make_unique<RedisSide>(config); }
std::unique_ptr<DbSide> make_db_side(const ReconcileConfig& config) { return std::make_unique<PgSide>(config); }

}  // namespace ghostwatch::reconcile
