#include "agent/agent.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "agent/freshness.h"
#include "agent/runner.h"
#include "agent/terminal.h"
#include "common/interruptible.h"
#include "common/log.h"
#include "common/redact.h"
#include "exporters/landing_page.h"
#include "probes/discovery/discovery.h"

namespace ghostwatch {

struct Agent::RunningProbe {
  ProbeConfig config;
  std::string agent_id;
  std::unique_ptr<CanaryBackend> backend;
  std::unique_ptr<ReplicationProbe> probe;
  std::jthread thread;
  std::unique_ptr<discovery::ProbeDiscovery> discovery;  // null without a discovery: section
  std::jthread discovery_thread;  // last: stopped and joined first, before the probe it changes
  void request_stop() {
    discovery_thread.request_stop();
    thread.request_stop();
  }
};

struct Agent::RunningReconciler {
  ReconcileConfig config;
  std::shared_ptr<ReconcileSink> sink;
  std::jthread thread;
  void request_stop() { thread.request_stop(); }
};

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const char* reconcile_target(const ReconcileConfig& r) {
  return r.cache.kind == CacheTargetConfig::Kind::redis ? "redis" : "memcached";
}

// Stops every entry's threads at once, then joins them as the entries go.
template <class Map>
void stop_entries(Map& running, const std::vector<std::string>& names) {
  for (const std::string& name : names) running.at(name)->request_stop();
  for (const std::string& name : names) running.erase(name);
}

// A restart whose only cause is certificates, keys or CAs that changed behind the same paths.
template <class Config>
void log_tls_rotation(const std::string& what, const Config& running, Config next) {
  if (next.tls_files_digest == running.tls_files_digest) return;
  next.tls_files_digest = running.tls_files_digest;
  if (next == running) log::info(what + ": its TLS files changed; restarting it so that every connection uses them");
}

HttpResponse text(int status, std::string body) { return {status, "text/plain; charset=utf-8", std::move(body), {}}; }

}  // namespace

Agent::Agent(RunOptions options) : options_(std::move(options)), sink_({&prometheus_, &live_}) {
  initial_ = std::make_unique<Loaded>(load());
  apply_logging(initial_->config);
  tls_ = initial_->web.tls;
  listen_ = initial_->config.agent.listen;  // the probes start in run()
  access_ = std::make_shared<const WebAccess>(initial_->web);
  rendered_config_ = render_config(initial_->config);
  install_routes();
}

Agent::~Agent() { stop_all(); }

Agent::Loaded Agent::load() const {
  Loaded l{load_config(options_.config_path), {}};
  AgentConfig& a = l.config.agent;
  if (options_.listen) a.listen = *options_.listen;
  if (options_.web_config) a.web_config = *options_.web_config;
  if (options_.log_level) a.log_level = *options_.log_level;
  if (options_.log_format) a.log_format = *options_.log_format;
  log::Level level;
  if (!log::parse_level(a.log_level, level)) throw ConfigError("--log-level: expected debug, info, warn or error");
  log::Format format;
  if (!log::parse_format(a.log_format, format)) throw ConfigError("--log-format: expected logfmt or json");
  if (!a.web_config.empty()) l.web = load_web_config(a.web_config);
  return l;
}

// The certificate and key are re-read at every reload (a rotated certificate keeps its path);
// turning TLS on or off, or its minimum version, takes a restart.
void Agent::apply_web_tls(const WebConfig& web) {
  if (!tls_ || !web.tls || web.tls->min_tls13 != tls_->min_tls13) {
    if (web.tls != tls_) {
      log::warn("the web config's TLS settings changed: turning TLS on or off or changing its min_version takes "
                "effect at the next restart (users and unauthenticated paths are applied now)");
    }
    return;
  }
  std::string error;
  const bool changed = http_.reload_tls(*web.tls, error);
  if (!error.empty()) {
    log::error("the agent's TLS certificate was not re-read, still serving the previous one: " + error);
    return;
  }
  if (changed) log::info("the agent's TLS certificate was re-read from " + web.tls->cert_file + ": new connections get it");
}

void Agent::apply_logging(const Config& c) const {
  log::Level level = log::Level::info;
  log::parse_level(c.agent.log_level, level);
  log::set_level(level);
  log::Format format = log::Format::logfmt;
  log::parse_format(c.agent.log_format, format);
  log::set_format(format);
}

std::string Agent::apply(Loaded next) {
  const Config& c = next.config;
  if (c.agent.listen != listen_) {
    log::warn("agent.listen changed from " + listen_ + " to " + c.agent.listen +
              ": it takes effect at the next restart; still serving on " + listen_);
  }
  apply_web_tls(next.web);
  apply_logging(c);
  for (const std::string& warning : tls_warnings(c)) log::warn(warning);

  int unchanged = 0, restarted = 0, started = 0, stopped = 0;
  std::vector<std::string> going;
  for (const auto& entry : probes_) {
    const std::string& name = entry.first;
    const RunningProbe& running = *entry.second;
    auto it = std::find_if(c.probes.begin(), c.probes.end(), [&name](const ProbeConfig& p) { return p.name == name; });
    if (it != c.probes.end() && *it == running.config && c.agent.id == running.agent_id) {
      ++unchanged;
      continue;
    }
    if (it != c.probes.end()) log_tls_rotation("probe " + name, running.config, *it);
    going.push_back(name);
    (it == c.probes.end() ? stopped : restarted) += 1;
  }
  stop_entries(probes_, going);
  going.clear();
  for (const auto& entry : reconcilers_) {
    const std::string& name = entry.first;
    auto it = std::find_if(c.reconcilers.begin(), c.reconcilers.end(),
                           [&name](const ReconcileConfig& r) { return r.name == name; });
    if (it != c.reconcilers.end() && *it == entry.second->config) {
      ++unchanged;
      continue;
    }
    if (it != c.reconcilers.end()) log_tls_rotation("reconciler " + name, entry.second->config, *it);
    going.push_back(name);
    (it == c.reconcilers.end() ? stopped : restarted) += 1;
  }
  stop_entries(reconcilers_, going);

  for (const ProbeConfig& p : c.probes) {
    if (probes_.count(p.name)) continue;
    auto r = std::make_unique<RunningProbe>();
    r->config = p;
    r->agent_id = c.agent.id;
    r->backend = make_backend(p, c.agent.id);
    r->probe = make_probe(p, c.agent.id, *r->backend, sink_, clock_);
    r->thread = std::jthread([probe = r->probe.get()](std::stop_token stop) { probe->run(stop); });
    r->discovery = discovery::make_discovery(p, *r->probe);
    if (r->discovery) {
      r->discovery_thread = std::jthread([d = r->discovery.get()](std::stop_token stop) { d->run(stop); });
    }
    probes_[p.name] = std::move(r);
    ++started;
  }
  for (const ReconcileConfig& rc : c.reconcilers) {
    if (reconcilers_.count(rc.name)) continue;
    auto r = std::make_unique<RunningReconciler>();
    r->config = rc;
    r->sink = sink_.reconcile(rc.name, reconcile_target(rc));
    r->thread = std::jthread([r = r.get()](std::stop_token stop) { run_reconciler(r->config, *r->sink, stop); });
    reconcilers_[rc.name] = std::move(r);
    ++started;
  }
  started -= restarted;

  {
    std::lock_guard lock(view_mu_);
    rendered_config_ = render_config(c);
    access_ = std::make_shared<const WebAccess>(next.web);
    agent_id_ = c.agent.id;
  }
  prometheus_.config_applied(true, unix_now());
  return std::to_string(unchanged) + " unchanged, " + std::to_string(restarted) + " restarted, " +
         std::to_string(started) + " started, " + std::to_string(stopped) + " stopped";
}

Agent::ReloadOutcome Agent::reload() {
  std::lock_guard lock(reload_mu_);
  Loaded next;
  try {
    next = load();
  } catch (const std::exception& e) {
    const std::string why = scrub(e.what());
    log::error("config reload refused, still running on the previous config: " + why);
    prometheus_.config_applied(false, 0);
    return {false, why};
  }
  const std::string summary = apply(std::move(next));
  log::info("config reloaded: " + summary);
  return {true, summary};
}

void Agent::stop_all() {
  std::lock_guard lock(reload_mu_);
  for (auto& [name, r] : probes_) r->request_stop();
  for (auto& [name, r] : reconcilers_) r->request_stop();
  probes_.clear();
  reconcilers_.clear();
}

void Agent::install_routes() {
  http_.set_guard([this](const HttpRequest& request) {
    std::shared_ptr<const WebAccess> access;
    {
      std::lock_guard lock(view_mu_);
      access = access_;
    }
    return access->refuse(request);
  });
  http_.route("/metrics", {"GET"}, [this](const HttpRequest&) {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", prometheus_.render(), {}};
  });
  http_.route("/healthz", {"GET"}, [](const HttpRequest&) { return text(200, "ok\n"); });
  http_.route("/readyz", {"GET"}, [this](const HttpRequest&) {
    const std::string waiting = not_ready_reasons(live_.snapshot());
    return waiting.empty() ? text(200, "ready\n") : text(503, "not ready:\n" + waiting);
  });
  http_.route("/config", {"GET"}, [this](const HttpRequest&) {
    std::lock_guard lock(view_mu_);
    return text(200, rendered_config_);
  });
  http_.route("/", {"GET"}, [this](const HttpRequest&) {
    std::string id;
    {
      std::lock_guard lock(view_mu_);
      id = agent_id_;
    }
    const AgentInfo info{GHOSTWATCH_VERSION, id,
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count()};
    return HttpResponse{200, "text/html; charset=utf-8", render_landing_page(info, live_.snapshot(true)), {}};
  });
  // Holds the running set's lock for the answer: a reload in progress delays it, never tears a
  // probe down under it.
  http_.route("/v1/freshness", {"GET"}, [this](const HttpRequest& request) {
    std::lock_guard lock(reload_mu_);
    return freshness_response(request.query, [this](const std::string& name) -> ReplicationProbe* {
      auto it = probes_.find(name);
      return it == probes_.end() ? nullptr : it->second->probe.get();
    });
  });
  http_.route("/-/reload", {"POST", "PUT"}, [this](const HttpRequest&) {
    const ReloadOutcome outcome = reload();
    return outcome.ok ? text(200, "config reloaded: " + outcome.message + "\n")
                      : text(500, "config reload refused: " + outcome.message + "\n");
  });
}

void Agent::live_view(std::stop_token stop, std::stop_source& agent_stop) {
  const bool tty = isatty(STDOUT_FILENO) == 1;
  bool warned = false;
  while (sleep_for(stop, std::chrono::seconds(1))) {
    std::string id;
    {
      std::lock_guard lock(view_mu_);
      id = agent_id_;
    }
    const std::string table = "ghostwatch " GHOSTWATCH_VERSION " agent " + id + ", serving " + (tls_ ? "https" : "http") +
                              "://" + listen_ + "/ (lag in ms; - = no canary seen yet)\n\n" +
                              render_console(live_.snapshot());
    // On a terminal: home the cursor and clear to the end, so the table redraws in place.
    if (write_all(STDOUT_FILENO, tty ? "\x1b[H\x1b[J" + table : table + "\n")) continue;
    const int error = errno;
    if (error != EIO && error != EPIPE) {  // a full disk, say: this frame is lost, the next may pass
      if (!warned) log::warn(std::string("the live view cannot write its table: ") + std::strerror(error));
      warned = true;
      continue;
    }
    // Nobody is left to read the view (a terminal that hung up, a pipe whose reader quit): a
    // live view is run by hand, so the agent stops rather than run on unseen.
    log::info(std::string("the live view's ") + (tty ? "terminal" : "output") + " is gone (" + std::strerror(error) +
              "), stopping");
    agent_stop.request_stop();
    return;
  }
}

int Agent::run(std::stop_token stop, ReloadQueue& reloads) {
  const std::string scheme = tls_ ? "https" : "http";
  try {
    http_.start(listen_, tls_);
  } catch (const std::exception& e) {
    log::error("cannot serve /metrics on " + listen_ + ": " + e.what());
    return 3;
  }
  {
    std::lock_guard lock(reload_mu_);
    const std::size_t probes = initial_->config.probes.size() + initial_->config.reconcilers.size();
    apply(std::move(*initial_));
    initial_.reset();
    log::info("ghostwatch " GHOSTWATCH_VERSION " agent " + agent_id_ + ": " + std::to_string(probes) +
              " probe(s); serving " + scheme + "://" + listen_ + "/ (metrics on /metrics)");
  }
  std::jthread reloader([this, &reloads](std::stop_token st) {
    while (reloads.take(st)) reload();
  });
  // Stopped by a signal, or by the live view when its reader is gone.
  std::stop_source stopping;
  std::stop_callback forward(stop, [&stopping] { stopping.request_stop(); });
  std::jthread live;
  if (options_.live) live = std::jthread([this, &stopping](std::stop_token st) { live_view(st, stopping); });
  while (sleep_for(stopping.get_token(), std::chrono::hours(1))) {
  }
  reloader = {};
  live = {};
  http_.stop();  // first: no reload request may start probes again
  stop_all();
  log::info("stopped");
  return 0;
}

}  // namespace ghostwatch
