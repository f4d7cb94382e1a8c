// `ghostwatch init`: the least-privilege set-up of each probe's databases, printed as SQL or
// applied with an administrator's DSN. Per probe, on the primary (replicas receive it by
// replication): the canary schema/database and table, the agent's role (the primary DSN's user)
// with SELECT, INSERT, UPDATE on the canary table and nothing else, and the users of targets and
// read paths with SELECT on it (plus, on MySQL/MariaDB targets, the right to read SHOW REPLICA
// STATUS for the reported lag). PostgreSQL needs no pg_monitor: the position and replay functions
// the probe calls are executable by PUBLIC.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "probes/probe_config.h"

namespace ghostwatch {

enum class SqlDialect { postgres, mariadb, mysql };

struct InitPlan {
  std::string probe;
  SqlDialect dialect = SqlDialect::postgres;
  std::string primary;  // redacted, for the header comment
  bool position_mode = false;  // mode: position: monitoring rights only
  std::vector<std::string> statements;  // safe to print: no password in them
  // Statements that set the roles' passwords from the config (applied, never printed).
  std::vector<std::string> password_statements;
};

// Throws ConfigError when a DSN names no user. `mysql_user_host` is the host part of the
// MySQL/MariaDB accounts ('%' = any).
InitPlan plan_init(const ProbeConfig& probe, SqlDialect dialect, const std::string& mysql_user_host = "%");

// The plan as SQL with comments, passwords left out.
std::string render_init(const InitPlan& plan);

// Runs the plan as the administrator `admin_dsn` (a libpq DSN or a mysql:// URI). Returns an
// empty string, or the error (redacted) naming the statement that failed.
std::string apply_init(const ProbeConfig& probe, const std::string& admin_dsn, const std::string& mysql_user_host);

}  // namespace ghostwatch
