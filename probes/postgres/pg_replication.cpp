#include "probes/postgres/pg_replication.h"

#include <charconv>

#include "common/parse_number.h"
#include "probes/lazy_connection.h"

namespace ghostwatch::pg {
std::string poll_statement(const std::string& schema) {
  return "SELECT (SELECT seq FROM " + canary_table(schema) + " WHERE agent_id = $1 AND probe = $2),"
         " pg_last_wal_replay_lsn()::text,"
         " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8,"
         " NOT pg_is_in_recovery()";
}

namespace {

constexpr const char* kUndefinedTable = "42P01";
constexpr const char* kWriteStatement = "ghostwatch_canary_write";
constexpr const char* kPollStatement = "ghostwatch_canary_poll";

using LazyPg = LazyConnection<Connection, ConnectOptions>;

class PgWriter final : public CanaryWriter {
 public:
  PgWriter(ConnectOptions options, std::string schema, std::string agent_id, std::string probe)
      : conn_(std::move(options)), schema_(std::move(schema)), params_{std::move(agent_id), std::move(probe)} {}

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

  // Captured by the upsert's RETURNING: no extra round trip.
  Result<std::optional<Position>> position(std::stop_token) override { return position_; }

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
    return c.prepare(kWriteStatement,
                     "INSERT INTO " + canary_table(schema_) +
                         " AS c (agent_id, probe, seq, written_at) VALUES ($1, $2, $3, now())"
                         " ON CONFLICT (agent_id, probe) DO UPDATE SET seq = GREATEST(c.seq + 1, EXCLUDED.seq), written_at = now()"
                         " RETURNING c.seq, pg_current_wal_insert_lsn()::text",
                     3);
  }

  Error cannot_create(const Error& e) const {
    return Error{"the canary table " + canary_table(schema_) + " is missing and this role cannot create it (" +
                     e.message + "); create it as an administrator: `ghostwatch init --config FILE` prints the SQL",
                 e.code};
  }

  LazyPg conn_;
  std::string schema_;
  std::vector<std::string> params_;
  // A row deleted while we run is re-created with the next seq, not 1: seq never goes back,
  // so replicas still showing the old row cannot pass for having seen new canaries.
  int64_t last_seq_ = 0;
  std::optional<Position> position_;
};

class PgReader final : public CanaryReader {
 public:
  PgReader(ConnectOptions options, std::string schema, std::string agent_id, std::string probe)
      : conn_(std::move(options)), schema_(std::move(schema)), params_{std::move(agent_id), std::move(probe)} {}

  Result<CanaryPoll> poll(std::stop_token stop) override {
    auto conn = conn_.get(stop, [this](Connection&) {
      prepared_ = false;  // statements live and die with their session
      return ok_status();
    });
    if (!conn) return conn.error();
    if (!prepared_) {
      Status s = conn.value()->prepare(kPollStatement, poll_statement(schema_), 2);
      // The table may not have replicated yet: the target answered, it just has no canary.
      if (!s && s.error().code == kUndefinedTable) return CanaryPoll{};
      if (!s) return s.error();
      prepared_ = true;
    }
    auto rows = conn.value()->exec_prepared(kPollStatement, params_);
    // Dropped on the primary and gone here too: the target answered, it has no canary.
    if (!rows && rows.error().code == kUndefinedTable) return CanaryPoll{};
    if (!rows) return rows.error();
    auto lsn = rows->get(0, 1);
    CanaryPoll poll;
    poll.seq = parse_number<int64_t>(rows->get(0, 0));
    poll.reported = {true, parse_number<double>(rows->get(0, 2))};
    if (lsn) poll.position = std::string(*lsn);
    if (auto primary = rows->get(0, 3)) poll.is_primary = *primary == "t";
    return poll;
  }

 private:
  LazyPg conn_;
  std::string schema_;
  std::vector<std::string> params_;
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
    : probe_(probe), agent_id_(std::move(agent_id)) {}

std::unique_ptr<CanaryWriter> PostgresBackend::writer() {
  return std::make_unique<PgWriter>(connect_options(probe_.primary, probe_), probe_.schema, agent_id_, probe_.name);
}

// The replay timestamp comes with the same statement, so report_lag costs nothing to honour.
std::unique_ptr<CanaryReader> PostgresBackend::reader(const TargetConfig& target, bool) {
  return std::make_unique<PgReader>(connect_options(target.dsn, probe_), probe_.schema, agent_id_, probe_.name);
}

std::optional<double> PostgresBackend::position_behind(const Position& primary, const Position& target) const {
  auto p = parse_lsn(primary), t = parse_lsn(target);
  if (!p || !t) return std::nullopt;
  return *p > *t ? static_cast<double>(*p - *t) : 0.0;
}

}  // namespace ghostwatch::pg
