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

std::optional<std::string> id_of(const std::string& key, const std::string& pattern) {
  const auto at = pattern.find("{id}");
  if (at == std::string::npos) return std::nullopt;
  const std::string prefix = pattern.substr(0, at), suffix = pattern.substr(at + 4);
  if (key.size() <= prefix.size() + suffix.size() || key.compare(0, prefix.size(), prefix) != 0 ||
      key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  return key.substr(prefix.size(), key.size() - prefix.size() - suffix.size());
}

Reconciler::Reconciler(const ReconcileConfig& config, std::unique_ptr<CacheSide> cache, std::unique_ptr<DbSide> db)
    : config_(config), cache_(std::move(cache)), db_(std::move(db)) {}

// Keeps the sweep at or under rate_limit keys per second.
void Reconciler::pace(long keys, std::stop_token stop) {
  paced_keys_ += keys;
  const auto allowed_at =
      pace_start_ + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(paced_keys_ / config_.rate_limit));
  if (allowed_at > std::chrono::steady_clock::now()) sleep_until(stop, allowed_at);
}

// Classifies a batch. First pass (`candidates` set): mismatches become candidates for the
// re-check. Re-check (`persistent` set): mismatches are final.
Status Reconciler::check_batch(const std::vector<std::string>& keys, SweepResult& result,
                               std::vector<Candidate>* candidates, std::vector<Mismatch>* persistent) {
  std::vector<std::string> ids;
  for (const std::string& key : keys) ids.push_back(*id_of(key, config_.cache.key));
  auto values = cache_->read(keys);
  if (!values) return values.error();
  auto versions = db_->versions(ids);
  if (!versions) return versions.error();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto& value = values.value()[i];
    if (!value) {
      if (candidates) ++result.misses;
      continue;
    }
    auto cached = config_.version_type == ReconcileConfig::VersionType::integer
                      ? cache::parse_cached_seq(*value, config_.cache)
                      : cache::parse_cached_timestamp(*value, config_.cache);
    if (!cached) {
      if (candidates) ++result.unparseable;
      continue;
    }
    if (candidates) ++result.checked;
    auto db = versions.value().find(ids[i]);
    std::optional<Kind> kind;
    if (db == versions.value().end()) kind = Kind::orphan;
    else if (cached.value() < db->second) kind = Kind::stale;
    else if (cached.value() > db->second) kind = Kind::ahead;
    if (!kind) continue;
    if (candidates) {
      candidates->push_back({keys[i], ids[i]});
    } else {
      persistent->push_back({keys[i], *kind, cached.value(),
                             db == versions.value().end() ? std::nullopt : std::optional<int64_t>(db->second)});
    }
  }
  return ok_status();
}

Result<SweepResult> Reconciler::sweep(const SweepOptions& options, std::stop_token stop) {
  const MonoTime start = std::chrono::steady_clock::now();
  pace_start_ = start;
  paced_keys_ = 0;
  SweepResult result;
  std::vector<Candidate> candidates;
  long seen = 0;
  std::optional<Error> failure;
  MonoTime last_progress = start;
  auto on_page = [&](const std::vector<std::string>& page) {
    std::vector<std::string> keys;
    for (const std::string& key : page) {
      if (options.limit > 0 && seen >= options.limit) break;
      if (!id_of(key, config_.cache.key)) continue;  // SCAN MATCH is a glob: keep exact pattern matches
      keys.push_back(key);
      ++seen;
    }
    for (std::size_t at = 0; at < keys.size(); at += static_cast<std::size_t>(config_.batch)) {
      const std::vector<std::string> batch(keys.begin() + at,
                                           keys.begin() + std::min(keys.size(), at + static_cast<std::size_t>(config_.batch)));
      if (Status s = check_batch(batch, result, &candidates, nullptr); !s) {
        failure = s.error();
        return false;
      }
      pace(static_cast<long>(batch.size()), stop);
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
  const std::string& pattern = config_.cache.key;
  const auto at = pattern.find("{id}");
  Status scanned = cache_->can_scan() ? cache_->scan(on_page) : db_->list_ids([&](const std::vector<std::string>& ids) {
    std::vector<std::string> keys;
    for (const std::string& id : ids) keys.push_back(pattern.substr(0, at) + id + pattern.substr(at + 4));
    return on_page(keys);
  });
  if (!scanned) return scanned.error();
  if (failure) return *failure;
  if (!candidates.empty()) {
    if (options.progress) {
      options.progress(config_.name + ": re-checking " + std::to_string(candidates.size()) + " mismatches after " +
                       std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(config_.grace).count()) + " ms");
    }
    if (!sleep_for(stop, config_.grace)) return Error{"interrupted by shutdown"};
    std::vector<Mismatch> persistent;
    for (std::size_t at = 0; at < candidates.size(); at += static_cast<std::size_t>(config_.batch)) {
      std::vector<std::string> keys;
      for (std::size_t i = at; i < std::min(candidates.size(), at + static_cast<std::size_t>(config_.batch)); ++i) {
        keys.push_back(candidates[i].key);
      }
      if (Status s = check_batch(keys, result, nullptr, &persistent); !s) return s.error();
    }
    for (const Mismatch& m : persistent) {
      ++result.counts[m.kind];
      if (static_cast<long>(result.mismatches.size()) < options.max_listed) result.mismatches.push_back(m);
    }
    if (options.repair) {
      std::vector<std::string> doomed;
      for (const Mismatch& m : persistent) {
        if (m.kind == Kind::ahead) continue;  // newer than the DB: not ours to judge
        doomed.push_back(m.key);
      }
      if (!doomed.empty()) {
        if (Status s = cache_->remove(doomed); !s) return s.error();
        for (const std::string& key : doomed) log::info("repaired (deleted) " + key, {{"probe", config_.name}});
        result.repaired = std::move(doomed);
      }
    }
  }
  result.duration = std::chrono::steady_clock::now() - start;
  return result;
}

}  // namespace ghostwatch::reconcile
