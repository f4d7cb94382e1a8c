// The blocking hiredis connection that the cache reader and the reconciler share: connected
// and authenticated the same way, failing with the same words.
#pragma once

#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "probes/probe_config.h"

struct redisContext;

namespace ghostwatch::cache {

// A connection to `cache` that gives up a connect after `connect_timeout` and any read or write
// after `query_timeout`, authenticated (AUTH) and on its database (SELECT). The caller frees it
// with redisFree. On failure nothing is left open, and the error names the server, the step and
// the server's reason (WRONGPASS, DB index out of range), never the password.
Result<redisContext*> redis_connect(const CacheTargetConfig& cache, Duration connect_timeout, Duration query_timeout);

// "redis HOST:PORT: WHAT failed: WHY", or "redis HOST:PORT: WHY" without `what`, scrubbed of
// secrets. WHY is the context's own error text (I/O) in the first form.
Error redis_error(const CacheTargetConfig& cache, const char* what, const redisContext* ctx);
Error redis_error(const CacheTargetConfig& cache, const char* what, const std::string& why);

}  // namespace ghostwatch::cache
