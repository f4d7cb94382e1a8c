#include "probes/postgres/pg_connection.h"

#include <poll.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "common/net.h"
#include "common/redact.h"
#include "common/sql_quote.h"

namespace ghostwatch::pg {

namespace {

constexpr auto kPollSlice = std::chrono::milliseconds(50);  // how often a wait checks for stop

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

enum class Wait { ready, timeout, stopped, error };

// Waits for the socket to become ready for `events`, in slices so that a stop is noticed.
Wait wait_socket(int fd, short events, MonoTime deadline, const std::stop_token& stop) {
  while (true) {
    if (stop.stop_requested()) return Wait::stopped;
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= Duration(0)) return Wait::timeout;
    const auto slice = std::min<Duration>(left, kPollSlice);
    pollfd p{fd, events, 0};
    const int ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(slice).count());
    const int rc = ::poll(&p, 1, ms);
    if (rc > 0) return Wait::ready;
    if (rc < 0 && errno != EINTR) return Wait::error;
  }
}

std::string wait_failure(Wait w, std::string_view what, Duration timeout) {
  if (w == Wait::stopped) return std::string(what) + " interrupted by shutdown";
  if (w == Wait::timeout) return timed_out(what, timeout);
  return std::string(what) + " failed: poll() error";
}

}  // namespace

std::optional<std::string_view> Rows::get(int row, int col) const {
  if (row >= PQntuples(res_.get()) || col >= PQnfields(res_.get())) return std::nullopt;
  if (PQgetisnull(res_.get(), row, col)) return std::nullopt;
  return std::string_view(PQgetvalue(res_.get(), row, col), PQgetlength(res_.get(), row, col));
}

PGconn* start_connecting(const ConnectOptions& o, const Keywords& overrides) {
  // Keywords are applied in order: application_name first so that the DSN may override it,
  // a password from password_file last so that it wins over the DSN's.
  std::vector<const char*> keys{"application_name", "dbname"};
  std::vector<const char*> values{"ghostwatch", o.dsn.c_str()};
  for (const auto& [key, value] : overrides) {
    keys.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  if (o.password) {
    keys.push_back("password");
    values.push_back(o.password->c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  return PQconnectStartParams(keys.data(), values.data(), /*expand_dbname=*/1);
}

namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool needs_lookup(const std::string& host) {
  return !(host.empty() || host[0] == '/' || host[0] == '@' || is_ip_literal(host));
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out;
}

}  // namespace

std::vector<std::string> HostList::names() const {
  std::vector<std::string> out;
  for (const std::string& h : hosts) {
    if (needs_lookup(h) && std::find(out.begin(), out.end(), h) == out.end()) out.push_back(h);
  }
  return out;
}

Status check_conninfo(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (options != nullptr) {
    PQconninfoFree(options);
    return ok_status();
  }
  std::string message = error ? error : "out of memory";
  PQfreemem(error);
  return Error{scrub(trim(std::move(message)))};
}

std::optional<std::string> conninfo_value(const std::string& dsn, std::string_view keyword) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  PQfreemem(error);
  if (options == nullptr) return std::nullopt;
  std::optional<std::string> value;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && keyword == o->keyword) value = o->val;
  }
  PQconninfoFree(options);
  return value;
}

std::optional<HostList> hosts_to_look_up(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (options == nullptr) {
    PQfreemem(error);
    return std::nullopt;
  }
  std::string host, hostaddr, port;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view key(o->keyword);
    if (key == "host") host = o->val;
    if (key == "hostaddr") hostaddr = o->val;
    if (key == "port") port = o->val;
  }
  PQconninfoFree(options);
  if (!hostaddr.empty()) return std::nullopt;
  if (host.empty() && std::getenv("PGHOST")) host = std::getenv("PGHOST");
  if (port.empty() && std::getenv("PGPORT")) port = std::getenv("PGPORT");
  HostList list{split_list(host), split_list(port)};
  if (list.names().empty()) return std::nullopt;
  return list;
}

Keywords resolved_keywords(const HostList& list, const std::vector<std::string>& names,
                           const std::vector<std::vector<std::string>>& addresses) {
  std::vector<std::string> hosts, hostaddrs, ports;
  const bool port_per_host = list.ports.size() > 1;
  for (std::size_t i = 0; i < list.hosts.size(); ++i) {
    const std::string& host = list.hosts[i];
    const auto name = std::find(names.begin(), names.end(), host);
    // An empty hostaddr item makes libpq use the host item itself (a socket directory).
    const std::vector<std::string> own{is_ip_literal(host) ? host : ""};
    const auto& found = name != names.end() ? addresses[static_cast<std::size_t>(name - names.begin())] : own;
    for (const std::string& address : found) {
      hosts.push_back(host);
      hostaddrs.push_back(address);
      if (port_per_host && i < list.ports.size()) ports.push_back(list.ports[i]);
    }
  }
  Keywords out{{"host", joined(hosts)}, {"hostaddr", joined(hostaddrs)}};
  if (port_per_host) out.emplace_back("port", joined(ports));
  return out;
}

std::string connection_error(const PGconn* conn) { return scrub(trim(PQerrorMessage(conn))); }

Error result_error(const PGresult* res) {
  const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  return Error{scrub(trim(PQresultErrorMessage(res))), state ? state : "XX000"};
}

std::string statement_timeout_sql(Duration query_timeout) {
  return "SET statement_timeout = " +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(query_timeout).count());
}

Result<std::unique_ptr<Connection>> Connection::open(const ConnectOptions& o, std::stop_token stop) {
  PGconn* conn = start_connecting(o);
  if (conn == nullptr) return Error{"out of memory creating a PostgreSQL connection"};
  auto cleanup = [&](std::string message) {
    message = scrub(trim(message));
    PQfinish(conn);
    return Error{std::move(message)};
  };
  if (PQstatus(conn) == CONNECTION_BAD) return cleanup(PQerrorMessage(conn));
  const MonoTime deadline = std::chrono::steady_clock::now() + o.connect_timeout;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK) {
    if (st == PGRES_POLLING_FAILED) return cleanup(PQerrorMessage(conn));
    const Wait w = wait_socket(PQsocket(conn), st == PGRES_POLLING_WRITING ? POLLOUT : POLLIN, deadline, stop);
    if (w != Wait::ready) return cleanup(wait_failure(w, "connect", o.connect_timeout));
    st = PQconnectPoll(conn);
  }
  if (PQsetnonblocking(conn, 1) != 0) return cleanup(PQerrorMessage(conn));
  std::unique_ptr<Connection> c(new Connection(conn, o.query_timeout, stop));
  // The server-side limit backs up the client deadline: a query we gave up on does not run on.
  if (!o.server_timeout) return c;
  auto set = c->exec(statement_timeout_sql(o.query_timeout));
  if (!set) return set.error();
  return c;
}

Connection::~Connection() { PQfinish(conn_); }

Error Connection::fail(std::string message, std::string code) {
  if (code.empty()) broken_ = true;  // transport trouble; an SQL error leaves the session usable
  return Error{scrub(trim(std::move(message))), std::move(code)};
}

Result<Rows> Connection::exec(const std::string& sql) { return collect(PQsendQuery(conn_, sql.c_str()) == 1); }

namespace {
std::vector<const char*> c_strings(const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  return values;
}
}  // namespace

Result<Rows> Connection::exec_params(const std::string& sql, const std::vector<std::string>& params) {
  const auto values = c_strings(params);
  return collect(PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                   nullptr, nullptr, 0) == 1);
}

Status Connection::prepare(const std::string& name, const std::string& sql, int param_count) {
  auto r = collect(PQsendPrepare(conn_, name.c_str(), sql.c_str(), param_count, nullptr) == 1);
  if (!r) return r.error();
  return ok_status();
}

Result<Rows> Connection::exec_prepared(const std::string& name, const std::vector<std::string>& params) {
  const auto values = c_strings(params);
  return collect(PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(values.size()), values.data(),
                                     nullptr, nullptr, 0) == 1);
}

// Sends what libpq has buffered. While the socket is full, reads what the server sends meanwhile,
// so that a server blocked on writing results to us cannot block us in turn.
Status Connection::flush(MonoTime deadline) {
  int flushed;
  while ((flushed = PQflush(conn_)) == 1) {
    const Wait w = wait_socket(PQsocket(conn_), POLLIN | POLLOUT, deadline, stop_);
    if (w != Wait::ready) return fail(wait_failure(w, "query", query_timeout_));
    if (PQconsumeInput(conn_) == 0) return fail(PQerrorMessage(conn_));
  }
  if (flushed < 0) return fail(PQerrorMessage(conn_));
  return ok_status();
}

// Waits until PQgetResult can answer without blocking.
Status Connection::await_result(MonoTime deadline) {
  while (PQisBusy(conn_)) {
    const Wait w = wait_socket(PQsocket(conn_), POLLIN, deadline, stop_);
    if (w != Wait::ready) return fail(wait_failure(w, "query", query_timeout_));
    if (PQconsumeInput(conn_) == 0) return fail(PQerrorMessage(conn_));
  }
  return ok_status();
}

// Flushes the query, then reads results until libpq has none left; keeps the last one.
Result<Rows> Connection::collect(bool sent) {
  if (broken_) return fail("connection is broken");
  if (!sent) return fail(PQerrorMessage(conn_));
  const MonoTime deadline = std::chrono::steady_clock::now() + query_timeout_;
  if (Status s = flush(deadline); !s) return s.error();
  PGresult* last = nullptr;
  std::optional<Error> sql_error;
  while (true) {
    if (Status s = await_result(deadline); !s) {
      if (last) PQclear(last);
      return s.error();
    }
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) break;
    const ExecStatusType status = PQresultStatus(res);
    if (status == PGRES_FATAL_ERROR && !sql_error) sql_error = result_error(res);
    if (last) PQclear(last);
    last = res;
  }
  if (PQstatus(conn_) == CONNECTION_BAD) {
    if (last) PQclear(last);
    return fail(PQerrorMessage(conn_));
  }
  if (sql_error) {
    if (last) PQclear(last);
    return *sql_error;
  }
  if (last == nullptr) return fail("no result from server");
  return Rows(last);
}

Status Connection::send_prepared(const std::string& name, const std::vector<const char*>& params) {
  if (broken_) return fail("connection is broken");
  if (PQpipelineStatus(conn_) == PQ_PIPELINE_OFF && PQenterPipelineMode(conn_) != 1) return fail(PQerrorMessage(conn_));
  if (PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(params.size()), params.data(), nullptr, nullptr, 0) != 1 ||
      PQpipelineSync(conn_) != 1) {
    return fail(PQerrorMessage(conn_));
  }
  ++queued_;
  return flush(std::chrono::steady_clock::now() + query_timeout_);
}

// One statement's results end with a null result, then its sync point's result follows.
Result<Rows> Connection::receive() {
  if (broken_) return fail("connection is broken");
  if (queued_ == 0) return fail("nothing was sent");
  const MonoTime deadline = std::chrono::steady_clock::now() + query_timeout_;
  std::unique_ptr<PGresult, void (*)(PGresult*)> rows(nullptr, &PQclear);
  std::optional<Error> sql_error;
  while (true) {
    if (Status s = await_result(deadline); !s) return s.error();
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) break;
    if (PQresultStatus(res) == PGRES_FATAL_ERROR && !sql_error) sql_error = result_error(res);
    rows.reset(res);
  }
  if (Status s = await_result(deadline); !s) return s.error();
  std::unique_ptr<PGresult, void (*)(PGresult*)> sync(PQgetResult(conn_), &PQclear);
  if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) return fail("pipeline out of step: no sync point");
  if (--queued_ == 0 && PQexitPipelineMode(conn_) != 1) return fail(PQerrorMessage(conn_));
  if (sql_error) return *sql_error;
  if (!rows) return fail("no result from server");
  return Rows(rows.release());
}

std::string quote_identifier(std::string_view name) { return quote_sql_identifier(name, '"'); }


std::optional<uint64_t> parse_lsn(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size()) return std::nullopt;
  uint32_t hi = 0, lo = 0;
  auto a = std::from_chars(text.data(), text.data() + slash, hi, 16);
  auto b = std::from_chars(text.data() + slash + 1, text.data() + text.size(), lo, 16);
  if (a.ec != std::errc() || a.ptr != text.data() + slash || b.ec != std::errc() ||
      b.ptr != text.data() + text.size()) {
    return std::nullopt;
  }
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

}  // namespace ghostwatch::pg
