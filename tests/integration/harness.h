// Helpers for integration tests: spawning the ghostwatch binary, scraping /metrics, talking
// to the sandbox's servers as their admin, and waiting for conditions with a deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ghostwatch::testing {

struct CommandResult {
  int exit_code = -1;  // -1: killed after the deadline
  std::string out, err;
};

// Runs a command with a deadline; its stdout and stderr are captured.
CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds deadline);

// The environment variable's value; fails the current test when it is unset.
std::string require_env(const char* name);

// Skips (or, with GHOSTWATCH_REQUIRE_SANDBOX=1, fails) when the sandbox env is not loaded.
bool sandbox_available();

std::string ghostwatch_binary();
std::string sandbox_script();

// Writes `text` to a fresh temporary file and returns its path.
std::string write_temp_file(const std::string& text, const std::string& suffix);

int free_port();

// A child process with stdout and stderr in a log file; stopped with SIGTERM on destruction.
class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  bool alive();
  void signal(int sig);
  pid_t pid() const { return pid_; }
  int threads() const;  // -1 once it is gone
  // Sends SIGTERM and waits; returns the exit code, or nullopt if it outlived `deadline`.
  std::optional<int> terminate(std::chrono::milliseconds deadline);
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

struct HttpResult {
  int status = 0;  // 0: no HTTP answer
  std::string body;
};

// One plain-HTTP request to 127.0.0.1:port (or `host`:port), with a 2 s timeout.
HttpResult http_request(int port, const std::string& method, const std::string& path,
                        const std::string& extra_headers = "", const std::string& host = "127.0.0.1");

// A `ghostwatch run` child process serving /metrics on 127.0.0.1:port.
class Agent : public ChildProcess {
 public:
  Agent(const std::string& config_path, int port, const std::vector<std::string>& extra_args = {});
  // Run through `wrapper` (a command that ends by running its arguments, such as unshare).
  Agent(const std::vector<std::string>& wrapper, const std::string& config_path, int port);
  std::string metrics() const;  // "" when /metrics does not answer
  int port() const { return port_; }

 private:
  int port_;
};

// One sample's value from the Prometheus text format: `series` is the full series name with
// labels as exposed, e.g. ghostwatch_target_up{probe="pg",target="replica-1"}.
std::optional<double> metric_value(const std::string& metrics, const std::string& series);

// Polls `condition` every 50 ms until it holds or the deadline passes.
bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds deadline);

// Prints a measured figure and appends it to $GHOSTWATCH_FIGURES_FILE (test.sh shows them).
void record_figure(const std::string& line);

// Runs SQL on a server as the sandbox admin (blocking). Returns the first cell or "".
std::string admin_query(const std::string& dsn, const std::string& sql);  // PostgreSQL DSN
// The same without failing the test: false (and `error` set) when the query failed.
bool try_admin_query(const std::string& dsn, const std::string& sql, std::string* out, std::string* error);
std::string maria_admin_query(const std::string& uri, const std::string& sql);  // mysql:// URI
// Every row of the result, its columns joined by '\t'.
std::vector<std::string> maria_admin_rows(const std::string& uri, const std::string& sql);

}  // namespace ghostwatch::testing
