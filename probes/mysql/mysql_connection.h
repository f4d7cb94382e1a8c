// One MySQL/MariaDB connection driven through MariaDB Connector/C's non-blocking API
// (mysql_*_start / mysql_*_cont; Debian's default-libmysqlclient-dev is that connector), so
// every call has a client-side deadline and notices a stop request, like pg::Connection. Not
// thread-safe: one connection belongs to one probe thread. After a transport error or a
// deadline the connection is broken and its owner reconnects with Backoff.
#pragma once

#include <mysql.h>

#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "probes/mysql/mysql_uri.h"

namespace ghostwatch::mysql {

enum class Flavor { mariadb, mysql };

struct ConnectOptions {
  Uri uri;
  std::optional<std::string> password;  // from password_file; overrides the URI's
  Duration connect_timeout = std::chrono::seconds(5);
  Duration query_timeout = std::chrono::seconds(5);
};

// A result set held in memory; cells are nullopt for SQL NULL.
struct Rows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  uint64_t insert_id = 0;
  std::optional<std::string> get(std::size_t row, const std::string& column) const;
  std::optional<std::string> get(std::size_t row, std::size_t col) const;
};

class Connection {
 public:
  static Result<std::unique_ptr<Connection>> open(const ConnectOptions& options, std::stop_token stop);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A text-protocol query (one statement).
  Result<Rows> query(const std::string& sql);
  // A server-side prepared statement, prepared on first use under `name` and kept with the
  // connection; parameters and results travel as text.
  Result<Rows> execute(const std::string& name, const std::string& sql, const std::vector<std::string>& params);

  bool broken() const { return broken_; }
  Flavor flavor() const { return flavor_; }

 private:
  struct Statement;
  Connection(MYSQL* mysql, Duration query_timeout, std::stop_token stop);
  template <class Start, class Cont>
  Status drive(Start start, Cont cont);
  Error fail(std::string message, unsigned code);
  Error fail_stmt(MYSQL_STMT* stmt);
  Result<Statement*> prepared(const std::string& name, const std::string& sql);

  MYSQL* mysql_;
  Duration query_timeout_;
  std::stop_token stop_;
  bool broken_ = false;
  Flavor flavor_ = Flavor::mysql;
  std::map<std::string, std::unique_ptr<Statement>> statements_;
};

// For a reader that drives the connector itself (on the event loop): a handle set up and
// connected as Connection::open does its own (non-blocking, timeouts, character set, TLS), the
// flavour of a connected handle, a result's rows, the statement that limits a session's
// statements on the server, and whether an error code is the connection's (then it is
// unusable) rather than the statement's.
MYSQL* new_handle(const ConnectOptions& options);  // nullptr: out of memory
// mysql_real_connect_start with the options' host or socket, user, password and database.
int connect_start(MYSQL** ret, MYSQL* handle, const ConnectOptions& options);
Flavor flavor_of(MYSQL* connected);
// A stored result's rows (none for a null result); the result stays the caller's to free.
Rows to_rows(MYSQL_RES* res);
// The connector's error text as an error message: no trailing newline, no secrets.
std::string trimmed_error(std::string message);
// A failed connect's error, naming the server ("127.0.0.1:3306: TLS/SSL error: ..."): the
// connector's TLS errors do not.
std::string connect_error(MYSQL* handle, const ConnectOptions& options);
std::string statement_limit_sql(Flavor flavor, Duration query_timeout);
bool transport_error(unsigned code);

// Quotes an SQL identifier (`a``b`), so names from the config cannot inject SQL.
std::string quote_identifier(std::string_view name);

// Server error codes that a caller may want to recognise.
inline constexpr unsigned kNoSuchTable = 1146;  // ER_NO_SUCH_TABLE

}  // namespace ghostwatch::mysql
