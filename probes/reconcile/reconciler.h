// Reconciler: cache-vs-DB consistency (DESIGN.md §4). A sweep walks the cache's keys, reads the
// entries in batches, looks up the DB's versions with one query per batch (several batches in
// flight on both sides at once), and classifies each entry: consistent, stale (cache older than
// the DB), ahead (cache newer), orphan (cached, no DB row). A cache miss is not a mismatch; a value that cannot be parsed is
// counted as unparseable. Mismatches are re-checked after `grace`, and only those that persist
// are reported, so that updates in flight between the DB and the cache pass.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
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

// The strings of one batch (keys, ids or cached values) in one buffer, so that a batch costs no
// allocation per entry once its buffers have grown. An entry may be absent (a cache miss).
class StringBatch {
 public:
  void clear() {
    bytes_.clear();
    ends_.clear();
    present_.clear();
  }
  void add(std::string_view s) {
    bytes_.append(s);
    ends_.push_back(bytes_.size());
    present_.push_back(1);
  }
  void add_absent() {
    ends_.push_back(bytes_.size());
    present_.push_back(0);
  }
  std::size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }
  bool present(std::size_t i) const { return present_[i] != 0; }
  // The entry's text ("" when absent).
  std::string_view operator[](std::size_t i) const {
    const std::size_t begin = i == 0 ? 0 : ends_[i - 1];
    return std::string_view(bytes_).substr(begin, ends_[i] - begin);
  }

 private:
  std::string bytes_;
  std::vector<std::size_t> ends_;
  std::vector<unsigned char> present_;
};

// The DB's versions of a batch's ids, by position; nullopt where the table has no such row.
using Versions = std::vector<std::optional<int64_t>>;

// Both sides are pipelined, so that several batches are in flight on each at once: send_*
// queues a batch and returns without waiting for its answer (the batch stays valid until that
// answer is received); receive_* answers for the oldest queued batch, in the batch's order.
// discard() drops whatever is queued (after a failure, and before each sweep).

// The cache side: key discovery and batched reads (Redis: SCAN + MGET or pipelined HGETs).
class CacheSide {
 public:
  virtual ~CacheSide() = default;
  // False for caches that cannot list their keys (memcached): keys then come from the DB's ids.
  virtual bool can_scan() const = 0;
  // Calls `page` with each batch of keys matching the pattern until it returns false or the
  // keys run out.
  virtual Status scan(const std::function<bool(const StringBatch&)>& page) = 0;
  virtual Status send_read(const StringBatch& keys) = 0;
  // The raw values of the oldest queued read, absent for a miss.
  virtual Status receive_read(StringBatch& values) = 0;
  virtual void discard() = 0;
  virtual Status remove(const std::vector<std::string>& keys) = 0;
};

// The DB side: the versions of batches of ids.
class DbSide {
 public:
  virtual ~DbSide() = default;
  virtual Status send_versions(const StringBatch& ids) = 0;
  virtual Status receive_versions(Versions& versions) = 0;
  virtual void discard() = 0;
  // Calls `page` with the table's ids in ascending order, a batch at a time, until it returns
  // false or the ids run out.
  virtual Status list_ids(const std::function<bool(const StringBatch&)>& page) = 0;
};

struct SweepOptions {
  long limit = 0;       // stop after this many keys (0: all)
  long max_listed = 1000;  // mismatches kept in the result
  bool repair = false;  // delete persistent stale and orphan entries
  std::function<void(const std::string&)> progress;  // called now and then with a status line
};

// The text around {id} in a key pattern.
struct KeyPattern {
  explicit KeyPattern(const std::string& pattern);
  std::optional<std::string_view> id_in(std::string_view key) const;  // nullopt: no match
  std::string prefix, suffix;
  bool has_id = false;
};

class Reconciler {
 public:
  // Batches sent and not yet received, on each side.
  static constexpr std::size_t kInFlight = 4;

  Reconciler(const ReconcileConfig& config, std::unique_ptr<CacheSide> cache, std::unique_ptr<DbSide> db);
  Result<SweepResult> sweep(const SweepOptions& options, std::stop_token stop);

 private:
  struct Candidate {
    std::string key, id;
  };
  struct Slot {
    StringBatch keys, ids, values;
    Versions versions;
  };
  // First pass (`candidates` set): mismatches become candidates for the re-check. Re-check
  // (`persistent` set): mismatches are final.
  struct Pass {
    SweepResult& result;
    std::vector<Candidate>* candidates;
    std::vector<Mismatch>* persistent;
    std::stop_token stop;
  };
  Status add(std::string_view key, std::string_view id, Pass& pass);
  Status send_filling(Pass& pass);
  Status receive_oldest(Pass& pass);
  Status drain(Pass& pass);
  void classify(const Slot& slot, Pass& pass);
  void restart_pipeline();
  Slot& filling() { return slots_[(oldest_ + in_flight_) % slots_.size()]; }
  Result<SweepResult> recheck(std::vector<Candidate> candidates, SweepResult result, const SweepOptions& options,
                              std::stop_token stop);
  void pace(long keys, std::stop_token stop);

  ReconcileConfig config_;
  KeyPattern pattern_;
  std::unique_ptr<CacheSide> cache_;
  std::unique_ptr<DbSide> db_;
  std::vector<Slot> slots_;  // a ring: the batches in flight, then the one being filled
  std::size_t oldest_ = 0, in_flight_ = 0;
  MonoTime pace_start_{};
  long paced_keys_ = 0;
};

// The id in a key, by the pattern's text around {id}; nullopt when the key does not match.
std::optional<std::string> id_of(const std::string& key, const std::string& pattern);

// Backends for a config: Redis or memcached for the cache, PostgreSQL or MySQL for the DB.
std::unique_ptr<CacheSide> make_cache_side(const ReconcileConfig& config);
std::unique_ptr<DbSide> make_db_side(const ReconcileConfig& config);

}  // namespace ghostwatch::reconcile
