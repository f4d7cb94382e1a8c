// Agent: `ghostwatch run`. Owns the running probes and reconcilers, the metrics, the live
// status and the HTTP endpoint, and applies a new config without a restart (SIGHUP or
// POST /-/reload): probes whose config is unchanged keep running untouched, changed ones
// restart, removed ones stop (their series leave /metrics), new ones start. An invalid config is
// refused and the agent goes on with the old one.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include "agent/config.h"
#include "agent/reload_queue.h"
#include "agent/web_config.h"
#include "common/clock.h"
#include "exporters/fanout_sink.h"
#include "exporters/http_server.h"
#include "exporters/live_status.h"
#include "exporters/prometheus_sink.h"

namespace ghostwatch {

// Command-line settings that override the config file's, at start and at every reload.
struct RunOptions {
  std::string config_path;
  std::optional<std::string> listen, web_config, log_level, log_format;
  bool live = false;  // print the live table on stdout every second
};

class Agent {
 public:
  // Loads the config and web config; throws ConfigError (or std::runtime_error) when invalid.
  explicit Agent(RunOptions options);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Serves HTTP, runs every probe and applies reload requests until `stop`. Returns the exit
  // code: 0, or 3 when the HTTP endpoint cannot be served.
  int run(std::stop_token stop, ReloadQueue& reloads);

  struct ReloadOutcome {
    bool ok = false;
    std::string message;  // what changed, or why the config was refused (redacted)
  };
  // Re-reads the config file and applies it. Thread-safe; reloads never overlap.
  ReloadOutcome reload();

 private:
  struct RunningProbe;
  struct RunningReconciler;
  struct Loaded {
    Config config;
    WebConfig web;
  };

  Loaded load() const;
  void apply_logging(const Config& config) const;
  void apply_web_tls(const WebConfig& web);
  std::string apply(Loaded next);  // returns a summary of what changed
  void stop_all();
  void install_routes();
  void live_view(std::stop_token stop, std::stop_source& agent_stop);

  const RunOptions options_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  SteadyClock clock_;
  PrometheusSink prometheus_;
  LiveStatus live_;
  FanoutSink sink_;
  HttpServer http_;

  std::unique_ptr<Loaded> initial_;  // loaded by the constructor, applied by run()
  std::mutex reload_mu_;  // serializes reloads; guards the running sets
  // Fixed for the process: a changed agent.listen, or TLS turned on or off, takes effect at a
  // restart; the certificate and key are re-read at each reload.
  std::string listen_;
  std::optional<TlsFiles> tls_;
  std::map<std::string, std::unique_ptr<RunningProbe>> probes_;
  std::map<std::string, std::unique_ptr<RunningReconciler>> reconcilers_;

  mutable std::mutex view_mu_;  // guards what HTTP handlers read
  std::string rendered_config_;
  std::string agent_id_;
  std::shared_ptr<const WebAccess> access_;
};

}  // namespace ghostwatch
