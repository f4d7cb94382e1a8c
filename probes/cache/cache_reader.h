// Cache targets: a Redis or memcached key that the user's own pipeline (write-through,
// invalidation, CDC) fills with the canary. A poll reads the key and reports the seq it holds
// (mode update), or reports every earlier canary as seen once the old value is gone (mode
// invalidate). A value that cannot be parsed is a poll error with the reason, never a crash.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "probes/canary_backend.h"
#include "probes/probe_config.h"

namespace ghostwatch::cache {

std::unique_ptr<CanaryReader> make_cache_reader(const CacheTargetConfig& cache, const std::string& agent_id,
                                                const ProbeConfig& probe);
// The same reads for the event loop (async_cache_reader.cpp), a host name looked up on the
// resolver's threads (common/resolver.h); null when the key is not one memcached's text protocol
// can carry.
std::unique_ptr<AsyncCanaryReader> make_async_cache_reader(const CacheTargetConfig& cache, const std::string& agent_id,
                                                           const ProbeConfig& probe);

// What a cache read found: nullopt when the key (or hash field) is absent.
using Fetched = Result<std::optional<std::string>>;
// What a poll makes of it, by the target's format and mode.
Result<CanaryPoll> canary_poll_of(const Fetched& value, const CacheTargetConfig& cache, const std::string& key);

// Fills the key template: {agent} and {probe}.
std::string expand_key(const std::string& key_template, const std::string& agent, const std::string& probe);

// The canary seq in a cached value, by the target's format (for hash, `value` is the field's).
Result<int64_t> parse_cached_seq(const std::string& value, const CacheTargetConfig& cache);

// A timestamp version in a cached value (ISO-8601 or epoch seconds), as epoch microseconds.
Result<int64_t> parse_cached_timestamp(const std::string& value, const CacheTargetConfig& cache);

// The same without the reason when there is none, for the reconciler's hot path: plain and hash
// values are read in place, without an allocation.
std::optional<int64_t> cached_seq(std::string_view value, const CacheTargetConfig& cache);
std::optional<int64_t> cached_timestamp(std::string_view value, const CacheTargetConfig& cache);

}  // namespace ghostwatch::cache
