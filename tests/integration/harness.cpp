#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "probes/mysql/mysql_uri.h"

namespace ghostwatch::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

// Waits for the child with a deadline; kills it when the deadline passes.
int wait_child(pid_t pid, Clock::time_point deadline, bool& killed) {
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      killed = true;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

HttpResult raw_request(const std::string& host, int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    if (send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
      char buf[65536];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof buf, 0)) > 0) response.append(buf, static_cast<std::size_t>(n));
    }
  }
  close(fd);
  HttpResult r;
  const auto body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos || response.size() < 12) return r;
  r.status = std::atoi(response.substr(9, 3).c_str());
  r.body = response.substr(body + 4);
  return r;
}

std::string http_get(int port, const std::string& path) {
  HttpResult r = http_request(port, "GET", path);
  return r.status == 200 ? r.body : "";
}

}  // namespace

HttpResult http_request(int port, const std::string& method, const std::string& path, const std::string& extra_headers,
                        const std::string& host) {
  return raw_request(host, port, method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n" + extra_headers +
                               "\r\n");
}

namespace {

// A test process that dies (a crash, ctest's timeout) takes its children along: a leftover agent
// would keep writing canaries and holding ports under the tests that follow.
pid_t fork_dying_with_parent() {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
  }
  return pid;
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds deadline) {
  const std::string out_path = write_temp_file("", ".out"), err_path = write_temp_file("", ".err");
  const pid_t pid = fork_dying_with_parent();
  if (pid == 0) {
    const int out = open(out_path.c_str(), O_WRONLY | O_TRUNC), err = open(err_path.c_str(), O_WRONLY | O_TRUNC);
    dup2(out, 1);
    dup2(err, 2);
    const int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    auto args = c_argv(argv);
    execv(args[0], args.data());
    _exit(127);
  }
  CommandResult r;
  bool killed = false;
  r.exit_code = wait_child(pid, Clock::now() + deadline, killed);
  std::stringstream out, err;
  out << std::ifstream(out_path).rdbuf();
  err << std::ifstream(err_path).rdbuf();
  r.out = out.str();
  r.err = err.str();
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return r;
}

std::string require_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) ADD_FAILURE() << "environment variable " << name << " is not set (source the sandbox env.sh)";
  return v ? v : "";
}

bool sandbox_available() { return std::getenv("GW_PG_PRIMARY_DSN") != nullptr; }

std::string ghostwatch_binary() { return GHOSTWATCH_BINARY; }
std::string sandbox_script() { return std::string(GHOSTWATCH_SOURCE_DIR) + "/scripts/sandbox.sh"; }

std::string write_temp_file(const std::string& text, const std::string& suffix) {
  std::string path = "/tmp/ghostwatch-test-XXXXXX" + suffix;
  const int fd = mkstemps(path.data(), static_cast<int>(suffix.size()));
  if (fd < 0) throw std::runtime_error("mkstemps failed");
  if (!text.empty() && write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    close(fd);
    throw std::runtime_error("write failed");
  }
  close(fd);
  return path;
}

int ChildProcess::threads() const {
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv) : log_path_(write_temp_file("", ".log")) {
  pid_ = fork_dying_with_parent();
  if (pid_ == 0) {
    const int log = open(log_path_.c_str(), O_WRONLY | O_TRUNC);
    dup2(log, 1);
    dup2(log, 2);
    auto args = c_argv(argv);
    execv(args[0], args.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) terminate(std::chrono::seconds(5));
  std::remove(log_path_.c_str());
}

bool ChildProcess::alive() { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

void ChildProcess::signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

std::optional<int> ChildProcess::terminate(std::chrono::milliseconds deadline) {
  if (pid_ <= 0) return std::nullopt;
  kill(pid_, SIGTERM);
  bool killed = false;
  const int code = wait_child(pid_, Clock::now() + deadline, killed);
  pid_ = -1;
  if (killed) return std::nullopt;
  return code;
}

std::string ChildProcess::log() const {
  std::stringstream s;
  s << std::ifstream(log_path_).rdbuf();
  return s.str();
}

namespace {
std::vector<std::string> run_argv(const std::string& config_path, int port, const std::vector<std::string>& extra) {
  std::vector<std::string> argv{ghostwatch_binary(), "run", "--config", config_path, "--listen",
                                "127.0.0.1:" + std::to_string(port)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}
}  // namespace

Agent::Agent(const std::string& config_path, int port, const std::vector<std::string>& extra_args)
    : ChildProcess(run_argv(config_path, port, extra_args)), port_(port) {
  wait_for([this] { return !metrics().empty() || !alive(); }, std::chrono::seconds(10));
}

namespace {
std::vector<std::string> wrapped(std::vector<std::string> wrapper, const std::vector<std::string>& argv) {
  wrapper.insert(wrapper.end(), argv.begin(), argv.end());
  return wrapper;
}
}  // namespace

Agent::Agent(const std::vector<std::string>& wrapper, const std::string& config_path, int port)
    : ChildProcess(wrapped(wrapper, run_argv(config_path, port, {}))), port_(port) {
  wait_for([this] { return !metrics().empty() || !alive(); }, std::chrono::seconds(10));
}

std::string Agent::metrics() const { return http_get(port_, "/metrics"); }

std::optional<double> metric_value(const std::string& metrics, const std::string& series) {
  std::istringstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
  const auto end = Clock::now() + deadline;
  while (Clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

void record_figure(const std::string& line) {
  std::printf("%s\n", line.c_str());
  if (const char* path = std::getenv("GHOSTWATCH_FIGURES_FILE")) std::ofstream(path, std::ios::app) << line << "\n";
}

bool try_admin_query(const std::string& dsn, const std::string& sql, std::string* out, std::string* error) {
  const std::string full = dsn + " connect_timeout=5";
  PGconn* conn = PQconnectdb(full.c_str());
  bool ok = PQstatus(conn) == CONNECTION_OK;
  if (!ok) *error = PQerrorMessage(conn);
  if (ok) {
    PGresult* res = PQexec(conn, sql.c_str());
    ok = PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) *error = PQresultErrorMessage(res);
    if (ok && out && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) *out = PQgetvalue(res, 0, 0);
    PQclear(res);
  }
  PQfinish(conn);
  return ok;
}

std::string admin_query(const std::string& dsn, const std::string& sql) {
  const std::string full = dsn + " connect_timeout=5";
  PGconn* conn = PQconnectdb(full.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    ADD_FAILURE() << "admin connection failed: " << PQerrorMessage(conn);
    PQfinish(conn);
    return "";
  }
  PGresult* res = PQexec(conn, sql.c_str());
  std::string out;
  if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) out = PQgetvalue(res, 0, 0);
  else if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
    ADD_FAILURE() << "admin query failed: " << sql << ": " << PQresultErrorMessage(res);
  }
  PQclear(res);
  PQfinish(conn);
  return out;
}

std::vector<std::string> maria_admin_rows(const std::string& uri_text, const std::string& sql) {
  std::vector<std::string> out;
  auto uri = mysql::parse_uri(uri_text);
  if (!uri) {
    ADD_FAILURE() << "bad admin URI: " << uri.error().message;
    return out;
  }
  MYSQL* m = mysql_init(nullptr);
  const unsigned timeout = 5;
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &timeout);
  if (!mysql_real_connect(m, uri->host.c_str(), uri->user.c_str(), uri->password ? uri->password->c_str() : nullptr,
                          nullptr, uri->port, nullptr, 0)) {
    ADD_FAILURE() << "admin connection failed: " << mysql_error(m);
  } else if (mysql_query(m, sql.c_str()) != 0) {
    ADD_FAILURE() << "admin query failed: " << sql << ": " << mysql_error(m);
  } else if (MYSQL_RES* res = mysql_store_result(m)) {
    const unsigned columns = mysql_num_fields(res);
    while (MYSQL_ROW row = mysql_fetch_row(res)) {
      std::string line;
      for (unsigned c = 0; c < columns; ++c) line += (c ? "\t" : "") + std::string(row[c] ? row[c] : "NULL");
      out.push_back(line);
    }
    mysql_free_result(res);
  }
  mysql_close(m);
  return out;
}

std::string maria_admin_query(const std::string& uri_text, const std::string& sql) {
  const auto rows = maria_admin_rows(uri_text, sql);
  if (rows.empty()) return "";
  return rows.front().substr(0, rows.front().find('\t'));
}

}  // namespace ghostwatch::testing
