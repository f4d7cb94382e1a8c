// The canary protocol on PostgreSQL (libpq). The writer upserts the (agent, probe) row on the
// primary and returns the WAL insert position; a reader selects the row and the replica's
// replay position with one prepared statement per poll.
#pragma once

#include <memory>
#include <string>

#include "probes/canary_backend.h"
#include "probes/postgres/pg_connection.h"

namespace ghostwatch::pg {

class PostgresBackend final : public CanaryBackend {
 public:
  PostgresBackend(const ProbeConfig& probe, std::string agent_id);
  std::unique_ptr<CanaryWriter> writer() override;
  Status check(const TargetConfig& target) const override;
  std::unique_ptr<CanarySession> session(const TargetConfig& target, const std::string& key) override;
  std::unique_ptr<PositionWaiter> waiter(const TargetConfig&) override { return nullptr; }
  std::unique_ptr<CanaryReader> reader(const TargetConfig& target, bool report_lag) override;
  std::unique_ptr<AsyncCanaryReader> async_reader(const TargetConfig& target) override;
  PositionUnit position_unit() const override { return PositionUnit::bytes; }
  std::optional<double> position_behind(const Position& primary, const Position& target) const override;

 private:
  ProbeConfig probe_;
  std::string agent_id_;
};

ConnectOptions connect_options(const DsnConfig& dsn, const ProbeConfig& probe);

// "schema".canary, and the DDL that creates it (DESIGN.md's canary table), for the writer's
// set-up and for `ghostwatch init`.
std::string canary_table(const std::string& schema);
std::string canary_table_ddl(const std::string& schema);

// A reader's poll ($1 agent id, $2 probe): the canary's seq, the replay LSN, the server's own
// lag figure, whether the target takes writes and the received LSN. bench/poll_cost runs it as
// well. Without `canary` the seq is always NULL and no table is read (mode: position).
std::string poll_statement(const std::string& schema, bool canary = true);
// A read path's read ($1 agent id, $2 probe): the canary's seq and nothing else, as an
// application's SELECT, which a load-balancing middleware may send to a replica.
std::string read_statement(const std::string& schema);

}  // namespace ghostwatch::pg
