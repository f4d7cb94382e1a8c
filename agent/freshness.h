// The freshness API (GET /v1/freshness?probe=P&position=POS) and `ghostwatch wait`: which
// replicas have replayed a position the application took on the primary after its write
// (PostgreSQL: an LSN such as pg_current_wal_lsn(); MySQL/MariaDB: a GTID list or set such as
// @@gtid_binlog_pos or @@gtid_executed), so that a read that must see the write goes to one.
#pragma once

#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "agent/config.h"
#include "common/clock.h"
#include "exporters/http_server.h"
#include "probes/replication_probe.h"

namespace ghostwatch {

// The value of `name` in a URL query string, percent-decoded ('+' is a space); nullopt when
// absent or badly encoded.
std::optional<std::string> query_parameter(std::string_view query, std::string_view name);

// Answers a freshness request from what the running probes know: 200 with JSON, or 400 naming
// what is wrong (no probe, an unknown probe, a position that does not parse).
HttpResponse freshness_response(const std::string& query,
                                const std::function<ReplicationProbe*(const std::string&)>& find_probe);

struct WaitRequest {
  std::string probe;
  Position position;
  std::optional<std::string> target;  // all the probe's replicas when absent
  Duration timeout{std::chrono::seconds(30)};
};

// `ghostwatch wait`: polls the probe's replicas (the named one, or every one but caches) for
// their replayed position until each has reached the request's, or the timeout. Never touches
// the canary table. Progress on stderr; returns the exit code: 0 all reached, 1 timed out (or
// stopped), 2 bad input (an unknown probe or target, a cache target, a position that does not
// parse), with the reason on stderr.
int wait_for_position(const Config& config, const WaitRequest& request, std::stop_token stop);

}  // namespace ghostwatch
