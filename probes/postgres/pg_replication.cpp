#include "probes/postgres/pg_replication.h"

#include <charconv>
#include <map>

#include "common/parse_number.h"
#include "common/resolver.h"
#include "probes/lazy_connection.h"
#include "probes/position_sampler.h"
#include "probes/postgres/pg_snapshot.h"

namespace ghostwatch::pg {
std::string read_statement(const std::string& schema) {
  return "SELECT seq FROM " + canary_table(schema) + " WHERE agent_id = $1 AND probe = $2";
}

std::string poll_statement(const std::string& schema, bool canary) {
  // Without the canary: always NULL, touching no table, with the same two (typed) parameters.
  const std::string seq = canary ? "(SELECT seq FROM " + canary_table(schema) + " WHERE agent_id = $1 AND probe = $2)"
                                 : "(SELECT NULL::bigint WHERE $1::text IS NULL AND $2::text IS NULL)";
  return "SELECT " + seq + ","
         " pg_last_wal_replay_lsn()::text,"
         " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8,"
         " NOT pg_is_in_recovery(),"
         " pg_last_wal_receive_lsn()::text";
}

namespace {

constexpr const char* kUndefinedTable = "42P01";
constexpr const char* kWriteStatement = "ghostwatch_canary_write";
constexpr const char* kPollStatement = "ghostwatch_canary_poll";

using LazyPg = LazyConnection<Connection, ConnectOptions>;

// The poll as numbers: the canary's seq, the replay LSN, the server's lag figure, the role, the
// received LSN (NULL on a primary, or when no WAL was streamed since the server started).
CanaryPoll parse_poll(const Rows& rows) {
  CanaryPoll poll;
  poll.seq = parse_number<int64_t>(rows.get(0, 0));
  poll.reported = {true, parse_number<double>(rows.get(0, 2))};
  if (auto lsn = rows.get(0, 1)) poll.position = std::string(*lsn);
  if (auto primary = rows.get(0, 3)) poll.is_primary = *primary == "t";
  if (auto received = rows.get(0, 4)) poll.received = std::string(*received);
  return poll;
}

// An insert that finds the row advances it instead: seq goes up by one whatever the row held
// ($3 is one past the writer's own last seq, so a row deleted while it runs is re-created ahead
// of it).
constexpr const char* kOnConflictAdvance =
    " ON CONFLICT (agent_id, probe) DO UPDATE SET seq = GREATEST(c.seq + 1, EXCLUDED.seq), written_at = now()"
    " RETURNING c.seq";

// The upsert of a canary row.
std::string upsert_statement(const std::string& schema) {
  return "INSERT INTO " + canary_table(schema) + " AS c (agent_id, probe, seq, written_at) VALUES ($1, $2, $3, now())" +
         kOnConflictAdvance;
}

// The writer's: an UPDATE of its row, the upsert only when the row is missing. An upsert that
// finds its row locks it first (ON CONFLICT DO UPDATE writes a heap LOCK record before the
// update): 168 bytes of WAL per canary, where the UPDATE writes 115 (bench/footprint.sh,
// pg_walinspect). It also captures the WAL insert position right after the row was written (see
// PgWriter::position). Session paths keep the plain upsert: a middleware such as pgpool-II
// routes by the statement, and an INSERT is a write to any of them.
std::string writer_statement(const std::string& schema) {
  const std::string table = canary_table(schema);
  return "WITH updated AS (UPDATE " + table +
         " AS c SET seq = GREATEST(c.seq + 1, $3::bigint), written_at = now()"
         " WHERE c.agent_id = $1 AND c.probe = $2 RETURNING c.seq),"
         " inserted AS (INSERT INTO " + table + " AS c (agent_id, probe, seq, written_at)"
         " SELECT $1, $2, $3::bigint, now() WHERE NOT EXISTS (SELECT FROM updated)" + kOnConflictAdvance + ")"
         " SELECT seq, pg_current_wal_insert_lsn()::text FROM updated"
         " UNION ALL SELECT seq, pg_current_wal_insert_lsn()::text FROM inserted";
}

// The probe's session_settings as plain SETs: a middleware such as pgpool-II sends a SET to
// every backend and does not take the session for a writer, as it would after a function call
// like set_config(). Names and values come from allowed_session_settings().
Status apply_settings(Connection& c, const std::map<std::string, std::string>& settings) {
  for (const auto& [name, value] : settings) {
    if (auto r = c.exec("SET " + name + " = '" + value + "'"); !r) {
      return Error{"SET " + name + " = '" + value + "' failed: " + r.error().message, r.error().code};
    }
  }
  return ok_status();
}

class PgWriter final : public CanaryWriter {
 public:
  PgWriter(ConnectOptions options, std::string schema, std::string agent_id, std::string probe,
           std::map<std::string, std::string> settings)
      : options_(options), conn_(std::move(options)), schema_(std::move(schema)),
        params_{std::move(agent_id), std::move(probe)}, settings_(std::move(settings)) {}

  Status retarget(const DsnConfig& primary) override {
    options_.dsn = primary.dsn;
    options_.password = primary.password;
    conn_ = LazyPg(options_);
    return ok_status();
  }

  Result<int64_t> write(std::stop_token stop) override {
    auto seq = upsert(stop);
    if (!seq && seq.error().code == kUndefinedTable) {
      // Dropped while we run: a fresh session's set-up re-creates it when the role may, and
      // otherwise fails with an error that names the fix.
      conn_.reset();
      seq = upsert(stop);
    }
    return seq;
  }

  // Captured by the write statement itself: no extra round trip. It is the WAL insert position
  // just before the commit record, which follows it in the same flush: a replica that has
  // received up to it has received all the canary's WAL but that record, and applies the
  // canary only after it.
  Result<std::optional<Position>> position(std::stop_token) override { return position_; }
  std::optional<Position> canary_position() const override { return position_; }

 private:
  Result<int64_t> upsert(std::stop_token stop) {
    auto conn = conn_.get(stop, [this](Connection& c) { return setup(c); });
    if (!conn) return conn.error();
    auto rows = conn.value()->exec_prepared(kWriteStatement, {params_[0], params_[1], std::to_string(last_seq_ + 1)});
    if (!rows) return rows.error();
    auto seq = parse_number<int64_t>(rows->get(0, 0));
    if (!seq) return Error{"canary upsert returned no seq"};
    last_seq_ = *seq;
    auto lsn = rows->get(0, 1);
    position_ = lsn ? std::optional<Position>(std::string(*lsn)) : std::nullopt;
    return *seq;
  }

  // Creates only what is missing, so an agent needs no CREATE privilege once the table exists.
  Status setup(Connection& c) {
    auto exists = c.exec_params("SELECT to_regnamespace($1) IS NOT NULL, to_regclass($2) IS NOT NULL",
                                {quote_identifier(schema_), canary_table(schema_)});
    if (!exists) return exists.error();
    const bool have_schema = exists->get(0, 0) == std::optional<std::string_view>("t");
    const bool have_table = exists->get(0, 1) == std::optional<std::string_view>("t");
    if (!have_schema) {
      if (auto r = c.exec("CREATE SCHEMA IF NOT EXISTS " + quote_identifier(schema_)); !r) return cannot_create(r.error());
    }
    if (!have_table) {
      if (auto r = c.exec(canary_table_ddl(schema_)); !r) return cannot_create(r.error());
    }
    if (Status s = apply_settings(c, settings_); !s) return s;
    return c.prepare(kWriteStatement, writer_statement(schema_), 3);
  }

  Error cannot_create(const Error& e) const {
    return Error{"the canary table " + canary_table(schema_) + " is missing and this role cannot create it (" +
                     e.message + "); create it as an administrator: `ghostwatch init --config FILE` prints the SQL",
                 e.code};
  }

  ConnectOptions options_;
  LazyPg conn_;
  std::string schema_;
  std::vector<std::string> params_;
  std::map<std::string, std::string> settings_;
  // A row deleted while we run is re-created with the next seq, not 1: seq never goes back,
  // so replicas still showing the old row cannot pass for having seen new canaries.
  int64_t last_seq_ = 0;
  std::optional<Position> position_;
};

// A session read path's connection: the same upsert under the path's own key, and a plain
// SELECT of the row, each an unnamed statement parsed when it is sent, as most drivers do. (A
// statement prepared before the write stays on the node that parsed it: pgpool-II would then
// read from a replica whatever disable_load_balance_on_write says.) The reader's poll statement
// is no model either: its volatile functions would make pgpool-II send every read to the primary.
class PgSession final : public CanarySession {
 public:
  PgSession(ConnectOptions options, std::string schema, std::string agent_id, std::string key,
            std::map<std::string, std::string> settings)
      : conn_(std::move(options)), upsert_(upsert_statement(schema)),
        read_(read_statement(schema)), agent_id_(std::move(agent_id)), key_(std::move(key)),
        settings_(std::move(settings)) {}

  Status open(std::stop_token stop) override {
    auto conn = connection(stop);
    if (!conn) return conn.error();
    return ok_status();
  }

  Result<int64_t> write(std::stop_token stop) override {
    auto conn = connection(stop);
    if (!conn) return conn.error();
    auto rows = conn.value()->exec_params(upsert_, {agent_id_, key_, std::to_string(last_seq_ + 1)});
    if (!rows) return rows.error();
    auto seq = parse_number<int64_t>(rows->get(0, 0));
    if (!seq) return Error{"marker upsert returned no seq"};
    return last_seq_ = *seq;
  }

  Result<std::optional<int64_t>> read(std::stop_token stop) override {
    auto conn = connection(stop);
    if (!conn) return conn.error();
    auto rows = conn.value()->exec_params(read_, {agent_id_, key_});
    if (!rows) return rows.error();
    return parse_number<int64_t>(rows->get(0, 0));
  }

 private:
  Result<Connection*> connection(std::stop_token stop) {
    return conn_.get(stop, [this](Connection& c) { return apply_settings(c, settings_); });
  }

  LazyPg conn_;
  std::string upsert_, read_, agent_id_, key_;
  std::map<std::string, std::string> settings_;
  int64_t last_seq_ = 0;
};

// `statement`: the poll (a replication target), or the plain read (a read path).
class PgReader final : public CanaryReader {
 public:
  PgReader(ConnectOptions options, std::string statement, std::string agent_id, std::string probe)
      : conn_(std::move(options)), statement_(std::move(statement)), params_{std::move(agent_id), std::move(probe)} {}

  Result<CanaryPoll> poll(std::stop_token stop) override {
    auto conn = conn_.get(stop, [this](Connection&) {
      prepared_ = false;  // statements live and die with their session
      return ok_status();
    });
    if (!conn) return conn.error();
    if (!prepared_) {
      Status s = conn.value()->prepare(kPollStatement, statement_, 2);
      // The table may not have replicated yet: the target answered, it just has no canary.
      if (!s && s.error().code == kUndefinedTable) return CanaryPoll{};
      if (!s) return s.error();
      prepared_ = true;
    }
    auto rows = conn.value()->exec_prepared(kPollStatement, params_);
    // Dropped on the primary and gone here too: the target answered, it has no canary.
    if (!rows && rows.error().code == kUndefinedTable) return CanaryPoll{};
    if (!rows) return rows.error();
    return parse_poll(rows.value());
  }

 private:
  LazyPg conn_;
  std::string statement_;
  std::vector<std::string> params_;
  bool prepared_ = false;
};

// PgReader's poll for the event loop: the same session set-up (statement_timeout, the prepared
// poll) and answers, in non-blocking steps. A session goes through connecting, then one
// statement at a time: SET statement_timeout, PREPARE, then the poll at every poll after.
class PgAsyncReader final : public AsyncCanaryReader {
  enum class Phase { looking_up, connecting, session_setup, preparing, polling };

 public:
  // `hosts`: set when the DSN names hosts, looked up on the resolver's threads before each connect.
  PgAsyncReader(ConnectOptions options, std::optional<HostList> hosts, std::string schema, std::string agent_id,
                std::string probe, bool canary)
      : options_(std::move(options)), hosts_(std::move(hosts)), schema_(std::move(schema)),
        agent_id_(std::move(agent_id)), probe_(std::move(probe)), params_{agent_id_.c_str(), probe_.c_str()},
        canary_(canary) {}

  PollStep begin() override {
    if (conn_) return send_poll();
    if (hosts_) return start_lookup();
    return start_connection();
  }

  PollStep advance() override {
    if (phase_ == Phase::looking_up) return looked_up();
    return advance_connection();
  }

  bool connected() const override { return conn_ != nullptr; }
  int socket() const override { return conn_ ? PQsocket(conn_.get()) : -1; }
  void drain() override {
    if (conn_ && (PQconsumeInput(conn_.get()) == 0 || PQstatus(conn_.get()) == CONNECTION_BAD)) conn_.reset();
  }

  Error expire() override {
    const Phase phase = phase_;
    conn_.reset();
    lookup_.reset();
    phase_ = Phase::connecting;
    if (phase == Phase::looking_up) return Error{timed_out("name lookup", options_.connect_timeout)};
    return Error{phase == Phase::connecting ? timed_out("connect", options_.connect_timeout)
                                            : timed_out("query", options_.query_timeout)};
  }

 private:
  PollStep start_lookup() {
    deadline_ = steady_now() + options_.connect_timeout;
    auto step = ghostwatch::start_lookup(lookup_, hosts_->names(), deadline_);
    if (!step) return finish(step.error());
    phase_ = Phase::looking_up;
    return step.value();
  }
  PollStep looked_up() {
    if (auto waiting = lookup_pending(*lookup_, deadline_)) return *waiting;
    const std::shared_ptr<NameLookup> lookup = std::move(lookup_);
    phase_ = Phase::connecting;
    if (!lookup->addresses()) return finish(lookup->addresses().error());
    return start_connection(resolved_keywords(*hosts_, lookup->hosts(), lookup->addresses().value()));
  }
  PollStep start_connection(const Keywords& overrides = {}) {
    conn_.reset(start_connecting(options_, overrides));
    if (!conn_) return finish(Error{"out of memory creating a PostgreSQL connection"});
    if (PQstatus(conn_.get()) == CONNECTION_BAD) return drop(connection_error(conn_.get()));
    phase_ = Phase::connecting;
    deadline_ = steady_now() + options_.connect_timeout;
    return waiting(/*read=*/false, /*write=*/true);
  }

  PollStep advance_connection() {
    if (!conn_) return finish(Error{"connection is closed"});
    if (phase_ == Phase::connecting) return continue_connecting();
    const int flushed = PQflush(conn_.get());
    if (flushed < 0) return drop(connection_error(conn_.get()));
    if (PQconsumeInput(conn_.get()) == 0) return drop(connection_error(conn_.get()));
    if (flushed == 1) return waiting(true, true);
    while (!PQisBusy(conn_.get())) {
      PGresult* res = PQgetResult(conn_.get());
      if (res == nullptr) return statement_done();
      if (PQresultStatus(res) == PGRES_FATAL_ERROR && !sql_error_) sql_error_ = result_error(res);
      last_.reset(res);
    }
    if (PQstatus(conn_.get()) == CONNECTION_BAD) return drop(connection_error(conn_.get()));
    return waiting(true, false);
  }

  static MonoTime steady_now() { return std::chrono::steady_clock::now(); }
  struct Finish {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };

  PollStep continue_connecting() {
    const PostgresPollingStatusType st = PQconnectPoll(conn_.get());
    if (st == PGRES_POLLING_FAILED) return drop(connection_error(conn_.get()));
    if (st != PGRES_POLLING_OK) return waiting(st == PGRES_POLLING_READING, st == PGRES_POLLING_WRITING);
    if (PQsetnonblocking(conn_.get(), 1) != 0) return drop(connection_error(conn_.get()));
    prepared_ = false;  // statements live and die with their session
    return send(Phase::session_setup, PQsendQuery(conn_.get(), statement_timeout_sql(options_.query_timeout).c_str()));
  }

  PollStep send_poll() {
    deadline_ = steady_now() + options_.query_timeout;
    if (!prepared_) {
      return send(Phase::preparing, PQsendPrepare(conn_.get(), kPollStatement, poll_statement(schema_, canary_).c_str(), 2, nullptr));
    }
    return send(Phase::polling, PQsendQueryPrepared(conn_.get(), kPollStatement, 2, params_, nullptr, nullptr, 0));
  }

  PollStep send(Phase phase, int sent) {
    if (sent != 1) return drop(connection_error(conn_.get()));
    phase_ = phase;
    sql_error_.reset();
    last_.reset();
    const int flushed = PQflush(conn_.get());
    if (flushed < 0) return drop(connection_error(conn_.get()));
    return waiting(true, flushed == 1);
  }

  // The statement's results are all in: on to the session's next statement, or the answer.
  PollStep statement_done() {
    if (sql_error_) {
      // The table may not have replicated yet, or was dropped: the target answered, it just has
      // no canary (preparing again at the next poll).
      if (sql_error_->code == kUndefinedTable && phase_ != Phase::session_setup) return finish(CanaryPoll{});
      if (phase_ == Phase::session_setup) return drop(sql_error_->message);
      return finish(*sql_error_);  // an SQL error leaves the session usable
    }
    switch (phase_) {
      case Phase::session_setup:
        return send_poll();  // prepares first: the session is new
      case Phase::preparing:
        prepared_ = true;
        return send(Phase::polling, PQsendQueryPrepared(conn_.get(), kPollStatement, 2, params_, nullptr, nullptr, 0));
      case Phase::polling:
        if (!last_) return drop("no result from server");
        return finish(parse_poll(Rows(last_.release())));
      case Phase::looking_up:
      case Phase::connecting: break;
    }
    return drop("unexpected state");
  }

  PollStep waiting(bool read, bool write) const {
    return PollStep{std::nullopt, PQsocket(conn_.get()), read, write, deadline_};
  }
  static PollStep finish(Result<CanaryPoll> result) { return PollStep{std::move(result)}; }
  // Transport trouble: the connection goes, and the next poll opens a new one.
  PollStep drop(std::string message) {
    conn_.reset();
    return finish(Error{std::move(message)});
  }

  ConnectOptions options_;
  std::optional<HostList> hosts_;
  std::string schema_, agent_id_, probe_;
  const char* params_[2];
  bool canary_;
  std::unique_ptr<PGconn, Finish> conn_;
  std::shared_ptr<NameLookup> lookup_;
  std::unique_ptr<PGresult, Clear> last_;
  std::optional<Error> sql_error_;
  Phase phase_ = Phase::connecting;
  MonoTime deadline_{};
  bool prepared_ = false;
};

}  // namespace

std::string canary_table(const std::string& schema) { return quote_identifier(schema) + ".canary"; }

std::string canary_table_ddl(const std::string& schema) {
  return "CREATE TABLE IF NOT EXISTS " + canary_table(schema) +
         " (agent_id text NOT NULL, probe text NOT NULL, seq bigint NOT NULL,"
         " written_at timestamp(6) NOT NULL, PRIMARY KEY (agent_id, probe))";
}

ConnectOptions connect_options(const DsnConfig& dsn, const ProbeConfig& probe) {
  return ConnectOptions{dsn.dsn, dsn.password, probe.connect_timeout, probe.query_timeout};
}

PostgresBackend::PostgresBackend(const ProbeConfig& probe, std::string agent_id)
    : probe_(settings_of(probe)), agent_id_(std::move(agent_id)) {}

// mode: position samples the primary's snapshot, then its WAL insert position: a transaction
// that the snapshot shows completed has its commit record inserted, so a replica that replayed up
// to that position shows it (the insert position, not the flushed one: a commit without
// synchronous_commit is visible before its WAL is flushed). WAL without a completed transaction
// is no canary: a replica replays it at once, whatever its apply delay.
std::unique_ptr<CanaryWriter> PostgresBackend::writer() {
  if (probe_.mode == ProbeMode::position) {
    auto conn = std::make_shared<LazyPg>(connect_options(probe_.primary, probe_));
    auto previous = std::make_shared<std::optional<Snapshot>>();
    auto sample = [conn, previous](std::stop_token stop) -> Result<std::optional<PrimarySample>> {
      auto c = conn->get(stop, [](Connection&) { return ok_status(); });
      if (!c) return c.error();
      auto rows = c.value()->exec(
          "SELECT s::text, pg_current_wal_insert_lsn()::text FROM (SELECT pg_current_snapshot() AS s OFFSET 0) AS q");
      if (!rows) return rows.error();
      const auto text = rows->get(0, 0);
      const auto lsn = rows->get(0, 1);
      if (!lsn) return std::optional<PrimarySample>();
      auto snapshot = text ? parse_snapshot(*text) : std::nullopt;
      if (!snapshot) return Error{"the primary's snapshot does not parse: " + std::string(text.value_or("NULL"))};
      PrimarySample out{std::string(*lsn), *previous ? completed_between(**previous, *snapshot) : false};
      *previous = std::move(snapshot);
      return std::optional<PrimarySample>(std::move(out));
    };
    return std::make_unique<PositionSampler>(std::move(sample), samples_per_canary(probe_));
  }
  return std::make_unique<PgWriter>(connect_options(probe_.primary, probe_), probe_.schema, agent_id_, probe_.name,
                                    probe_.session_settings);
}

std::unique_ptr<CanarySession> PostgresBackend::session(const TargetConfig& target, const std::string& key) {
  ConnectOptions options = connect_options(target.dsn, probe_);
  options.server_timeout = false;
  return std::make_unique<PgSession>(std::move(options), probe_.schema, agent_id_, key, probe_.session_settings);
}

// A target reached by name stays on a thread of its own: libpq resolves names with a blocking
// lookup even when connecting without blocking, and a slow resolver would stall the whole loop.
std::unique_ptr<AsyncCanaryReader> PostgresBackend::async_reader(const TargetConfig& target) {
  return std::make_unique<PgAsyncReader>(connect_options(target.dsn, probe_), hosts_to_look_up(target.dsn.dsn),
                                         probe_.schema, agent_id_, probe_.name, probe_.mode == ProbeMode::canary);
}

// A read path (no report_lag) reads the row as an application would, with a plain SELECT: the
// poll's volatile functions would make pgpool-II send every read to the primary.
std::unique_ptr<CanaryReader> PostgresBackend::reader(const TargetConfig& target, bool report_lag) {
  const std::string statement = report_lag || probe_.mode != ProbeMode::canary
                                    ? poll_statement(probe_.schema, probe_.mode == ProbeMode::canary)
                                    : read_statement(probe_.schema);
  ConnectOptions options = connect_options(target.dsn, probe_);
  options.server_timeout = report_lag;
  return std::make_unique<PgReader>(std::move(options), statement, agent_id_, probe_.name);
}

Status PostgresBackend::check(const TargetConfig& target) const {
  if (Status parsed = check_conninfo(target.dsn.dsn); !parsed) return Error{"bad PostgreSQL DSN: " + parsed.error().message};
  return ok_status();
}

std::optional<double> PostgresBackend::position_behind(const Position& primary, const Position& target) const {
  auto p = parse_lsn(primary), t = parse_lsn(target);
  if (!p || !t) return std::nullopt;
  return *p > *t ? static_cast<double>(*p - *t) : 0.0;
}

}  // namespace ghostwatch::pg
