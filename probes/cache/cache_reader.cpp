#include "probes/cache/cache_reader.h"

#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>

#include <nlohmann/json.hpp>

#include "common/parse_number.h"
#include "common/timestamp.h"
#include "probes/cache/redis_link.h"

namespace ghostwatch::cache {
namespace {

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  return s;
}

// One Redis connection (RedisLink), re-opened after any error.
class RedisClient {
 public:
  RedisClient(const CacheTargetConfig& c, Duration connect_timeout, Duration timeout)
      : config_(c), link_(c, connect_timeout, timeout) {}

  Fetched fetch(const std::string& key) {
    if (Status s = link_.connect(); !s) return s.error();
    if (config_.format == CacheTargetConfig::Format::hash) link_.append({"HGET", key, config_.field});
    else link_.append({"GET", key});
    if (Status s = link_.flush(); !s) return s.error();
    auto raw = link_.reply("GET");
    if (!raw) return raw.error();
    auto* reply = static_cast<redisReply*>(raw.value());
    Fetched out = std::optional<std::string>();
    if (reply->type == REDIS_REPLY_STRING) out = std::optional<std::string>(std::string(reply->str, reply->len));
    else if (reply->type == REDIS_REPLY_ERROR) out = Error{"redis: " + std::string(reply->str, reply->len)};
    else if (reply->type != REDIS_REPLY_NIL) out = Error{"redis: unexpected reply type " + std::to_string(reply->type)};
    freeReplyObject(reply);
    return out;
  }

 private:
  CacheTargetConfig config_;
  RedisLink link_;
};

class MemcachedClient {
 public:
  MemcachedClient(const CacheTargetConfig& c, Duration connect_timeout, Duration timeout) : config_(c) {
    memc_ = memcached_create(nullptr);
    memcached_server_add(memc_, c.host.c_str(), static_cast<in_port_t>(c.port));
    const auto ms = [](Duration d) { return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); };
    memcached_behavior_set(memc_, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, ms(connect_timeout));
    memcached_behavior_set(memc_, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, ms(timeout));
    memcached_behavior_set(memc_, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, ms(timeout) * 1000);
    memcached_behavior_set(memc_, MEMCACHED_BEHAVIOR_SND_TIMEOUT, ms(timeout) * 1000);
    // A down server must be retried at the next poll, not marked dead for a while.
    memcached_behavior_set(memc_, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 0);
  }
  ~MemcachedClient() { memcached_free(memc_); }

  Fetched fetch(const std::string& key) {
    size_t length = 0;
    uint32_t flags = 0;
    memcached_return_t rc;
    char* value = memcached_get(memc_, key.data(), key.size(), &length, &flags, &rc);
    if (rc == MEMCACHED_NOTFOUND) return std::optional<std::string>();
    if (rc != MEMCACHED_SUCCESS) {
      if (value) free(value);
      return Error{"memcached " + config_.host + ":" + std::to_string(config_.port) + ": " +
                   memcached_strerror(memc_, rc)};
    }
    std::string out(value ? value : "", length);
    free(value);
    return std::optional<std::string>(std::move(out));
  }

 private:
  CacheTargetConfig config_;
  memcached_st* memc_;
};

template <class Client>
class CacheReader final : public CanaryReader {
 public:
  CacheReader(const CacheTargetConfig& c, std::string key, Duration connect_timeout, Duration timeout)
      : config_(c), key_(std::move(key)), client_(c, connect_timeout, timeout) {}

  Result<CanaryPoll> poll(std::stop_token) override { return canary_poll_of(client_.fetch(key_), config_, key_); }

 private:
  CacheTargetConfig config_;
  std::string key_;
  Client client_;
};

}  // namespace

Result<CanaryPoll> canary_poll_of(const Fetched& value, const CacheTargetConfig& cache, const std::string& key) {
  if (!value) return value.error();
  CanaryPoll poll;
  if (!value.value()) {
    // Invalidation removed the old value: every canary acked before this read is visible.
    if (cache.mode == CacheTargetConfig::Mode::invalidate) poll.everything_acked_before_sent = true;
    return poll;
  }
  auto seq = parse_cached_seq(*value.value(), cache);
  if (!seq) return Error{"key " + key + ": " + seq.error().message};
  poll.seq = seq.value();
  return poll;
}

std::string expand_key(const std::string& key_template, const std::string& agent, const std::string& probe) {
  std::string key = key_template;
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"{agent}", agent}, {"{probe}", probe}}) {
    for (std::size_t pos = key.find(from); pos != std::string::npos; pos = key.find(from, pos + to.size())) {
      key.replace(pos, from.size(), to);
    }
  }
  return key;
}

namespace {

std::string shown(const std::string& value) { return value.size() > 40 ? value.substr(0, 40) + "..." : value; }

// The version's text: the value itself (plain, hash field) or the JSON value at the pointer.
Result<std::string> version_text(const std::string& value, const CacheTargetConfig& cache) {
  if (cache.format != CacheTargetConfig::Format::json) return std::string(trimmed(value));
  auto json = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return Error{"unparseable value '" + shown(value) + "': not JSON"};
  const nlohmann::json::json_pointer pointer(cache.field);
  if (!json.contains(pointer)) return Error{"unparseable value '" + shown(value) + "': nothing at " + cache.field};
  const auto& v = json.at(pointer);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();
  return Error{"unparseable value '" + shown(value) + "': " + cache.field + " is neither a number nor a string"};
}

}  // namespace

Result<int64_t> parse_cached_seq(const std::string& value, const CacheTargetConfig& cache) {
  auto text = version_text(value, cache);
  if (!text) return text.error();
  if (auto seq = parse_number<int64_t>(std::string_view(text.value()))) return *seq;
  const std::string what = cache.format == CacheTargetConfig::Format::json ? cache.field + " is" : "";
  return Error{"unparseable value '" + shown(value) + "': " + (what.empty() ? "not" : what + " not") + " an integer"};
}

Result<int64_t> parse_cached_timestamp(const std::string& value, const CacheTargetConfig& cache) {
  auto text = version_text(value, cache);
  if (!text) return text.error();
  if (auto micros = parse_epoch_micros(text.value())) return *micros;
  return Error{"unparseable value '" + shown(value) + "': not an ISO-8601 time or epoch seconds"};
}

std::optional<int64_t> cached_seq(std::string_view value, const CacheTargetConfig& cache) {
  if (cache.format == CacheTargetConfig::Format::json) {
    auto seq = parse_cached_seq(std::string(value), cache);
    return seq ? std::optional<int64_t>(seq.value()) : std::nullopt;
  }
  return parse_number<int64_t>(trimmed(value));
}

std::optional<int64_t> cached_timestamp(std::string_view value, const CacheTargetConfig& cache) {
  if (cache.format == CacheTargetConfig::Format::json) {
    auto micros = parse_cached_timestamp(std::string(value), cache);
    return micros ? std::optional<int64_t>(micros.value()) : std::nullopt;
  }
  return parse_epoch_micros(trimmed(value));
}

std::unique_ptr<CanaryReader> make_cache_reader(const CacheTargetConfig& cache, const std::string& agent_id,
                                                const ProbeConfig& probe) {
  const std::string key = expand_key(cache.key, agent_id, probe.name);
  if (cache.kind == CacheTargetConfig::Kind::redis) {
    return std::make_unique<CacheReader<RedisClient>>(cache, key, probe.connect_timeout, probe.query_timeout);
  }
  return std::make_unique<CacheReader<MemcachedClient>>(cache, key, probe.connect_timeout, probe.query_timeout);
}

}  // namespace ghostwatch::cache
