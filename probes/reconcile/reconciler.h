// Reconciler: cache-vs-DB consistency (DESIGN.md §4). A sweep walks the cache's keys, reads the
// entries in pipelined batches, looks up the DB's versions with one query per batch, and
// classifies each entry: consistent, stale (cache older than the DB), ahead (cache newer),
// orphan (cached, no DB row). A cache miss is not a mismatch; a value that cannot be parsed is
// counted as unparseable. Mismatches are re-checked after `grace`, and only those that persist
// are reported, so that updates in flight between the DB and the cache pass.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "probes/probe_config.h"

namespace ghostwatch::reconcile {

enum class Kind { stale, ahead, orphan };
const char* to_string(Kind kind);

struct Mismatch {
  std::string key;
  Kind kind;
  int64_t cache_version = 0;
  std::optional<int64_t> db_version;  // nullopt for orphans
};

struct SweepResult {
  long checked = 0;      // entries present and parseable, compared with the DB
  long unparseable = 0;
  long misses = 0;       // keys that vanished between scan and read
  std::map<Kind, long> counts;
  std::vector<Mismatch> mismatches;  // persistent ones, at most the report limit
  std::vector<std::string> repaired;  // keys deleted by repair
  Duration duration{0};
  double consistent_ratio() const;
};

// The cache side: key discovery and batched reads (Redis: SCAN + pipelined GET/HGET).
class CacheSide {
 public:
  virtual ~CacheSide() = default;
  // False for caches that cannot list their keys (memcached): keys then come from the DB's ids.
  virtual bool can_scan() const = 0;
  // Calls `page` with each batch of keys matching the pattern until it returns false or the
  // keys run out.
  virtual Status scan(const std::function<bool(const std::vector<std::string>&)>& page) = 0;
  // The raw values (nullopt: absent), in key order.
  virtual Result<std::vector<std::optional<std::string>>> read(const std::vector<std::string>& keys) = 0;
  virtual Status remove(const std::vector<std::string>& keys) = 0;
};

// The DB side: the versions of the given ids (absent ids are missing rows).
class DbSide {
 public:
  virtual ~DbSide() = default;
  virtual Result<std::map<std::string, int64_t>> versions(const std::vector<std::string>& ids) = 0;
  // Calls `page` with the table's ids in ascending order, a batch at a time, until it returns
  // false or the ids run out.
  virtual Status list_ids(const std::function<bool(const std::vector<std::string>&)>& page) = 0;
};

struct SweepOptions {
  long limit = 0;       // stop after this many keys (0: all)
  long max_listed = 1000;  // mismatches kept in the result
  bool repair = false;  // delete persistent stale and orphan entries
  std::function<void(const std::string&)> progress;  // called now and then with a status line
};

class Reconciler {
 public:
  Reconciler(const ReconcileConfig& config, std::unique_ptr<CacheSide> cache, std::unique_ptr<DbSide> db);
  Result<SweepResult> sweep(const SweepOptions& options, std::stop_token stop);

 private:
  struct Candidate {
    std::string key, id;
  };
  Status check_batch(const std::vector<std::string>& keys, SweepResult& result, std::vector<Candidate>* candidates,
                     std::vector<Mismatch>* persistent);
  void pace(long keys, std::stop_token stop);

  ReconcileConfig config_;
  std::unique_ptr<CacheSide> cache_;
  std::unique_ptr<DbSide> db_;
  MonoTime pace_start_{};
  long paced_keys_ = 0;
};

// The id in a key, by the pattern's text around {id}; nullopt when the key does not match.
std::optional<std::string> id_of(const std::string& key, const std::string& pattern);

// Backends for a config: Redis or memcached for the cache, PostgreSQL or MySQL for the DB.
std::unique_ptr<CacheSide> make_cache_side(const ReconcileConfig& config);
std::unique_ptr<DbSide> make_db_side(const ReconcileConfig& config);

}  // namespace ghostwatch::reconcile
