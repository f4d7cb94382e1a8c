#include "probes/mysql/mysql_replication.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "common/clock.h"
#include "common/log.h"
#include "common/net.h"
#include "common/parse_number.h"
#include "common/redact.h"
#include "common/resolver.h"
#include "probes/lazy_connection.h"
#include "probes/mysql/gtid.h"
#include "probes/position_sampler.h"

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

// What both readers make of the server's answers, however they fetched them.
// The poll: gtid_slave_pos is what replication applied (MariaDB), gtid_executed all applied
// (MySQL); the row's seq and that position.
const char* applied_position(Flavor flavor) {
  return flavor == Flavor::mariadb ? "@@GLOBAL.gtid_slave_pos" : "@@GLOBAL.gtid_executed";
}
// mode: position's poll: the applied position only, the canary table untouched.
std::string positions_only_statement(Flavor flavor) { return std::string("SELECT NULL, ") + applied_position(flavor); }
void read_poll_row(const Rows& rows, CanaryPoll& poll) {
  poll.seq = parse_number<int64_t>(rows.get(0, 0));
  poll.position = rows.get(0, 1);  // "" is a real position: nothing applied yet
}
// What the replica has received: MariaDB's Gtid_IO_Pos (empty unless it replicates by GTID);
// MySQL's Retrieved_Gtid_Set, which holds only what this channel fetched since its relay log
// began, so with the executed set (`applied`) for what came before.
std::optional<Position> received_position(const Rows& status, const std::optional<Position>& applied) {
  if (auto io = status.get(0, "Gtid_IO_Pos")) {
    if (io->empty()) return std::nullopt;
    return *io;
  }
  auto retrieved = status.get(0, "Retrieved_Gtid_Set");
  if (!retrieved || !applied) return std::nullopt;
  if (retrieved->empty()) return *applied;
  return applied->empty() ? *retrieved : *retrieved + "," + *applied;
}
// SHOW REPLICA STATUS: Seconds_Behind_Master (MariaDB, MySQL < 8.0.22 naming) or
// Seconds_Behind_Source, NULL while the SQL thread is stopped. It needs MariaDB 10.5.1+ or
// MySQL 8.0.22+. With no rows the server has no replication channel: read_primary_by_read_only
// then tells a promoted replica (read_only off, it takes writes itself) from a replica.
void read_replica_status(const Rows& status, CanaryPoll& poll) {
  poll.is_primary = false;
  auto seconds = status.get(0, "Seconds_Behind_Master");
  if (!seconds) seconds = status.get(0, "Seconds_Behind_Source");
  poll.reported.seconds = parse_number<double>(seconds);
  poll.received = received_position(status, poll.position);
}
void read_primary_by_read_only(const Rows& read_only, CanaryPoll& poll) {
  poll.is_primary = read_only.get(0, 0).value_or("1") == "0";
}
void warn_status_failed_once(bool& logged, const std::string& target, const std::string& error) {
  if (!logged) log::warn("SHOW REPLICA STATUS failed: " + error, {{"target", target}});
  logged = true;
}


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

// The probe's session_settings, each a SET SESSION. Names and values come from
// allowed_session_settings(): integers stay bare, words are quoted.
Status apply_settings(Connection& c, const std::map<std::string, std::string>& settings) {
  for (const auto& [name, value] : settings) {
    const bool number = !value.empty() && std::all_of(value.begin(), value.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    const std::string sql = "SET SESSION " + name + " = " + (number ? value : "'" + value + "'");
    if (auto r = c.query(sql); !r) return Error{sql + " failed: " + r.error().message, r.error().code};
  }
  return ok_status();
}

// The upsert of a canary row, under `probe` (the probe's name, or a session path's key).
// LAST_INSERT_ID(expr) hands the new seq back in the OK packet: one round trip, no RETURNING
// needed (MySQL has none for updates). VALUES() is deprecated in MySQL 8.0.20+ but accepted by
// MySQL 8 and MariaDB alike; the row-alias syntax is MySQL-only.
Result<int64_t> upsert_canary(Connection& c, const std::string& database, const std::string& agent_id,
                              const std::string& probe, int64_t& last_seq) {
  auto r = c.execute(kWriteStatement,
                     "INSERT INTO " + canary_table(database) +
                         " (agent_id, probe, seq, written_at) VALUES (?, ?, LAST_INSERT_ID(?), NOW(6))"
                         " ON DUPLICATE KEY UPDATE seq = LAST_INSERT_ID(GREATEST(seq + 1, VALUES(seq))), written_at = NOW(6)",
                     {agent_id, probe, std::to_string(last_seq + 1)});
  if (!r) return r.error();
  if (r->insert_id == 0) return Error{"canary upsert returned no seq"};
  last_seq = static_cast<int64_t>(r->insert_id);
  return last_seq;
}

class MysqlWriter final : public CanaryWriter {
 public:
  MysqlWriter(ConnectOptions options, std::string database, std::string agent_id, std::string probe,
              std::map<std::string, std::string> settings)
      : conn_(std::move(options)), database_(std::move(database)), agent_id_(std::move(agent_id)),
        probe_(std::move(probe)), settings_(std::move(settings)) {}

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
    auto conn = connection(stop);
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
  Result<Connection*> connection(std::stop_token stop) {
    return conn_.get(stop, [this](Connection& c) {
      if (Status s = ensure_canary_table(c, database_); !s) return s;
      return apply_settings(c, settings_);
    });
  }
  Result<int64_t> upsert(std::stop_token stop) {
    auto conn = connection(stop);
    if (!conn) return conn.error();
    return upsert_canary(*conn.value(), database_, agent_id_, probe_, last_seq_);
  }

  LazyMysql conn_;
  std::string database_, agent_id_, probe_;
  std::map<std::string, std::string> settings_;
  int64_t last_seq_ = 0;  // seq never goes back, even if the row is deleted while we run
  std::optional<Position> canary_position_;
};

// A session read path's connection: the writer's upsert under the path's own key, and a plain
// SELECT of the row, on one connection.
class MysqlSession final : public CanarySession {
 public:
  MysqlSession(ConnectOptions options, std::string database, std::string agent_id, std::string key,
               std::map<std::string, std::string> settings)
      : conn_(std::move(options)), database_(std::move(database)), agent_id_(std::move(agent_id)), key_(std::move(key)),
        settings_(std::move(settings)) {}

  Status open(std::stop_token stop) override {
    auto conn = connection(stop);
    if (!conn) return conn.error();
    return ok_status();
  }

  Result<int64_t> write(std::stop_token stop) override {
    auto conn = connection(stop);
    if (!conn) return conn.error();
    return upsert_canary(*conn.value(), database_, agent_id_, key_, last_seq_);
  }

  Result<std::optional<int64_t>> read(std::stop_token stop) override {
    auto conn = connection(stop);
    if (!conn) return conn.error();
    auto rows = conn.value()->execute("session_read",
                                      "SELECT seq FROM " + canary_table(database_) + " WHERE agent_id = ? AND probe = ?",
                                      {agent_id_, key_});
    if (!rows) return rows.error();
    return parse_number<int64_t>(rows->get(0, 0));
  }

 private:
  Result<Connection*> connection(std::stop_token stop) {
    return conn_.get(stop, [this](Connection& c) { return apply_settings(c, settings_); });
  }

  LazyMysql conn_;
  std::string database_, agent_id_, key_;
  std::map<std::string, std::string> settings_;
  int64_t last_seq_ = 0;
};

class MysqlReader final : public CanaryReader {
 public:
  MysqlReader(std::string target, ConnectOptions options, std::string database, std::string agent_id,
              std::string probe, bool report_lag, bool canary)
      : target_(std::move(target)), conn_(std::move(options)), database_(std::move(database)),
        agent_id_(std::move(agent_id)), probe_(std::move(probe)), report_lag_(report_lag), canary_(canary) {}

  Result<CanaryPoll> poll(std::stop_token stop) override {
    auto conn = conn_.get(stop, [](Connection&) { return ok_status(); });
    if (!conn) return conn.error();
    Connection& c = *conn.value();
    auto rows = canary_ ? c.execute(kPollStatement,
                                    "SELECT (SELECT seq FROM " + canary_table(database_) +
                                        " WHERE agent_id = ? AND probe = ?), " + applied_position(c.flavor()),
                                    {agent_id_, probe_})
                        : c.query(positions_only_statement(c.flavor()));
    CanaryPoll poll;
    // No table yet (it may not have replicated): the target answered, it just has no canary.
    if (!rows && rows.error().code != std::to_string(kNoSuchTable)) return rows.error();
    if (rows) read_poll_row(rows.value(), poll);
    if ((report_lag_ && std::chrono::steady_clock::now() >= next_status_) || want_received_) replica_status(c, poll);
    return poll;
  }
  void want_received(bool want) override { want_received_ = want; }

 private:
  // The server's own lag figure, and the role: a promoted replica's lag of 0 says nothing
  // about replication.
  void replica_status(Connection& c, CanaryPoll& poll) {
    next_status_ = std::chrono::steady_clock::now() + kReportedLagEvery;
    poll.reported = {true, std::nullopt};
    auto status = c.query("SHOW REPLICA STATUS");
    if (!status) return warn_status_failed_once(status_error_logged_, target_, status.error().message);
    if (!status->rows.empty()) return read_replica_status(status.value(), poll);
    if (auto read_only = c.query("SELECT @@GLOBAL.read_only")) read_primary_by_read_only(read_only.value(), poll);
  }

  std::string target_;
  LazyMysql conn_;
  std::string database_, agent_id_, probe_;
  MonoTime next_status_{};
  bool status_error_logged_ = false;
  bool report_lag_;
  bool canary_;  // false: positions only, the canary table untouched (mode: position)
  bool want_received_ = false;
};

// Whether connecting means a name lookup: a TCP host that is not an address ("localhost" is the
// server's socket to the connector, as to the mysql client).
bool needs_lookup(const ConnectOptions& o) {
  return o.uri.socket.empty() && o.uri.host != "localhost" && !is_ip_literal(o.uri.host);
}

// MysqlReader's poll for the event loop, in the connector's non-blocking calls: connect and the
// session's statement limit, then at every poll the canary query and, once a second, SHOW
// REPLICA STATUS (and @@read_only when it has no rows), with the same answers. Each statement is
// two calls, mysql_real_query then mysql_store_result; the text protocol, with the poll's
// statement built once per session with the connection's own escaping.
class MysqlAsyncReader final : public AsyncCanaryReader {
  enum class Phase { connecting, limiting, polling, status, read_only };
  enum class Call { connect, query, store };

 public:
  MysqlAsyncReader(std::string target, ConnectOptions options, std::string database, std::string agent_id,
                   std::string probe, bool canary)
      : target_(std::move(target)), options_(std::move(options)), database_(std::move(database)),
        agent_id_(std::move(agent_id)), probe_(std::move(probe)),
        by_name_(needs_lookup(options_)), canary_(canary) {}
  ~MysqlAsyncReader() override { close(); }

  PollStep begin() override {
    poll_ = CanaryPoll{};
    if (mysql_) {
      deadline_ = steady_now() + options_.query_timeout;
      return start_query(Phase::polling, poll_sql_);
    }
    phase_ = Phase::connecting;
    deadline_ = steady_now() + options_.connect_timeout;
    addresses_ = {options_.uri.host};
    next_address_ = 0;
    if (!by_name_) return connect_next();
    auto step = start_lookup(lookup_, {options_.uri.host}, deadline_);
    return step ? step.value() : finish(step.error());
  }

  // The loop says only that the socket is ready as asked: the connector is told that what it
  // waited for happened, and asks again if it finds nothing to read after all.
  PollStep advance() override {
    if (lookup_) return looked_up();
    if (!mysql_) return finish(Error{"connection is closed"});
    const int ready = waited_ & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT);
    switch (call_) {
      case Call::connect: return after(mysql_real_connect_cont(&connected_, mysql_, ready));
      case Call::query: return after(mysql_real_query_cont(&error_, mysql_, ready));
      case Call::store: return after(mysql_store_result_cont(&result_, mysql_, ready));
    }
    return drop("unexpected state");
  }

  bool connected() const override { return mysql_ != nullptr; }
  int socket() const override { return mysql_ ? static_cast<int>(mysql_get_socket(mysql_)) : -1; }
  void want_received(bool want) override { want_received_ = want; }

  // Between polls the server sends nothing unless it is closing the session (wait_timeout, a
  // KILL, a shutdown): whatever arrives, or the end of the stream, ends the connection.
  void drain() override {
    if (!mysql_) return;
    char byte;
    const ssize_t n = recv(socket(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) close();
  }

  Error expire() override {
    const bool looking_up = lookup_ != nullptr, connecting = phase_ == Phase::connecting;
    lookup_.reset();
    close();
    if (looking_up) return Error{timed_out("name lookup", options_.connect_timeout)};
    return Error{connecting ? timed_out("connect", options_.connect_timeout) : timed_out("query", options_.query_timeout)};
  }

 private:
  PollStep looked_up() {
    if (auto waiting = lookup_pending(*lookup_, deadline_)) return *waiting;
    const std::shared_ptr<NameLookup> lookup = std::move(lookup_);
    if (!lookup->addresses()) return finish(lookup->addresses().error());
    addresses_ = lookup->addresses().value().front();
    return connect_next();
  }
  // Connects to the host's next address (by name: each that the lookup found, in turn).
  PollStep connect_next() {
    mysql_ = new_handle(options_);
    if (mysql_ == nullptr) return finish(Error{"out of memory creating a MySQL connection"});
    call_ = Call::connect;
    // The connector keeps the host's pointer until the connect ends.
    connecting_to_ = options_;
    connecting_to_.uri.host = addresses_[next_address_++];
    return after(connect_start(&connected_, mysql_, connecting_to_));
  }

  // A connector call returned: 0 when it is over, else what it waits for.
  PollStep after(int status) {
    if (status != 0) {
      waited_ = status;
      // MYSQL_WAIT_TIMEOUT is the connector's whole-second backstop; the deadline comes first.
      return PollStep{std::nullopt, socket(), (status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT)) != 0,
                      (status & MYSQL_WAIT_WRITE) != 0, deadline_};
    }
    switch (call_) {
      case Call::connect: return connect_done();
      case Call::query: return query_done();
      case Call::store: return store_done();
    }
    return drop("unexpected state");
  }

  PollStep connect_done() {
    if (connected_ == nullptr && next_address_ < addresses_.size()) {
      close();
      return connect_next();
    }
    if (connected_ == nullptr) return drop(connect_error(mysql_, connecting_to_));
    flavor_ = flavor_of(mysql_);
    poll_sql_ = poll_statement();
    deadline_ = steady_now() + options_.query_timeout;
    return start_query(Phase::limiting, statement_limit_sql(flavor_, options_.query_timeout));
  }

  std::string poll_statement() {
    if (!canary_) return positions_only_statement(flavor_);
    return "SELECT (SELECT seq FROM " + canary_table(database_) + " WHERE agent_id = " + literal(agent_id_) +
           " AND probe = " + literal(probe_) + "), " + applied_position(flavor_);
  }
  std::string literal(const std::string& text) {
    std::string out(text.size() * 2 + 1, '\0');
    out.resize(mysql_real_escape_string(mysql_, out.data(), text.data(), text.size()));
    return "'" + out + "'";
  }

  PollStep start_query(Phase phase, const std::string& sql) {
    phase_ = phase;
    call_ = Call::query;
    error_ = 0;
    return after(mysql_real_query_start(&error_, mysql_, sql.data(), sql.size()));
  }

  PollStep query_done() {
    if (error_ != 0) return statement_failed();
    call_ = Call::store;
    result_ = nullptr;
    return after(mysql_store_result_start(&result_, mysql_));
  }

  PollStep store_done() {
    std::unique_ptr<MYSQL_RES, void (*)(MYSQL_RES*)> res(result_, &mysql_free_result);
    result_ = nullptr;
    if (!res && mysql_field_count(mysql_) != 0) return statement_failed();
    const Rows rows = to_rows(res.get());
    switch (phase_) {
      case Phase::limiting:
        return start_query(Phase::polling, poll_sql_);
      case Phase::polling:
        read_poll_row(rows, poll_);
        if (steady_now() < next_status_ && !want_received_) return finish(std::move(poll_));
        next_status_ = steady_now() + kReportedLagEvery;
        poll_.reported = {true, std::nullopt};
        return start_query(Phase::status, "SHOW REPLICA STATUS");
      case Phase::status:
        if (rows.rows.empty()) return start_query(Phase::read_only, "SELECT @@GLOBAL.read_only");
        read_replica_status(rows, poll_);
        return finish(std::move(poll_));
      case Phase::read_only:
        read_primary_by_read_only(rows, poll_);
        return finish(std::move(poll_));
      case Phase::connecting: break;
    }
    return drop("unexpected state");
  }

  // A statement's error: the connection's end it; the statement's answer for it as the
  // threaded reader's do.
  PollStep statement_failed() {
    const unsigned code = mysql_errno(mysql_);
    std::string message = mysql_error(mysql_);
    if (code == 0 || transport_error(code) || phase_ == Phase::limiting) return drop(std::move(message));
    if (phase_ == Phase::polling) {
      // No table yet (it may not have replicated): the target answered, it just has no canary.
      if (code == kNoSuchTable) return finish(CanaryPoll{});
      return finish(Error{trimmed_error(std::move(message)), std::to_string(code)});
    }
    // SHOW REPLICA STATUS or @@read_only refused (a missing privilege): the poll itself stands.
    warn_status_failed_once(status_error_logged_, target_, trimmed_error(std::move(message)));
    return finish(std::move(poll_));
  }

  static PollStep finish(Result<CanaryPoll> result) { return PollStep{std::move(result)}; }
  // Transport trouble: the connection goes, and the next poll opens a new one.
  PollStep drop(std::string message) {
    close();
    return finish(Error{trimmed_error(std::move(message))});
  }
  void close() {
    if (result_) mysql_free_result(result_);
    result_ = nullptr;
    if (mysql_) mysql_close(mysql_);
    mysql_ = nullptr;
  }

  std::string target_;
  ConnectOptions options_;
  std::string database_, agent_id_, probe_;
  const bool by_name_;  // looked up on the resolver's threads: the connector's lookup blocks
  const bool canary_;   // false: positions only (mode: position)
  std::shared_ptr<NameLookup> lookup_;
  std::vector<std::string> addresses_;  // the host's, tried in turn until one connects
  std::size_t next_address_ = 0;
  ConnectOptions connecting_to_;  // options_ with the address being connected to
  MYSQL* mysql_ = nullptr;
  MYSQL* connected_ = nullptr;
  MYSQL_RES* result_ = nullptr;
  int error_ = 0, waited_ = 0;
  Phase phase_ = Phase::connecting;
  Call call_ = Call::connect;
  Flavor flavor_ = Flavor::mysql;
  std::string poll_sql_;
  CanaryPoll poll_;
  MonoTime deadline_{}, next_status_{};
  bool status_error_logged_ = false;
  bool want_received_ = false;
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
    : probe_(settings_of(probe)), agent_id_(std::move(agent_id)) {}

// The config loader validated every URI, so connect_options cannot fail here.
// mode: position samples the primary's GTID position: @@gtid_binlog_pos (MariaDB) or
// @@gtid_executed (MySQL), readable without any privilege, and moved by commits only.
std::unique_ptr<CanaryWriter> MysqlBackend::writer() {
  if (probe_.mode == ProbeMode::position) {
    auto conn = std::make_shared<LazyMysql>(connect_options(probe_.primary, probe_).value());
    auto sample = [conn](std::stop_token stop) -> Result<std::optional<PrimarySample>> {
      auto c = conn->get(stop, [](Connection&) { return ok_status(); });
      if (!c) return c.error();
      auto rows = c.value()->query(c.value()->flavor() == Flavor::mariadb ? "SELECT @@GLOBAL.gtid_binlog_pos"
                                                                           : "SELECT @@GLOBAL.gtid_executed");
      if (!rows) return rows.error();
      auto pos = rows->get(0, 0);
      if (!pos || pos->empty()) return std::optional<PrimarySample>();
      return std::optional<PrimarySample>(PrimarySample{*pos, std::nullopt});
    };
    return std::make_unique<PositionSampler>(std::move(sample), samples_per_canary(probe_));
  }
  return std::make_unique<MysqlWriter>(connect_options(probe_.primary, probe_).value(), probe_.schema, agent_id_,
                                       probe_.name, probe_.session_settings);
}

std::unique_ptr<CanarySession> MysqlBackend::session(const TargetConfig& target, const std::string& key) {
  return std::make_unique<MysqlSession>(connect_options(target.dsn, probe_).value(), probe_.schema, agent_id_, key,
                                        probe_.session_settings);
}

// A target reached by name whose certificate must name it (ssl-mode=verify_identity) stays on a
// thread of its own: the event loop's reader connects to the addresses it looked up, which the
// connector would check the certificate against.
std::unique_ptr<AsyncCanaryReader> MysqlBackend::async_reader(const TargetConfig& target) {
  const ConnectOptions options = connect_options(target.dsn, probe_).value();
  if (needs_lookup(options) && options.uri.ssl_mode == "verify_identity") return nullptr;
  return std::make_unique<MysqlAsyncReader>(target.name, options, probe_.schema, agent_id_, probe_.name,
                                            probe_.mode == ProbeMode::canary);
}

Status MysqlBackend::check(const TargetConfig& target) const {
  auto options = connect_options(target.dsn, probe_);
  if (!options) return options.error();
  return ok_status();
}

std::unique_ptr<CanaryReader> MysqlBackend::reader(const TargetConfig& target, bool report_lag) {
  return std::make_unique<MysqlReader>(target.name, connect_options(target.dsn, probe_).value(), probe_.schema,
                                       agent_id_, probe_.name, report_lag, probe_.mode == ProbeMode::canary);
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
