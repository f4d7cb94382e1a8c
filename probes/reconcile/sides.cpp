// The reconciler's backends. Caches: Redis (SCAN, pipelined GET/HGET, DEL) and memcached (no
// scan: keys come from the DB's ids; multi-get, delete). Sources: PostgreSQL (one `= ANY($1)`
// query per batch) and MySQL/MariaDB (one `IN (...)` query per batch).
#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>

#include <algorithm>
#include <deque>

#include "common/parse_number.h"
#include "probes/cache/redis_link.h"
#include "probes/lazy_connection.h"
#include "probes/mysql/mysql_connection.h"
#include "probes/mysql/mysql_replication.h"
#include "probes/postgres/pg_connection.h"
#include "probes/reconcile/reconciler.h"

namespace ghostwatch::reconcile {
namespace {

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

// A Redis reply read without an allocation per element: hiredis builds it through the functions
// below, which append its leaves (strings, nils, integers) in order to one StringBatch instead of
// allocating a redisReply and a string for each. Enough for the replies read here: MGET, HGET,
// SCAN ([cursor, [keys]]) and DEL.
struct FlatReply {
  int type = 0;  // the root's REDIS_REPLY_*
  StringBatch leaves;  // nil: absent; an integer: its digits
  void clear() {
    type = 0;
    leaves.clear();
  }
};

FlatReply& flat_of(const redisReadTask* task) { return *static_cast<FlatReply*>(task->privdata); }

void* flat_string(const redisReadTask* task, char* str, size_t len) {
  FlatReply& f = flat_of(task);
  if (task->parent == nullptr) f.type = task->type;
  f.leaves.add({str, len});
  return &f;  // hiredis only needs a non-null object
}
void* flat_array(const redisReadTask* task, int) {
  FlatReply& f = flat_of(task);
  if (task->parent == nullptr) f.type = REDIS_REPLY_ARRAY;
  return &f;
}
void* flat_integer(const redisReadTask* task, long long value) {
  FlatReply& f = flat_of(task);
  if (task->parent == nullptr) f.type = REDIS_REPLY_INTEGER;
  f.leaves.add(std::to_string(value));
  return &f;
}
void* flat_nil(const redisReadTask* task) {
  FlatReply& f = flat_of(task);
  if (task->parent == nullptr) f.type = REDIS_REPLY_NIL;
  f.leaves.add_absent();
  return &f;
}
void flat_free(void*) {}  // the FlatReply belongs to its connection

redisReplyObjectFunctions kFlatReplyFunctions{flat_string, flat_array, flat_integer, flat_nil, flat_free};

// One Redis connection (RedisLink), re-opened after any error. Every reply is read into a
// FlatReply.
class RedisConnection {
 public:
  explicit RedisConnection(const ReconcileConfig& c) : link_(c.cache, c.connect_timeout, c.query_timeout) {
    link_.set_reply_functions(&kFlatReplyFunctions, &reply_);
  }

  Status connect() { return link_.connect(); }
  void append(const std::vector<std::string_view>& argv) { link_.append(argv); }
  Status flush() { return link_.flush(); }
  // The next reply; valid until the next call.
  Result<const FlatReply*> reply(const char* what) {
    reply_.clear();
    auto raw = link_.reply(what);
    if (!raw) return raw.error();
    return &reply_;
  }
  // A command and its reply, which must not be an error.
  Status command(const char* what, const std::vector<std::string_view>& argv) {
    append(argv);
    if (Status s = flush(); !s) return s;
    auto r = reply(what);
    if (!r) return r.error();
    if (r.value()->type == REDIS_REPLY_ERROR) return failure(what);  // the server's text may hold the argument
    return ok_status();
  }
  // Closes the connection, with whatever it had queued, and names what failed (no secret).
  Error failure(const char* what) { return link_.failure(what, ""); }
  void close() { link_.close(); }

 private:
  cache::RedisLink link_;
  FlatReply reply_;
};

// Keys by SCAN on a connection of their own, so that reads queued on the other one never stand
// between a SCAN and its answer. Plain and JSON values are read by MGET, hash fields by
// pipelined HGETs.
class RedisSide final : public CacheSide {
 public:
  explicit RedisSide(const ReconcileConfig& c) : config_(c), scanner_(config_), reader_(config_) {}
  bool can_scan() const override { return true; }

  // The next page's SCAN is sent before `page` sees this one, so that it runs while the page is
  // being reconciled.
  Status scan(const std::function<bool(const StringBatch&)>& page) override {
    if (Status s = scanner_.connect(); !s) return s;
    const std::string glob = glob_of(config_.cache.key), count = std::to_string(config_.batch);
    std::string cursor = "0";
    StringBatch keys;
    if (Status s = send_scan(cursor, glob, count); !s) return s;
    while (true) {
      auto reply = scanner_.reply("SCAN");
      if (!reply) return reply.error();
      const StringBatch& leaves = reply.value()->leaves;
      if (reply.value()->type != REDIS_REPLY_ARRAY || leaves.empty()) return scanner_.failure("SCAN (unexpected answer)");
      cursor.assign(leaves[0]);
      keys.clear();
      for (std::size_t i = 1; i < leaves.size(); ++i) keys.add(leaves[i]);
      const bool more = cursor != "0";
      if (more) {
        if (Status s = send_scan(cursor, glob, count); !s) return s;
      }
      if (!keys.empty() && !page(keys)) {
        if (more) scanner_.close();  // drops the SCAN in flight
        return ok_status();
      }
      if (!more) return ok_status();
    }
  }

  Status send_read(const StringBatch& keys) override {
    if (Status s = reader_.connect(); !s) return s;
    if (hash()) {
      for (std::size_t i = 0; i < keys.size(); ++i) reader_.append({"HGET", keys[i], config_.cache.field});
    } else {
      argv_.assign(1, "MGET");
      for (std::size_t i = 0; i < keys.size(); ++i) argv_.push_back(keys[i]);
      reader_.append(argv_);
    }
    queued_.push_back(keys.size());
    return reader_.flush();
  }

  // A value of a type we cannot read counts as absent: a miss (MGET answers nil for those; HGET
  // on a key that is no hash answers an error).
  Status receive_read(StringBatch& values) override {
    if (queued_.empty()) return Error{"redis: nothing was read"};
    const std::size_t n = queued_.front();
    queued_.pop_front();
    if (hash()) {
      for (std::size_t i = 0; i < n; ++i) {
        auto reply = reader_.reply("HGET");
        if (!reply) return reply.error();
        if (reply.value()->type == REDIS_REPLY_STRING) values.add(reply.value()->leaves[0]);
        else values.add_absent();
      }
      return ok_status();
    }
    auto reply = reader_.reply("MGET");
    if (!reply) return reply.error();
    if (reply.value()->type != REDIS_REPLY_ARRAY || reply.value()->leaves.size() != n) {
      return reader_.failure("MGET (unexpected answer)");
    }
    const StringBatch& leaves = reply.value()->leaves;
    for (std::size_t i = 0; i < n; ++i) {
      if (leaves.present(i)) values.add(leaves[i]);
      else values.add_absent();
    }
    return ok_status();
  }

  void discard() override {
    if (!queued_.empty()) reader_.close();
    queued_.clear();
  }

  Status remove(const std::vector<std::string>& keys) override {
    if (Status s = reader_.connect(); !s) return s;
    std::vector<std::string_view> argv{"DEL"};
    argv.insert(argv.end(), keys.begin(), keys.end());
    return reader_.command("DEL", argv);
  }

 private:
  bool hash() const { return config_.cache.format == CacheTargetConfig::Format::hash; }
  Status send_scan(const std::string& cursor, const std::string& glob, const std::string& count) {
    if (Status s = scanner_.connect(); !s) return s;
    scanner_.append({"SCAN", cursor, "MATCH", glob, "COUNT", count});
    return scanner_.flush();
  }

  ReconcileConfig config_;
  RedisConnection scanner_, reader_;
  std::deque<std::size_t> queued_;  // the sizes of the reads sent and not yet received
  std::vector<std::string_view> argv_;
};

// The positions of a batch's entries, sorted by text, to place answers that come back by name
// (memcached's multi-get, MySQL's rows) without a map node per entry.
class BatchIndex {
 public:
  void build(const StringBatch& batch) {
    batch_ = &batch;
    order_.resize(batch.size());
    for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    std::sort(order_.begin(), order_.end(), [&](std::size_t a, std::size_t b) { return batch[a] < batch[b]; });
  }
  // Calls fn(position) for every entry equal to `text`.
  template <class Fn>
  void each(std::string_view text, Fn fn) const {
    auto it = std::lower_bound(order_.begin(), order_.end(), text,
                               [&](std::size_t i, std::string_view t) { return (*batch_)[i] < t; });
    for (; it != order_.end() && (*batch_)[*it] == text; ++it) fn(*it);
  }

 private:
  const StringBatch* batch_ = nullptr;
  std::vector<std::size_t> order_;
};

// libmemcached has one multi-get in flight per connection: the next queued one is sent as soon
// as the previous one is received.
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
  Status scan(const std::function<bool(const StringBatch&)>&) override {
    return Error{"memcached cannot list its keys"};
  }

  Status send_read(const StringBatch& keys) override {
    queued_.push_back(&keys);
    return queued_.size() == 1 ? start(keys) : ok_status();
  }

  Status receive_read(StringBatch& values) override {
    if (queued_.empty()) return Error{"memcached: nothing was read"};
    const StringBatch& keys = *queued_.front();
    queued_.pop_front();
    index_.build(keys);
    at_.assign(keys.size(), kNotFound);
    values_.clear();
    memcached_return_t rc;
    memcached_result_st* result;
    while ((result = memcached_fetch_result(memc_, nullptr, &rc)) != nullptr) {
      const std::string_view key(memcached_result_key_value(result), memcached_result_key_length(result));
      index_.each(key, [&](std::size_t i) { at_[i] = values_.size(); });
      values_.add({memcached_result_value(result), memcached_result_length(result)});
      memcached_result_free(result);
    }
    if (rc != MEMCACHED_END && rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND) return failure(rc);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (at_[i] != kNotFound) values.add(values_[at_[i]]);
      else values.add_absent();
    }
    return queued_.empty() ? ok_status() : start(*queued_.front());
  }

  void discard() override {
    if (!queued_.empty()) memcached_quit(memc_);
    queued_.clear();
  }

  Status remove(const std::vector<std::string>& keys) override {
    for (const std::string& k : keys) {
      const memcached_return_t rc = memcached_delete(memc_, k.data(), k.size(), 0);
      if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND) return failure(rc);
    }
    return ok_status();
  }

 private:
  Status start(const StringBatch& keys) {
    pointers_.clear();
    lengths_.clear();
    for (std::size_t i = 0; i < keys.size(); ++i) {
      pointers_.push_back(keys[i].data());
      lengths_.push_back(keys[i].size());
    }
    const memcached_return_t rc = memcached_mget(memc_, pointers_.data(), lengths_.data(), pointers_.size());
    return rc == MEMCACHED_SUCCESS ? ok_status() : Status(failure(rc));
  }
  Error failure(memcached_return_t rc) {
    return Error{"memcached " + config_.cache.host + ":" + std::to_string(config_.cache.port) + ": " +
                 memcached_strerror(memc_, rc)};
  }
  ReconcileConfig config_;
  memcached_st* memc_;
  std::deque<const StringBatch*> queued_;
  std::vector<const char*> pointers_;
  std::vector<size_t> lengths_;
  static constexpr std::size_t kNotFound = ~std::size_t{0};
  BatchIndex index_;
  std::vector<std::size_t> at_;  // each key's value in values_, or kNotFound
  StringBatch values_;
};

// A PostgreSQL array literal of text elements, {"1","2"}, into `out`.
void array_literal(const StringBatch& ids, std::string& out) {
  out.assign("{");
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : ids[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
}

// Versions by one prepared statement per batch, several in flight in libpq's pipeline mode, on
// two connections in turn, so that two backends (two cores) serve the lookups; the rows come back
// with their ids' positions in the batch. Ids are listed on a connection of their own, so that
// the listing never waits behind the lookups.
class PgSide final : public DbSide {
  static constexpr std::size_t kLookupConnections = 2;
  using Lazy = LazyConnection<pg::Connection, pg::ConnectOptions>;

 public:
  explicit PgSide(const ReconcileConfig& c)
      : config_(c),
        lookups_{Lazy(options(c)), Lazy(options(c))},
        ids_conn_(options(c)) {}

  Status send_versions(const StringBatch& ids) override {
    Lazy& lookup = lookups_[next_];
    auto c = lookup.get(std::stop_token(), [this](pg::Connection& conn) { return prepare(conn); });
    if (!c) return c.error();
    array_literal(ids, literal_);
    if (Status s = c.value()->send_prepared("versions", {literal_.c_str()}); !s) return s;
    queued_.push_back({ids.size(), next_});
    next_ = (next_ + 1) % kLookupConnections;
    return ok_status();
  }

  Status receive_versions(Versions& versions) override {
    if (queued_.empty()) return Error{"postgres: no versions were asked for"};
    const Queued q = queued_.front();
    queued_.pop_front();
    versions.assign(q.size, std::nullopt);
    auto c = lookups_[q.connection].get(std::stop_token(),
                                        [](pg::Connection&) { return Status(Error{"connection lost"}); });
    if (!c) return c.error();
    auto rows = c.value()->receive();
    if (!rows) return rows.error();
    for (int r = 0; r < rows->size(); ++r) {
      auto position = parse_number<std::size_t>(rows->get(r, 0));
      auto version = parse_number<int64_t>(rows->get(r, 1));
      if (!version) return Error{"the version column must hold integers"};
      if (!position || *position < 1 || *position > q.size) return Error{"postgres: a row for no id of the batch"};
      versions[*position - 1] = *version;
    }
    return ok_status();
  }

  void discard() override {
    if (!queued_.empty()) {
      for (Lazy& lookup : lookups_) lookup.reset();
    }
    queued_.clear();
    next_ = 0;
  }

  // Pages by keyset (id > last), so that no long transaction or cursor is held open. The next
  // page is asked for before `page` sees this one, so that the query runs meanwhile.
  Status list_ids(const std::function<bool(const StringBatch&)>& page) override {
    auto c = ids_conn_.get(std::stop_token(), [this](pg::Connection& conn) { return prepare_listing(conn); });
    if (!c) return c.error();
    if (Status s = c.value()->send_prepared("ids_first", {}); !s) return s;
    StringBatch ids;
    std::string last;
    while (true) {
      auto rows = c.value()->receive();
      if (!rows) return rows.error();
      ids.clear();
      for (int r = 0; r < rows->size(); ++r) ids.add(rows->get(r, 0).value_or(""));
      const bool more = static_cast<int>(ids.size()) == config_.batch;
      if (more) {
        last.assign(ids[ids.size() - 1]);
        if (Status s = c.value()->send_prepared("ids_after", {last.c_str()}); !s) return s;
      }
      if (!ids.empty() && !page(ids)) {
        if (more) ids_conn_.reset();  // drops the page in flight
        return ok_status();
      }
      if (!more) return ok_status();
    }
  }

 private:
  // Qualified names: `ORDER BY id` would sort by the text output column of that name.
  Status prepare_listing(pg::Connection& conn) {
    const std::string select = "SELECT t." + id() + "::text FROM " + table() + " t";
    const std::string order = " ORDER BY t." + id() + " LIMIT " + std::to_string(config_.batch);
    if (Status s = conn.prepare("ids_first", select + order, 0); !s) return s;
    // $1 takes the id column's type.
    return conn.prepare("ids_after", select + " WHERE t." + id() + " > $1" + order, 1);
  }
  std::string id() const { return pg::quote_identifier(config_.id_column); }
  std::string table() const { return pg::quote_identifier(config_.table); }
  // Timestamps as epoch microseconds; a timestamp without time zone counts as UTC.
  std::string version() const {
    const std::string col = "t." + pg::quote_identifier(config_.version_column);
    if (config_.version_type == ReconcileConfig::VersionType::integer) return col + "::text";
    return "round(EXTRACT(EPOCH FROM " + col + ") * 1000000)::bigint::text";
  }

  // The ids travel as one array of the id column's own type, so that the primary-key index serves
  // each lookup; WITH ORDINALITY gives each row its id's position in the batch, which spares the
  // client a join by text.
  Status prepare(pg::Connection& conn) {
    auto type = conn.exec_params(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2 "
        "AND attnum > 0 AND NOT attisdropped",
        {table(), config_.id_column});
    if (!type) return type.error();
    if (type->size() != 1) return Error{"table " + config_.table + " has no column " + config_.id_column};
    const std::string sql = "SELECT k.n, " + version() + " FROM unnest($1::" + std::string(*type->get(0, 0)) +
                            "[]) WITH ORDINALITY AS k(id, n) JOIN " + table() + " t ON t." + id() + " = k.id";
    return conn.prepare("versions", sql, 1);
  }

  ReconcileConfig config_;
  static pg::ConnectOptions options(const ReconcileConfig& c) {
    return pg::ConnectOptions{c.source.dsn, c.source.password, c.connect_timeout, c.query_timeout};
  }
  struct Queued {
    std::size_t size, connection;
  };
  Lazy lookups_[kLookupConnections];
  Lazy ids_conn_;
  std::deque<Queued> queued_;  // the batches sent and not yet received, oldest first
  std::size_t next_ = 0;       // the lookup connection of the next batch
  std::string literal_;
};

// MySQL has no pipelining here: a batch's query runs when its answer is asked for.
class MysqlSide final : public DbSide {
 public:
  explicit MysqlSide(const ReconcileConfig& c) : config_(c), conn_(mysql::connect_options(c.source, probe_of(c)).value()) {}

  Status send_versions(const StringBatch& ids) override {
    queued_.push_back(&ids);
    return ok_status();
  }

  Status receive_versions(Versions& versions) override {
    if (queued_.empty()) return Error{"mysql: no versions were asked for"};
    const StringBatch& ids = *queued_.front();
    queued_.pop_front();
    versions.assign(ids.size(), std::nullopt);
    auto c = connection();
    if (!c) return c.error();
    params_.clear();
    std::string placeholders;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      params_.emplace_back(ids[i]);
      placeholders += i ? ",?" : "?";
    }
    auto rows = c.value()->execute("versions_" + std::to_string(ids.size()),
                                   "SELECT CAST(" + id() + " AS CHAR), CAST(" + version() + " AS CHAR) FROM " + table() +
                                       " WHERE " + id() + " IN (" + placeholders + ")",
                                   params_);
    if (!rows) return rows.error();
    index_.build(ids);
    for (std::size_t r = 0; r < rows->rows.size(); ++r) {
      auto version = parse_number<int64_t>(rows->get(r, 1));
      if (!rows->get(r, 0) || !version) return Error{"the version column must hold integers"};
      index_.each(*rows->get(r, 0), [&](std::size_t i) { versions[i] = *version; });
    }
    return ok_status();
  }

  void discard() override { queued_.clear(); }

  Status list_ids(const std::function<bool(const StringBatch&)>& page) override {
    std::optional<std::string> last;
    const std::string limit = " ORDER BY " + id() + " LIMIT " + std::to_string(config_.batch);
    StringBatch ids;
    while (true) {
      auto c = connection();
      if (!c) return c.error();
      auto rows = last ? c.value()->execute("ids_after", "SELECT CAST(" + id() + " AS CHAR) FROM " + table() + " WHERE " +
                                                             id() + " > ?" + limit, {*last})
                       : c.value()->execute("ids_first", "SELECT CAST(" + id() + " AS CHAR) FROM " + table() + limit, {});
      if (!rows) return rows.error();
      ids.clear();
      for (std::size_t r = 0; r < rows->rows.size(); ++r) ids.add(*rows->get(r, 0));
      if (ids.empty()) return ok_status();
      last = std::string(ids[ids.size() - 1]);
      if (!page(ids) || static_cast<int>(ids.size()) < config_.batch) return ok_status();
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
  std::deque<const StringBatch*> queued_;
  std::vector<std::string> params_;
  BatchIndex index_;
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
