#include "probes/mysql/mysql_replication.h"

#include "common/log.h"
#include "common/parse_number.h"
#include "probes/lazy_connection.h"
#include "probes/mysql/gtid.h"

namespace ghostwatch::mysql {

std::string canary_table(const std::string& database) { return quote_identifier(database) + ".`canary`"; }

std::string canary_table_ddl(const std::string& database) {
  return "CREATE TABLE IF NOT EXISTS " + canary_table(database) +
         " (agent_id VARCHAR(255) NOT NULL, probe VARCHAR(255) NOT NULL, seq BIGINT NOT NULL,"
         " written_at DATETIME(6) NOT NULL, PRIMARY KEY (agent_id, probe)) ENGINE=InnoDB";
}

namespace {

constexpr const char* kWriteStatement = "canary_write";
constexpr const char* kPollStatement = "canary_poll";
constexpr auto kReportedLagEvery = std::chrono::seconds(1);

using LazyMysql = LazyConnection<Connection, ConnectOptions>;


// Creates only what is missing, so an agent needs no CREATE privilege once the table exists.
Status ensure_canary_table(Connection& c, const std::string& database) {
  auto exists = c.execute("canary_exists",
                          "SELECT (SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?),"
                          " (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = 'canary')",
                          {database, database});
  if (!exists) return exists.error();
  auto cannot_create = [&database](const Error& e) {
    return Error{"the canary table " + canary_table(database) + " is missing and this user cannot create it (" +
                     e.message + "); create it as an administrator: `ghostwatch init --config FILE` prints the SQL",
                 e.code};
  };
  if (exists->get(0, 0) == std::optional<std::string>("0")) {
    if (auto r = c.query("CREATE DATABASE IF NOT EXISTS " + quote_identifier(database)); !r) return cannot_create(r.error());
  }
  if (exists->get(0, 1) == std::optional<std::string>("0")) {
    if (auto r = c.query(canary_table_ddl(database)); !r) return cannot_create(r.error());
  }
  return ok_status();
}

class MysqlWriter final : public CanaryWriter {
 public:
  MysqlWriter(ConnectOptions options, std::string database, std::string agent_id, std::string probe)
      : conn_(std::move(options)), database_(std::move(database)), agent_id_(std::move(agent_id)),
        probe_(std::move(probe)) {}

  Result<int64_t> write(std::stop_token stop) override {
    auto seq = upsert(stop);
    if (!seq && seq.error().code == std::to_string(kNoSuchTable)) {
      // Dropped while we run: a fresh session's set-up re-creates it when the user may, and
      // otherwise fails with an error that names the fix.
      conn_.reset();
      seq = upsert(stop);
    }
    return seq;
  }

  // MariaDB also names the canary's own transaction (@@last_gtid); MySQL's executed set right
  // after the write contains it, and perhaps a few later transactions of other clients.
  Result<std::optional<Position>> position(std::stop_token stop) override {
    canary_position_.reset();
    auto conn = conn_.get(stop, [this](Connection& c) { return ensure_canary_table(c, database_); });
    if (!conn) return conn.error();
    const bool mariadb = conn.value()->flavor() == Flavor::mariadb;
    auto r = conn.value()->query(mariadb ? "SELECT @@GLOBAL.gtid_binlog_pos, @@SESSION.last_gtid"
                                         : "SELECT @@GLOBAL.gtid_executed, @@GLOBAL.gtid_executed");
    if (!r) return r.error();
    auto own = r->get(0, 1);
    if (own && !own->empty()) canary_position_ = *own;
    auto pos = r->get(0, 0);
    if (!pos || pos->empty()) return std::optional<Position>();  // binlog or GTIDs off
    return std::optional<Position>(*pos);
  }

  std::optional<Position> canary_position() const override { return canary_position_; }

 private:
  // LAST_INSERT_ID(expr) hands the new seq back in the OK packet: one round trip, no
  // RETURNING needed (MySQL has none for updates). VALUES() is deprecated in MySQL 8.0.20+
  // but accepted by MySQL 8 and MariaDB alike; the row-alias syntax is MySQL-only.
  Result<int64_t> upsert(std::stop_token stop) {
    auto conn = conn_.get(stop, [this](Connection& c) { return ensure_canary_table(c, database_); });
    if (!conn) return conn.error();
    auto r = conn.value()->execute(
        kWriteStatement,
        "INSERT INTO " + canary_table(database_) +
            " (agent_id, probe, seq, written_at) VALUES (?, ?, LAST_INSERT_ID(?), NOW(6))"
            " ON DUPLICATE KEY UPDATE seq = LAST_INSERT_ID(GREATEST(seq + 1, VALUES(seq))), written_at = NOW(6)",
        {agent_id_, probe_, std::to_string(last_seq_ + 1)});
    if (!r) return r.error();
    if (r->insert_id == 0) return Error{"canary upsert returned no seq"};
    last_seq_ = static_cast<int64_t>(r->insert_id);
    return last_seq_;
  }

  LazyMysql conn_;
  std::string database_, agent_id_, probe_;
  int64_t last_seq_ = 0;  // seq never goes back, even if the row is deleted while we run
  std::optional<Position> canary_position_;
};

class MysqlReader final : public CanaryReader {
 public:
  MysqlReader(std::string target, ConnectOptions options, std::string database, std::string agent_id,
              std::string probe, bool report_lag)
      : target_(std::move(target)), conn_(std::move(options)), database_(std::move(database)),
        agent_id_(std::move(agent_id)), probe_(std::move(probe)), report_lag_(report_lag) {}

  Result<CanaryPoll> poll(std::stop_token stop) override {
    auto conn = conn_.get(stop, [](Connection&) { return ok_status(); });
    if (!conn) return conn.error();
    Connection& c = *conn.value();
    // gtid_slave_pos: what replication applied (MariaDB); gtid_executed: all applied (MySQL).
    const char* applied = c.flavor() == Flavor::mariadb ? "@@GLOBAL.gtid_slave_pos" : "@@GLOBAL.gtid_executed";
    auto rows = c.execute(kPollStatement,
                          "SELECT (SELECT seq FROM " + canary_table(database_) + " WHERE agent_id = ? AND probe = ?), " +
                              applied,
                          {agent_id_, probe_});
    CanaryPoll poll;
    // No table yet (it may not have replicated): the target answered, it just has no canary.
    if (!rows && rows.error().code != std::to_string(kNoSuchTable)) return rows.error();
    if (rows) {
      poll.seq = parse_number<int64_t>(rows->get(0, 0));
      poll.position = rows->get(0, 1);  // "" is a real position: nothing applied yet
    }
    if (report_lag_ && std::chrono::steady_clock::now() >= next_status_) replica_status(c, poll);
    return poll;
  }

 private:
  // Seconds_Behind_Master (MariaDB, MySQL < 8.0.22 naming) or Seconds_Behind_Source; NULL
  // while the SQL thread is stopped. SHOW REPLICA STATUS needs MariaDB 10.5.1+ or MySQL 8.0.22+.
  // The same answer tells the role: a server with no replication channel and read_only off takes
  // writes itself (a promoted replica), so its lag of 0 says nothing about replication.
  void replica_status(Connection& c, CanaryPoll& poll) {
    next_status_ = std::chrono::steady_clock::now() + kReportedLagEvery;
    poll.reported = {true, std::nullopt};
    auto status = c.query("SHOW REPLICA STATUS");
    if (!status) {
      if (!status_error_logged_) log::warn("SHOW REPLICA STATUS failed: " + status.error().message, {{"target", target_}});
      status_error_logged_ = true;
      return;
    }
    if (status->rows.empty()) {
      auto read_only = c.query("SELECT @@GLOBAL.read_only");
      if (read_only) poll.is_primary = read_only->get(0, 0).value_or("1") == "0";
      return;
    }
    poll.is_primary = false;
    auto seconds = status->get(0, "Seconds_Behind_Master");
    if (!seconds) seconds = status->get(0, "Seconds_Behind_Source");
    poll.reported.seconds = parse_number<double>(seconds);
  }

  std::string target_;
  LazyMysql conn_;
  std::string database_, agent_id_, probe_;
  MonoTime next_status_{};
  bool status_error_logged_ = false;
  bool report_lag_;
};

// Waits on the replica itself: MASTER_GTID_WAIT (MariaDB) or WAIT_FOR_EXECUTED_GTID_SET (MySQL)
// returns as soon as the replica has applied the position, so the answer's arrival bounds the
// moment to within one round trip, with no polling at all.
class MysqlWaiter final : public PositionWaiter {
 public:
  explicit MysqlWaiter(ConnectOptions options) : conn_(std::move(options)) {}

  Result<WaitOutcome> wait(const Position& position, Duration limit, std::stop_token stop) override {
    auto conn = conn_.get(stop, [](Connection&) { return ok_status(); });
    if (!conn) return conn.error();
    Connection& c = *conn.value();
    WaitOutcome out;
    const MonoTime before = std::chrono::steady_clock::now();
    if (auto r = c.query("DO 0"); !r) return r.error();
    out.round_trip = std::chrono::steady_clock::now() - before;
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.3f", std::chrono::duration<double>(limit).count());
    const bool mariadb = c.flavor() == Flavor::mariadb;
    auto r = c.execute(mariadb ? "gtid_wait" : "gtid_set_wait",
                       mariadb ? "SELECT MASTER_GTID_WAIT(?, ?)" : "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)",
                       {position, seconds});
    if (!r) return r.error();
    // 0: applied; MariaDB -1 and MySQL 1: the limit passed; NULL: an argument was refused.
    const auto answer = r->get(0, 0);
    if (!answer) return Error{"the server refused to wait for position " + position};
    out.reached = *answer == "0";
    return out;
  }

 private:
  LazyMysql conn_;
};

}  // namespace

Result<ConnectOptions> connect_options(const DsnConfig& dsn, const ProbeConfig& probe) {
  auto uri = parse_uri(dsn.dsn);
  if (!uri) return uri.error();
  return ConnectOptions{uri.value(), dsn.password, probe.connect_timeout, probe.query_timeout};
}

MysqlBackend::MysqlBackend(const ProbeConfig& probe, std::string agent_id)
    : probe_(probe), agent_id_(std::move(agent_id)) {}

// The config loader validated every URI, so connect_options cannot fail here.
std::unique_ptr<CanaryWriter> MysqlBackend::writer() {
  return std::make_unique<MysqlWriter>(connect_options(probe_.primary, probe_).value(), probe_.schema, agent_id_,
                                       probe_.name);
}

std::unique_ptr<CanaryReader> MysqlBackend::reader(const TargetConfig& target, bool report_lag) {
  return std::make_unique<MysqlReader>(target.name, connect_options(target.dsn, probe_).value(), probe_.schema,
                                       agent_id_, probe_.name, report_lag);
}

// A dedicated connection whose deadlines leave room for a whole wait: the client deadline and
// the server's max_statement_time both cover kLongestServerWait plus the usual query_timeout.
// Cache targets never get here: the agent's router keeps them (agent/runner.cpp), as for reader().
std::unique_ptr<PositionWaiter> MysqlBackend::waiter(const TargetConfig& target) {
  ConnectOptions options = connect_options(target.dsn, probe_).value();
  options.query_timeout += kLongestServerWait;
  return std::make_unique<MysqlWaiter>(std::move(options));
}

std::optional<double> MysqlBackend::position_behind(const Position& primary, const Position& target) const {
  auto behind = mariadb_transactions_behind(primary, target);
  if (!behind) behind = mysql_transactions_behind(primary, target);
  if (!behind) return std::nullopt;
  return static_cast<double>(*behind);
}

}  // namespace ghostwatch::mysql
