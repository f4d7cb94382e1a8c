// The canary protocol on MySQL/MariaDB. The writer upserts the (agent, probe) row on the
// primary (INSERT ... ON DUPLICATE KEY UPDATE, InnoDB) and reads the primary's GTID position
// after the ack; a reader selects the row and the replica's GTID position with one statement
// per poll (prepared on a thread's reader, text on the event loop's), and asks SHOW REPLICA
// STATUS for Seconds_Behind_Master once a second.
#pragma once

#include <memory>
#include <string>

#include "probes/canary_backend.h"
#include "probes/mysql/mysql_connection.h"

namespace ghostwatch::mysql {

class MysqlBackend final : public CanaryBackend {
 public:
  MysqlBackend(const ProbeConfig& probe, std::string agent_id);
  std::unique_ptr<CanaryWriter> writer() override;
  Status check(const TargetConfig& target) const override;
  std::unique_ptr<CanaryReader> reader(const TargetConfig& target, bool report_lag) override;
  std::unique_ptr<AsyncCanaryReader> async_reader(const TargetConfig& target) override;
  std::unique_ptr<CanarySession> session(const TargetConfig& target, const std::string& key) override;
  std::unique_ptr<PositionWaiter> waiter(const TargetConfig& target) override;
  PositionUnit position_unit() const override { return PositionUnit::transactions; }
  // MariaDB GTID lists or MySQL GTID sets, recognised by their syntax.
  std::optional<double> position_behind(const Position& primary, const Position& target) const override;

 private:
  ProbeConfig probe_;
  std::string agent_id_;
};

// Connection options from a DSN in the config: the URI plus timeouts; a password_file's
// password wins over the URI's.
Result<ConnectOptions> connect_options(const DsnConfig& dsn, const ProbeConfig& probe);

// `database`.`canary`, and the DDL that creates it, for the writer's set-up and `ghostwatch init`.
std::string canary_table(const std::string& database);
std::string canary_table_ddl(const std::string& database);

}  // namespace ghostwatch::mysql
