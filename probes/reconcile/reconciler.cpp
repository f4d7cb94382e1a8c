#include "probes/reconcile/reconciler.h"

#include <algorithm>

#include "common/interruptible.h"
#include "common/log.h"
#include "probes/cache/cache_reader.h"

namespace ghostwatch::reconcile {

const char* to_string(Kind kind) {
  switch (kind) {
    case Kind::stale: return "stale";
    case Kind::ahead: return "ahead";
    case Kind::orphan: return "orphan";
  }
  return "?";
}

double SweepResult::consistent_ratio() const {
  if (checked == 0) return 1.0;
  long mismatched = 0;
  for (const auto& [kind, n] : counts) mismatched += n;
  return static_cast<double>(checked - mismatched) / static_cast<double>(checked);
}

KeyPattern::KeyPattern(const std::string& pattern) {
  const auto at = pattern.find("{id}");
  if (at == std::string::npos) return;
  has_id = true;
  prefix = pattern.substr(0, at);
  suffix = pattern.substr(at + 4);
}

std::optional<std::string_view> KeyPattern::id_in(std::string_view key) const {
  if (!has_id || key.size() <= prefix.size() + suffix.size() || !key.starts_with(prefix) || !key.ends_with(suffix)) {
    return std::nullopt;
  }
  return key.substr(prefix.size(), key.size() - prefix.size() - suffix.size());
}

std::optional<std::string> id_of(const std::string& key, const std::string& pattern) {
  auto id = KeyPattern(pattern).id_in(key);
  return id ? std::optional<std::string>(*id) : std::nullopt;
}

Reconciler::Reconciler(const ReconcileConfig& config, std::unique_ptr<CacheSide> cache, std::unique_ptr<DbSide> db)
    : config_(config), pattern_(config.cache.key), cache_(std::move(cache)), db_(std::move(db)), slots_(kInFlight + 1) {}

// Keeps the sweep at or under rate_limit keys per second.
void Reconciler::pace(long keys, std::stop_token stop) {
  paced_keys_ += keys;
  const auto allowed_at =
      pace_start_ + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(paced_keys_ / config_.rate_limit));
  if (allowed_at > std::chrono::steady_clock::now()) sleep_until(stop, allowed_at);
}

// Forgets every batch in flight (the sides drop their queued answers) and empties the ring.
void Reconciler::restart_pipeline() {
  cache_->discard();
  db_->discard();
  for (Slot& slot : slots_) {
    slot.keys.clear();
    slot.ids.clear();
  }
  oldest_ = 0;
  in_flight_ = 0;
}

Status Reconciler::add(std::string_view key, std::string_view id, Pass& pass) {
  Slot& slot = filling();
  slot.keys.add(key);
  slot.ids.add(id);
  if (static_cast<int>(slot.keys.size()) < config_.batch) return ok_status();
  return send_filling(pass);
}

// Sends the batch being filled to both sides, first receiving the oldest when the ring is full.
Status Reconciler::send_filling(Pass& pass) {
  if (filling().keys.empty()) return ok_status();
  if (in_flight_ == kInFlight) {
    if (Status s = receive_oldest(pass); !s) return s;
  }
  Slot& slot = filling();
  if (Status s = cache_->send_read(slot.keys); !s) return s;
  if (Status s = db_->send_versions(slot.ids); !s) return s;
  ++in_flight_;
  pace(static_cast<long>(slot.keys.size()), pass.stop);
  return ok_status();
}

Status Reconciler::receive_oldest(Pass& pass) {
  Slot& slot = slots_[oldest_];
  slot.values.clear();
  if (Status s = cache_->receive_read(slot.values); !s) return s;
  if (Status s = db_->receive_versions(slot.versions); !s) return s;
  if (slot.values.size() != slot.keys.size() || slot.versions.size() != slot.ids.size()) {
    return Error{"a side answered for another batch (" + std::to_string(slot.values.size()) + " values, " +
                 std::to_string(slot.versions.size()) + " versions for " + std::to_string(slot.keys.size()) + " keys)"};
  }
  classify(slot, pass);
  slot.keys.clear();
  slot.ids.clear();
  oldest_ = (oldest_ + 1) % slots_.size();
  --in_flight_;
  return ok_status();
}

Status Reconciler::drain(Pass& pass) {
  if (Status s = send_filling(pass); !s) return s;
  while (in_flight_ > 0) {
    if (Status s = receive_oldest(pass); !s) return s;
  }
  return ok_status();
}

void Reconciler::classify(const Slot& slot, Pass& pass) {
  const bool integer = config_.version_type == ReconcileConfig::VersionType::integer;
  for (std::size_t i = 0; i < slot.keys.size(); ++i) {
    if (!slot.values.present(i)) {
      if (pass.candidates) ++pass.result.misses;
      continue;
    }
    const auto cached = integer ? cache::cached_seq(slot.values[i], config_.cache)
                                : cache::cached_timestamp(slot.values[i], config_.cache);
    if (!cached) {
      if (pass.candidates) ++pass.result.unparseable;
      continue;
    }
    if (pass.candidates) ++pass.result.checked;
    const std::optional<int64_t>& db = slot.versions[i];
    std::optional<Kind> kind;
    if (!db) kind = Kind::orphan;
    else if (*cached < *db) kind = Kind::stale;
    else if (*cached > *db) kind = Kind::ahead;
    if (!kind) continue;
    if (pass.candidates) pass.candidates->push_back({std::string(slot.keys[i]), std::string(slot.ids[i])});
    else pass.persistent->push_back({std::string(slot.keys[i]), *kind, *cached, db});
  }
}

Result<SweepResult> Reconciler::sweep(const SweepOptions& options, std::stop_token stop) {
  const MonoTime start = std::chrono::steady_clock::now();
  pace_start_ = start;
  paced_keys_ = 0;
  restart_pipeline();
  SweepResult result;
  std::vector<Candidate> candidates;
  Pass first{result, &candidates, nullptr, stop};
  long seen = 0;
  std::optional<Error> failure;
  MonoTime last_progress = start;
  auto on_page = [&](const StringBatch& page) {
    for (std::size_t i = 0; i < page.size(); ++i) {
      if (options.limit > 0 && seen >= options.limit) break;
      const auto id = pattern_.id_in(page[i]);
      if (!id) continue;  // SCAN MATCH is a glob: keep exact pattern matches
      ++seen;
      if (Status s = add(page[i], *id, first); !s) {
        failure = s.error();
        return false;
      }
    }
    if (options.progress && std::chrono::steady_clock::now() - last_progress > std::chrono::seconds(1)) {
      last_progress = std::chrono::steady_clock::now();
      options.progress(config_.name + ": " + std::to_string(seen) + " keys, " + std::to_string(candidates.size()) +
                       " mismatches to re-check");
    }
    return !stop.stop_requested() && !(options.limit > 0 && seen >= options.limit);
  };
  // Without a scan (memcached), the keys are the DB's ids put into the pattern; orphans (cached
  // without a row) cannot be found that way.
  StringBatch keys;
  Status scanned = cache_->can_scan() ? cache_->scan(on_page) : db_->list_ids([&](const StringBatch& ids) {
    keys.clear();
    std::string key;
    for (std::size_t i = 0; i < ids.size(); ++i) keys.add(key.assign(pattern_.prefix).append(ids[i]).append(pattern_.suffix));
    return on_page(keys);
  });
  if (scanned && !failure) scanned = drain(first);
  if (!scanned || failure) {
    restart_pipeline();
    return failure ? *failure : scanned.error();
  }
  if (candidates.empty()) {
    result.duration = std::chrono::steady_clock::now() - start;
    return result;
  }
  auto rechecked = recheck(std::move(candidates), std::move(result), options, stop);
  if (!rechecked) return rechecked;
  rechecked->duration = std::chrono::steady_clock::now() - start;
  return rechecked;
}

// The second look at the first pass's mismatches, after `grace`; then the repair.
Result<SweepResult> Reconciler::recheck(std::vector<Candidate> candidates, SweepResult result,
                                        const SweepOptions& options, std::stop_token stop) {
  if (options.progress) {
    options.progress(config_.name + ": re-checking " + std::to_string(candidates.size()) + " mismatches after " +
                     std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(config_.grace).count()) + " ms");
  }
  if (!sleep_for(stop, config_.grace)) return Error{"interrupted by shutdown"};
  std::vector<Mismatch> persistent;
  Pass again{result, nullptr, &persistent, stop};
  for (const Candidate& c : candidates) {
    if (Status s = add(c.key, c.id, again); !s) {
      restart_pipeline();
      return s.error();
    }
  }
  if (Status s = drain(again); !s) {
    restart_pipeline();
    return s.error();
  }
  for (const Mismatch& m : persistent) {
    ++result.counts[m.kind];
    if (static_cast<long>(result.mismatches.size()) < options.max_listed) result.mismatches.push_back(m);
  }
  if (!options.repair) return result;
  std::vector<std::string> doomed;
  for (const Mismatch& m : persistent) {
    if (m.kind == Kind::ahead) continue;  // newer than the DB: not ours to judge
    doomed.push_back(m.key);
  }
  if (doomed.empty()) return result;
  if (Status s = cache_->remove(doomed); !s) return s.error();
  for (const std::string& key : doomed) log::info("repaired (deleted) " + key, {{"probe", config_.name}});
  result.repaired = std::move(doomed);
  return result;
}

}  // namespace ghostwatch::reconcile
