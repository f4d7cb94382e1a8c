// PgConnection: one libpq connection driven asynchronously, so that every call has a deadline
// even when the server is frozen or the network drops packets (a blocking libpq call has none).
// Not thread-safe: one connection belongs to one probe thread. After any error the connection
// is marked broken and the owner drops it and reconnects with Backoff.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace ghostwatch::pg {

struct ConnectOptions {
  std::string dsn;                      // libpq key=value string or postgresql:// URI
  std::optional<std::string> password;  // from password_file; overrides the DSN's
  Duration connect_timeout = std::chrono::seconds(5);
  Duration query_timeout = std::chrono::seconds(5);  // client deadline and statement_timeout
  // Backs the client deadline up with SET statement_timeout. Off for a read path's sessions: a
  // load-balancing middleware may take any SET for a write (pgpool-II's
  // disable_load_balance_on_write = always then sends the session's reads to the primary), and
  // an application's reads rarely SET anything.
  bool server_timeout = true;
};

// libpq keywords with their values.
using Keywords = std::vector<std::pair<std::string, std::string>>;

// A query result; cells are nullopt for SQL NULL.
class Rows {
 public:
  explicit Rows(PGresult* res) : res_(res, &PQclear) {}
  int size() const { return PQntuples(res_.get()); }
  std::optional<std::string_view> get(int row, int col) const;

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> res_;
};

class Connection {
 public:
  static Result<std::unique_ptr<Connection>> open(const ConnectOptions& options, std::stop_token stop);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A simple-protocol query (may hold several statements; returns the last result).
  Result<Rows> exec(const std::string& sql);
  // An extended-protocol query with text parameters (no statement is kept).
  Result<Rows> exec_params(const std::string& sql, const std::vector<std::string>& params);
  Status prepare(const std::string& name, const std::string& sql, int param_count);
  Result<Rows> exec_prepared(const std::string& name, const std::vector<std::string>& params);

  // Pipelining (libpq's pipeline mode), so that several statements are in flight at once:
  // send_prepared queues a prepared statement and returns without waiting for its answer;
  // receive returns the oldest queued statement's rows, within query_timeout. Each statement
  // has its own sync point: an SQL error fails that statement only. The calls above must not
  // be used while statements are queued.
  Status send_prepared(const std::string& name, const std::vector<const char*>& params);
  Result<Rows> receive();

  bool broken() const { return broken_; }

 private:
  Connection(PGconn* conn, Duration query_timeout, std::stop_token stop)
      : conn_(conn), query_timeout_(query_timeout), stop_(stop) {}
  Result<Rows> collect(bool sent);
  Status flush(MonoTime deadline);
  Status await_result(MonoTime deadline);
  Error fail(std::string message, std::string code = {});

  PGconn* conn_;
  Duration query_timeout_;
  std::stop_token stop_;
  bool broken_ = false;
  int queued_ = 0;
};

// For connections driven by an event loop (the poll loop's readers): starts a non-blocking
// connection with the same keywords as Connection::open (null: out of memory); the error of a
// connection, and of a failed statement's result with its SQLSTATE, secrets scrubbed; the
// statement that backs the client deadline up on the server; and the words of a deadline that
// passed ("query timed out after 500ms").
// `overrides` replace the DSN's (host, hostaddr, port: a name lookup made beforehand).
PGconn* start_connecting(const ConnectOptions& options, const Keywords& overrides = {});
// The hosts and ports of a DSN (PGHOST and PGPORT when it has none), in the order libpq tries them.
struct HostList {
  std::vector<std::string> hosts;
  std::vector<std::string> ports;  // none, one for every host, or one per host
  // The hosts that need a name lookup (not an address, not a socket directory), each once.
  std::vector<std::string> names() const;
};
// Set when connecting needs a name lookup, which libpq makes blocking even in its non-blocking
// connect, and the DSN gives no hostaddr; unset too when libpq cannot parse the DSN (the
// connection says why, off the loop).
std::optional<HostList> hosts_to_look_up(const std::string& dsn);

// Whether libpq can parse `dsn` (key=value or URI); the error is libpq's, secrets scrubbed.
Status check_conninfo(const std::string& dsn);
// The value of one keyword in `dsn`, nullopt when unset or when the DSN does not parse.
std::optional<std::string> conninfo_value(const std::string& dsn, std::string_view keyword);
// The host, hostaddr (and port) keywords that make libpq try every address found for the names
// (`addresses[i]` for `names[i]`), in order, each under its host name (which TLS verification and
// the passfile still match); addresses and socket directories stand for themselves.
Keywords resolved_keywords(const HostList& list, const std::vector<std::string>& names,
                           const std::vector<std::vector<std::string>>& addresses);
std::string connection_error(const PGconn* conn);
Error result_error(const PGresult* res);
std::string statement_timeout_sql(Duration query_timeout);

// Quotes an SQL identifier ("a""b"), so names from the config cannot inject SQL.
std::string quote_identifier(std::string_view name);

// Parses a textual LSN ("16/B374D848") into a byte position.
std::optional<uint64_t> parse_lsn(std::string_view text);

}  // namespace ghostwatch::pg
