#include "probes/mysql/mysql_connection.h"

#include <errmsg.h>
#include <poll.h>

#include <algorithm>
#include <cmath>

#include "common/redact.h"
#include "common/sql_quote.h"

namespace ghostwatch::mysql {
namespace {

constexpr auto kPollSlice = std::chrono::milliseconds(50);  // how often a wait checks for stop
constexpr std::size_t kCellBuffer = 4096;                   // longer cells are fetched whole afterwards

enum class Wait { ready, timeout, stopped, error };

// Waits for what the connector asked for (`status`: MYSQL_WAIT_* bits). `ready` receives the
// bits that happened, including MYSQL_WAIT_TIMEOUT when the connector's own timer ran out.
Wait wait_for(MYSQL* mysql, int status, MonoTime deadline, const std::stop_token& stop, int& ready) {
  std::optional<MonoTime> connector_deadline;
  if (status & MYSQL_WAIT_TIMEOUT) {
    connector_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(mysql_get_timeout_value_ms(mysql));
  }
  short events = 0;
  if (status & MYSQL_WAIT_READ) events |= POLLIN;
  if (status & MYSQL_WAIT_WRITE) events |= POLLOUT;
  if (status & MYSQL_WAIT_EXCEPT) events |= POLLPRI;
  while (true) {
    if (stop.stop_requested()) return Wait::stopped;
    const MonoTime now = std::chrono::steady_clock::now();
    if (now >= deadline) return Wait::timeout;
    if (connector_deadline && now >= *connector_deadline) {
      ready = MYSQL_WAIT_TIMEOUT;
      return Wait::ready;
    }
    MonoTime until = std::min(deadline, now + kPollSlice);
    if (connector_deadline) until = std::min(until, *connector_deadline);
    pollfd p{static_cast<int>(mysql_get_socket(mysql)), events, 0};
    const int ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(until - now).count());
    const int rc = ::poll(&p, 1, ms);
    if (rc > 0) {
      ready = 0;
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) ready |= MYSQL_WAIT_READ;
      if (p.revents & POLLOUT) ready |= MYSQL_WAIT_WRITE;
      if (p.revents & POLLPRI) ready |= MYSQL_WAIT_EXCEPT;
      return Wait::ready;
    }
    if (rc < 0 && errno != EINTR) return Wait::error;
  }
}

std::string wait_failure(Wait w, const char* what, Duration timeout) {
  if (w == Wait::stopped) return std::string(what) + " interrupted by shutdown";
  if (w == Wait::timeout) return timed_out(what, timeout);
  return std::string(what) + " failed: poll() error";
}

// Drives one non-blocking connector call to completion or to the deadline.
template <class Start, class Cont>
Wait run_nonblocking(MYSQL* mysql, MonoTime deadline, const std::stop_token& stop, Start start, Cont cont) {
  int status = start();
  while (status != 0) {
    int ready = 0;
    const Wait w = wait_for(mysql, status, deadline, stop, ready);
    if (w != Wait::ready) return w;
    status = cont(ready);
  }
  return Wait::ready;
}

unsigned whole_seconds(Duration d) {
  return static_cast<unsigned>(std::max<long long>(1, std::chrono::ceil<std::chrono::seconds>(d).count()));
}

void set_options(MYSQL* mysql, const ConnectOptions& o) {
  mysql_options(mysql, MYSQL_OPT_NONBLOCK, nullptr);
  // Backstops in whole seconds; the non-blocking deadlines above are the precise limits.
  const unsigned connect = whole_seconds(o.connect_timeout), rw = whole_seconds(o.query_timeout);
  mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connect);
  mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &rw);
  mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &rw);
  mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  mysql_options4(mysql, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name", "ghostwatch");
  // The connector reads the files at each connect: a rotated certificate is used by the next one.
  if (!o.uri.ssl_ca.empty()) mysql_options(mysql, MYSQL_OPT_SSL_CA, o.uri.ssl_ca.c_str());
  if (!o.uri.ssl_cert.empty()) mysql_options(mysql, MYSQL_OPT_SSL_CERT, o.uri.ssl_cert.c_str());
  if (!o.uri.ssl_key.empty()) mysql_options(mysql, MYSQL_OPT_SSL_KEY, o.uri.ssl_key.c_str());
  const my_bool yes = 1, no = 0;
  const std::string& mode = o.uri.ssl_mode;
  if (mode == "required" || mode == "verify_ca" || mode == "verify_identity") {
    mysql_options(mysql, MYSQL_OPT_SSL_ENFORCE, &yes);
    // With a CA the connector verifies the server's chain; this adds the check of its name.
    mysql_options(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, mode == "verify_identity" ? &yes : &no);
  }
}

}  // namespace

bool transport_error(unsigned code) { return code >= CR_MIN_ERROR && code <= CR_MAX_ERROR; }

MYSQL* new_handle(const ConnectOptions& options) {
  MYSQL* mysql = mysql_init(nullptr);
  if (mysql != nullptr) set_options(mysql, options);
  return mysql;
}

Flavor flavor_of(MYSQL* connected) {
  const char* info = mysql_get_server_info(connected);
  return (info && std::string_view(info).find("MariaDB") != std::string_view::npos) ? Flavor::mariadb : Flavor::mysql;
}

// The server-side limit backs up the client deadline: a statement we gave up on does not run on.
std::string statement_limit_sql(Flavor flavor, Duration query_timeout) {
  const double seconds = std::chrono::duration<double>(query_timeout).count();
  return flavor == Flavor::mariadb ? "SET SESSION max_statement_time = " + std::to_string(seconds)
                                   : "SET SESSION max_execution_time = " + std::to_string(std::llround(seconds * 1000));
}

struct Connection::Statement {
  explicit Statement(MYSQL_STMT* s) : stmt(s) {}
  ~Statement() { mysql_stmt_close(stmt); }
  MYSQL_STMT* stmt;
};

std::optional<std::string> Rows::get(std::size_t row, std::size_t col) const {
  if (row >= rows.size() || col >= rows[row].size()) return std::nullopt;
  return rows[row][col];
}

std::optional<std::string> Rows::get(std::size_t row, const std::string& column) const {
  auto it = std::find(columns.begin(), columns.end(), column);
  if (it == columns.end()) return std::nullopt;
  return get(row, static_cast<std::size_t>(it - columns.begin()));
}

Connection::Connection(MYSQL* mysql, Duration query_timeout, std::stop_token stop)
    : mysql_(mysql), query_timeout_(query_timeout), stop_(stop), flavor_(flavor_of(mysql)) {}

Connection::~Connection() {
  statements_.clear();
  mysql_close(mysql_);
}

int connect_start(MYSQL** ret, MYSQL* handle, const ConnectOptions& o) {
  const std::optional<std::string>& password = o.password ? o.password : o.uri.password;
  const bool tcp = o.uri.socket.empty();
  return mysql_real_connect_start(ret, handle, tcp ? o.uri.host.c_str() : "localhost",
                                  o.uri.user.empty() ? nullptr : o.uri.user.c_str(),
                                  password ? password->c_str() : nullptr,
                                  o.uri.database.empty() ? nullptr : o.uri.database.c_str(), tcp ? o.uri.port : 0,
                                  tcp ? nullptr : o.uri.socket.c_str(), 0);
}

Rows to_rows(MYSQL_RES* res) {
  Rows rows;
  if (res == nullptr) return rows;
  const unsigned n = mysql_num_fields(res);
  MYSQL_FIELD* fields = mysql_fetch_fields(res);
  for (unsigned i = 0; i < n; ++i) rows.columns.emplace_back(fields[i].name);
  while (MYSQL_ROW row = mysql_fetch_row(res)) {
    const unsigned long* lengths = mysql_fetch_lengths(res);
    auto& out = rows.rows.emplace_back();
    for (unsigned i = 0; i < n; ++i) {
      out.push_back(row[i] ? std::optional<std::string>(std::string(row[i], lengths[i])) : std::nullopt);
    }
  }
  return rows;
}

std::string trimmed_error(std::string message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return scrub(message);
}

std::string connect_error(MYSQL* handle, const ConnectOptions& o) {
  const std::string message = trimmed_error(mysql_error(handle));
  const std::string server = o.uri.socket.empty() ? o.uri.host + ":" + std::to_string(o.uri.port) : o.uri.socket;
  const std::string where = o.uri.socket.empty() ? o.uri.host : o.uri.socket;
  return message.find(where) == std::string::npos ? server + ": " + message : message;
}

Result<std::unique_ptr<Connection>> Connection::open(const ConnectOptions& o, std::stop_token stop) {
  MYSQL* mysql = new_handle(o);
  if (mysql == nullptr) return Error{"out of memory creating a MySQL connection"};
  const MonoTime deadline = std::chrono::steady_clock::now() + o.connect_timeout;
  MYSQL* ret = nullptr;
  const Wait w = run_nonblocking(
      mysql, deadline, stop, [&] { return connect_start(&ret, mysql, o); },
      [&](int ready) { return mysql_real_connect_cont(&ret, mysql, ready); });
  if (w != Wait::ready || ret == nullptr) {
    std::string message = w != Wait::ready ? wait_failure(w, "connect", o.connect_timeout) : connect_error(mysql, o);
    mysql_close(mysql);
    return Error{scrub(message)};
  }
  std::unique_ptr<Connection> c(new Connection(mysql, o.query_timeout, stop));
  if (auto r = c->query(statement_limit_sql(c->flavor_, o.query_timeout)); !r) return r.error();
  return c;
}

Error Connection::fail(std::string message, unsigned code) {
  if (code == 0 || transport_error(code)) broken_ = true;
  return Error{trimmed_error(std::move(message)), code ? std::to_string(code) : std::string()};
}

Error Connection::fail_stmt(MYSQL_STMT* stmt) { return fail(mysql_stmt_error(stmt), mysql_stmt_errno(stmt)); }

Result<Rows> Connection::query(const std::string& sql) {
  if (broken_) return fail("connection is broken", 0);
  const MonoTime deadline = std::chrono::steady_clock::now() + query_timeout_;
  int err = 0;
  Wait w = run_nonblocking(
      mysql_, deadline, stop_, [&] { return mysql_real_query_start(&err, mysql_, sql.data(), sql.size()); },
      [&](int ready) { return mysql_real_query_cont(&err, mysql_, ready); });
  if (w != Wait::ready) return fail(wait_failure(w, "query", query_timeout_), 0);
  if (err) return fail(mysql_error(mysql_), mysql_errno(mysql_));
  MYSQL_RES* res = nullptr;
  w = run_nonblocking(
      mysql_, deadline, stop_, [&] { return mysql_store_result_start(&res, mysql_); },
      [&](int ready) { return mysql_store_result_cont(&res, mysql_, ready); });
  if (w != Wait::ready) return fail(wait_failure(w, "query", query_timeout_), 0);
  if (res == nullptr && mysql_field_count(mysql_) != 0) return fail(mysql_error(mysql_), mysql_errno(mysql_));
  Rows rows = to_rows(res);
  rows.insert_id = mysql_insert_id(mysql_);
  if (res) mysql_free_result(res);
  return rows;
}

Result<Connection::Statement*> Connection::prepared(const std::string& name, const std::string& sql) {
  if (auto it = statements_.find(name); it != statements_.end()) return it->second.get();
  auto stmt = std::make_unique<Statement>(mysql_stmt_init(mysql_));
  if (stmt->stmt == nullptr) return fail("out of memory creating a statement", 0);
  const MonoTime deadline = std::chrono::steady_clock::now() + query_timeout_;
  int err = 0;
  const Wait w = run_nonblocking(
      mysql_, deadline, stop_, [&] { return mysql_stmt_prepare_start(&err, stmt->stmt, sql.data(), sql.size()); },
      [&](int ready) { return mysql_stmt_prepare_cont(&err, stmt->stmt, ready); });
  if (w != Wait::ready) return fail(wait_failure(w, "prepare", query_timeout_), 0);
  if (err) return fail_stmt(stmt->stmt);
  return (statements_[name] = std::move(stmt)).get();
}

Result<Rows> Connection::execute(const std::string& name, const std::string& sql,
                                 const std::vector<std::string>& params) {
  if (broken_) return fail("connection is broken", 0);
  auto prepared_stmt = prepared(name, sql);
  if (!prepared_stmt) return prepared_stmt.error();
  MYSQL_STMT* stmt = prepared_stmt.value()->stmt;
  if (mysql_stmt_param_count(stmt) != params.size()) return fail("statement " + name + ": wrong parameter count", 0);
  std::vector<MYSQL_BIND> binds(params.size());
  std::vector<unsigned long> lengths(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    lengths[i] = params[i].size();
    binds[i].buffer_type = MYSQL_TYPE_STRING;
    binds[i].buffer = const_cast<char*>(params[i].data());
    binds[i].buffer_length = lengths[i];
    binds[i].length = &lengths[i];
  }
  if (!binds.empty() && mysql_stmt_bind_param(stmt, binds.data())) return fail_stmt(stmt);
  const MonoTime deadline = std::chrono::steady_clock::now() + query_timeout_;
  int err = 0;
  Wait w = run_nonblocking(
      mysql_, deadline, stop_, [&] { return mysql_stmt_execute_start(&err, stmt); },
      [&](int ready) { return mysql_stmt_execute_cont(&err, stmt, ready); });
  if (w != Wait::ready) return fail(wait_failure(w, "query", query_timeout_), 0);
  if (err) return fail_stmt(stmt);
  Rows rows;
  rows.insert_id = mysql_stmt_insert_id(stmt);
  std::unique_ptr<MYSQL_RES, void (*)(MYSQL_RES*)> meta(mysql_stmt_result_metadata(stmt), &mysql_free_result);
  if (!meta) return rows;
  const unsigned n = mysql_num_fields(meta.get());
  MYSQL_FIELD* fields = mysql_fetch_fields(meta.get());
  std::vector<MYSQL_BIND> out(n);
  std::vector<std::string> buffers(n, std::string(kCellBuffer, '\0'));
  std::vector<unsigned long> out_lengths(n);
  std::vector<my_bool> nulls(n);
  for (unsigned i = 0; i < n; ++i) {
    rows.columns.emplace_back(fields[i].name);
    out[i].buffer_type = MYSQL_TYPE_STRING;
    out[i].buffer = buffers[i].data();
    out[i].buffer_length = kCellBuffer;
    out[i].length = &out_lengths[i];
    out[i].is_null = &nulls[i];
  }
  if (mysql_stmt_bind_result(stmt, out.data())) return fail_stmt(stmt);
  w = run_nonblocking(
      mysql_, deadline, stop_, [&] { return mysql_stmt_store_result_start(&err, stmt); },
      [&](int ready) { return mysql_stmt_store_result_cont(&err, stmt, ready); });
  if (w != Wait::ready) return fail(wait_failure(w, "query", query_timeout_), 0);
  if (err) return fail_stmt(stmt);
  while (true) {
    const int rc = mysql_stmt_fetch(stmt);  // local: the result is stored
    if (rc == MYSQL_NO_DATA) break;
    if (rc == 1) return fail_stmt(stmt);
    auto& row = rows.rows.emplace_back();
    for (unsigned i = 0; i < n; ++i) {
      if (nulls[i]) {
        row.emplace_back(std::nullopt);
        continue;
      }
      std::string cell(out_lengths[i], '\0');
      if (out_lengths[i] <= kCellBuffer) {
        cell.assign(buffers[i].data(), out_lengths[i]);
      } else {
        MYSQL_BIND whole{};
        whole.buffer_type = MYSQL_TYPE_STRING;
        whole.buffer = cell.data();
        whole.buffer_length = cell.size();
        if (mysql_stmt_fetch_column(stmt, &whole, i, 0)) return fail_stmt(stmt);
      }
      row.emplace_back(std::move(cell));
    }
  }
  mysql_stmt_free_result(stmt);
  return rows;
}

std::string quote_identifier(std::string_view name) { return quote_sql_identifier(name, '`'); }


}  // namespace ghostwatch::mysql
