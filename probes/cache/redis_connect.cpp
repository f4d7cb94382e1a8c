#include "probes/cache/redis_connect.h"

#include <hiredis/hiredis.h>

#include "common/redact.h"

namespace ghostwatch::cache {
namespace {

timeval to_timeval(Duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
}

// Why `command` failed, empty when it did not: the server's error reply (scrubbed later, like
// every message), or the context's own error.
std::string refusal(redisContext* ctx, const char* format, const std::string& argument) {
  auto* reply = static_cast<redisReply*>(redisCommand(ctx, format, argument.data(), argument.size()));
  if (reply == nullptr) return ctx->errstr[0] ? ctx->errstr : "no reply";
  std::string why = reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len) : std::string();
  freeReplyObject(reply);
  return why;
}

}  // namespace

Error redis_error(const CacheTargetConfig& cache, const char* what, const redisContext* ctx) {
  return redis_error(cache, what, ctx != nullptr ? std::string(ctx->errstr) : std::string());
}

Error redis_error(const CacheTargetConfig& cache, const char* what, const std::string& why) {
  std::string message = "redis " + cache.host + ":" + std::to_string(cache.port) + ": ";
  if (what) message += std::string(what) + " failed" + (why.empty() ? std::string() : ": " + why);
  else message += why.empty() ? std::string("error") : why;
  return Error{scrub(message)};
}

Result<redisContext*> redis_connect(const CacheTargetConfig& cache, Duration connect_timeout, Duration query_timeout) {
  redisContext* ctx = redisConnectWithTimeout(cache.host.c_str(), cache.port, to_timeval(connect_timeout));
  if (ctx == nullptr) return Error{"redis: cannot allocate a context"};
  auto fail = [&](const char* what, const std::string& why) {
    Error e = redis_error(cache, what, why);
    redisFree(ctx);
    return e;
  };
  if (ctx->err) return fail(nullptr, ctx->errstr);
  redisSetTimeout(ctx, to_timeval(query_timeout));
  if (cache.password) {
    if (std::string why = refusal(ctx, "AUTH %b", *cache.password); !why.empty()) return fail("AUTH", why);
  }
  if (cache.db != 0) {
    if (std::string why = refusal(ctx, "SELECT %b", std::to_string(cache.db)); !why.empty()) return fail("SELECT", why);
  }
  return ctx;
}

}  // namespace ghostwatch::cache
