#include "agent/cli.h"

#include <chrono>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <curl/curl.h>
#include <unistd.h>

#include <cmath>
#include <sstream>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/init.h"
#include "agent/reload_queue.h"
#include "agent/web_config.h"
#include "agent/duration.h"
#include "agent/freshness.h"
#include "agent/runner.h"
#include "agent/signals.h"
#include "agent/slo.h"
#include "agent/terminal.h"
#include "common/interruptible.h"
#include "common/log.h"
#include "exporters/report.h"

namespace po = boost::program_options;

namespace ghostwatch {
namespace {

constexpr int kExitProblem = 1;
constexpr int kExitUsage = 2;
constexpr int kExitStartup = 3;

constexpr const char* kUsage =
    "usage: ghostwatch <command> [options]\n"
    "\n"
    "Measures how long a write on a database primary takes to become visible on each replica,\n"
    "on the agent's own monotonic clock.\n"
    "\n"
    "commands:\n"
    "  run            run the agent: probe continuously and serve Prometheus metrics\n"
    "  probe          run the probes once and print a report (table or JSON)\n"
    "  reconcile      sweep the reconcile probes once and list cache entries inconsistent with the DB\n"
    "  check-config   validate a config file and print the effective config, secrets redacted\n"
    "  init           print (or apply) the SQL that sets up each probe's canary table and least-privilege roles\n"
    "  rules          print the Prometheus rules (recording rules, burn-rate alerts) of the config's staleness SLOs\n"
    "  wait           wait until a probe's replicas have replayed a position (e.g. after a migration)\n"
    "  version        print the version\n"
    "\n"
    "Run 'ghostwatch <command> --help' for a command's options.\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses a subcommand's options; returns nullopt when --help was printed.
std::optional<po::variables_map> parse(const std::string& command, const po::options_description& desc,
                                       const std::vector<std::string>& args, const char* summary) {
  po::variables_map vm;
  // The config file may also be given as the one positional argument: ghostwatch check-config FILE.
  po::positional_options_description positional;
  if (desc.find_nothrow("config", false)) positional.add("config", 1);
  try {
    po::store(po::command_line_parser(args).options(desc).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: ghostwatch " << command << " [options]\n\n" << summary << "\n\n" << desc;
      return std::nullopt;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(command + ": " + e.what() + " (see 'ghostwatch " + command + " --help')");
  }
  return vm;
}

Config load_and_apply(const std::string& path, const po::variables_map& vm) {
  Config c = load_config(path);
  std::string level = c.agent.log_level, format = c.agent.log_format;
  if (vm.count("log-level")) level = vm["log-level"].as<std::string>();
  if (vm.count("log-format")) format = vm["log-format"].as<std::string>();
  log::Level parsed_level;
  if (!log::parse_level(level, parsed_level)) throw UsageError("--log-level: expected debug, info, warn or error");
  log::Format parsed_format;
  if (!log::parse_format(format, parsed_format)) throw UsageError("--log-format: expected logfmt or json");
  log::set_level(parsed_level);
  log::set_format(parsed_format);
  return c;
}

po::options_description common_options(const char* title) {
  po::options_description d(title);
  d.add_options()("help,h", "show this help")("config,c", po::value<std::string>()->required(),
                                                 "path of the YAML config file")(
      "log-level", po::value<std::string>(), "debug, info, warn or error (overrides agent.log_level)")(
      "log-format", po::value<std::string>(), "logfmt or json: one event per line on stderr (overrides agent.log_format)");
  return d;
}

int cmd_init(const std::vector<std::string>& args) {
  po::options_description d("init options");
  d.add_options()("help,h", "show this help")("config,c", po::value<std::string>()->required(), "path of the YAML config file")(
      "probe,p", po::value<std::string>(), "only this probe")(
      "apply", "run the SQL on the primary instead of printing it (needs --admin-dsn)")(
      "admin-dsn", po::value<std::string>(), "an administrator's DSN on the primary (libpq DSN or mysql:// URI)")(
      "dialect", po::value<std::string>()->default_value("mariadb"),
      "for printing mysql probes: mariadb or mysql (--apply asks the server)")(
      "mysql-user-host", po::value<std::string>()->default_value("%"), "host part of MySQL/MariaDB accounts");
  auto vm = parse("init", d, args,
                  "Prints, for every probe, the SQL that creates the canary schema/database and table and roles with\n"
                  "exactly the rights the agent needs (primary: SELECT, INSERT, UPDATE on the canary table; targets\n"
                  "and read paths: SELECT on it). With --apply --admin-dsn DSN it runs that SQL and sets the roles'\n"
                  "passwords from the config. Exits 1 when applying fails.");
  if (!vm) return 0;
  if (vm->count("apply") != vm->count("admin-dsn")) throw UsageError("init: --apply and --admin-dsn go together");
  const std::string dialect_text = (*vm)["dialect"].as<std::string>();
  if (dialect_text != "mariadb" && dialect_text != "mysql") throw UsageError("init: --dialect must be mariadb or mysql");
  const Config c = load_config((*vm)["config"].as<std::string>());
  const std::string host = (*vm)["mysql-user-host"].as<std::string>();
  bool any = false;
  for (const ProbeConfig& p : c.probes) {
    if (vm->count("probe") && (*vm)["probe"].as<std::string>() != p.name) continue;
    any = true;
    if (vm->count("apply")) {
      const std::string error = apply_init(p, (*vm)["admin-dsn"].as<std::string>(), host);
      if (!error.empty()) {
        std::cerr << "init: probe " << p.name << ": " << error << "\n";
        return kExitProblem;
      }
      std::cerr << "init: probe " << p.name << ": canary table and roles set up on the primary\n";
      continue;
    }
    const SqlDialect dialect = p.kind == ProbeKind::postgres ? SqlDialect::postgres
                               : dialect_text == "mysql"     ? SqlDialect::mysql
                                                             : SqlDialect::mariadb;
    std::cout << render_init(plan_init(p, dialect, host)) << "\n";
  }
  if (!any) throw UsageError("init: the config has no postgres or mysql probe" + std::string(vm->count("probe") ? " of that name" : ""));
  return 0;
}

int cmd_check_config(const std::vector<std::string>& args) {
  po::options_description d("check-config options");
  d.add_options()("help,h", "show this help")("config,c", po::value<std::string>()->required(),
                                                 "path of the YAML config file");
  auto vm = parse("check-config", d, args,
                  "Validates the config (and the web config it names) and prints it with defaults applied and secrets\n"
                  "redacted.");
  if (!vm) return 0;
  Config c = load_config((*vm)["config"].as<std::string>());
  if (!c.agent.web_config.empty()) load_web_config(c.agent.web_config);
  for (const std::string& warning : tls_warnings(c)) std::cerr << "warning: " << warning << "\n";
  std::cout << render_config(c);
  return 0;
}

int cmd_run(const std::vector<std::string>& args) {
  po::options_description d = common_options("run options");
  d.add_options()("live", "print a live per-target table on stdout every second (redrawn in place on a terminal)")(
      "listen", po::value<std::string>(), "host:port to serve on (overrides agent.listen)")(
      "web-config", po::value<std::string>(), "TLS and basic auth file, exporter-toolkit format (overrides agent.web_config)");
  auto vm = parse("run", d, args,
                  "Runs every probe continuously and serves / (status page), /metrics, /healthz, /readyz, /config\n"
                  "and POST /-/reload until SIGINT or SIGTERM. SIGHUP or POST /-/reload re-reads the config file.\n"
                  "With --live, the agent stops when nobody is left to read the view: its terminal hung up (SIGHUP\n"
                  "then stops it) or its pipe's reader quit.");
  if (!vm) return 0;
  RunOptions o;
  o.config_path = (*vm)["config"].as<std::string>();
  auto optional = [&vm](const char* key) {
    return vm->count(key) ? std::optional<std::string>((*vm)[key].as<std::string>()) : std::nullopt;
  };
  o.listen = optional("listen");
  o.web_config = optional("web-config");
  o.log_level = optional("log-level");
  o.log_format = optional("log-format");
  o.live = vm->count("live") > 0;
  std::stop_source stop;
  ReloadQueue reloads;
  // On a terminal, `--live` makes the agent a terminal program: a hangup (the window closed, the
  // ssh session dropped) stops it, as it stops top, rather than leaving it running unseen.
  const bool live_on_terminal = o.live && isatty(STDOUT_FILENO) == 1;
  SignalStop signals(stop, [&reloads, &stop, live_on_terminal] {  // before any other thread starts
    if (live_on_terminal && terminal_hung_up(STDOUT_FILENO)) {
      log::info("received SIGHUP and the live view's terminal is gone, stopping");
      stop.request_stop();
    } else {
      log::info("received SIGHUP, reloading the config");
      reloads.post();
    }
  });
  Agent agent(o);
  return agent.run(stop.get_token(), reloads);
}

nlohmann::json sweep_json(const std::string& name, const reconcile::SweepResult& r) {
  const SweepObservation o = observation_of(r);
  nlohmann::json j = {{"name", name},
                      {"checked", r.checked},
                      {"consistent_ratio", rounded(r.consistent_ratio())},
                      {"counts", {{"stale", o.stale}, {"ahead", o.ahead}, {"orphan", o.orphan}, {"unparseable", r.unparseable}}},
                      {"mismatches", nlohmann::json::array()},
                      {"repaired", r.repaired},
                      {"duration_seconds", rounded(o.seconds)}};
  for (const auto& m : r.mismatches) {
    j["mismatches"].push_back({{"key", m.key},
                               {"kind", reconcile::to_string(m.kind)},
                               {"cache_version", m.cache_version},
                               {"db_version", m.db_version ? nlohmann::json(*m.db_version) : nlohmann::json()}});
  }
  return j;
}

std::string sweep_table(const std::string& name, const reconcile::SweepResult& r) {
  const SweepObservation o = observation_of(r);
  std::ostringstream out;
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.4f%%", r.consistent_ratio() * 100);
  out << "reconcile " << name << ": " << r.checked << " entries checked, " << ratio << " consistent; stale " << o.stale
      << ", ahead " << o.ahead << ", orphan " << o.orphan << ", unparseable " << r.unparseable << " ("
      << format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(r.duration)) << ")\n";
  for (const auto& m : r.mismatches) {
    out << "  " << reconcile::to_string(m.kind) << "  " << m.key << "  cache " << m.cache_version << "  db "
        << (m.db_version ? std::to_string(*m.db_version) : std::string("(no row)")) << "\n";
  }
  for (const auto& key : r.repaired) out << "  deleted " << key << "\n";
  return out.str();
}

int cmd_reconcile(const std::vector<std::string>& args) {
  po::options_description d = common_options("reconcile options");
  d.add_options()("probe,p", po::value<std::string>(), "only this reconcile probe")(
      "output,o", po::value<std::string>()->default_value("table"), "table or json")(
      "limit,n", po::value<long>(), "check at most this many keys per probe")(
      "repair", "after the re-check, delete the stale and orphan entries found (each deletion is logged)");
  auto vm = parse("reconcile", d, args,
                  "Sweeps each reconcile probe once: compares cache entries with their DB rows, re-checks mismatches\n"
                  "after the grace period, lists those that persist. Exits 1 if any persists or a sweep fails.");
  if (!vm) return 0;
  const std::string output = (*vm)["output"].as<std::string>();
  if (output != "table" && output != "json") throw UsageError("reconcile: --output must be table or json");
  std::stop_source stop;
  SignalStop signals(stop);
  Config c = load_and_apply((*vm)["config"].as<std::string>(), *vm);
  reconcile::SweepOptions options;
  options.repair = vm->count("repair") > 0;
  if (vm->count("limit")) options.limit = (*vm)["limit"].as<long>();
  options.progress = [](const std::string& line) { std::cerr << line << "\n" << std::flush; };
  int exit_code = 0;
  bool any = false;
  nlohmann::json json = {{"probes", nlohmann::json::array()}};
  for (const ReconcileConfig& r : c.reconcilers) {
    if (vm->count("probe") && (*vm)["probe"].as<std::string>() != r.name) continue;
    any = true;
    reconcile::Reconciler reconciler(r, reconcile::make_cache_side(r), reconcile::make_db_side(r));
    auto result = reconciler.sweep(options, stop.get_token());
    if (!result) {
      std::cerr << "reconcile " << r.name << ": sweep failed: " << result.error().message << "\n";
      json["probes"].push_back({{"name", r.name}, {"error", result.error().message}});
      exit_code = 1;
      continue;
    }
    if (!result->mismatches.empty()) exit_code = 1;
    if (output == "json") json["probes"].push_back(sweep_json(r.name, result.value()));
    else std::cout << sweep_table(r.name, result.value());
  }
  if (!any) throw UsageError("reconcile: the config has no reconcile probe" + std::string(vm->count("probe") ? " of that name" : ""));
  if (output == "json") std::cout << json.dump(2) << "\n";
  return exit_code;
}

std::map<std::string, ReportProbeOptions> report_options(const Config& c, double wait_budget) {
  std::map<std::string, ReportProbeOptions> out;
  for (const ProbeConfig& p : c.probes) {
    ReportProbeOptions& o = out[p.name];
    o.stale_target = p.stale_target;
    o.position_mode = p.mode == ProbeMode::position;
    o.wait_budget = wait_budget;
    for (const TargetConfig& t : p.targets) {
      if (t.cache) o.caches.insert(t.name);
    }
    for (const ReadDelay& d : p.read_delays.empty() ? default_read_pattern() : p.read_delays) {
      o.read_delays.emplace_back(d.label, to_seconds(d.delay));
    }
  }
  return out;
}

int cmd_probe(const std::vector<std::string>& args) {
  po::options_description d = common_options("probe options");
  d.add_options()("canaries,n", po::value<int>(), "write this many canaries per probe (default 30)")(
      "duration,d", po::value<std::string>(), "write canaries for this long (e.g. 30s)")(
      "output,o", po::value<std::string>()->default_value("table"), "table or json")(
      "wait-budget", po::value<std::string>()->default_value("100ms"),
      "in the strategy comparison: how long a read may wait for a replica that has its write");
  auto vm = parse("probe", d, args,
                  "Runs every probe once: writes canaries, waits until each is seen or timed out on every target,\n"
                  "prints progress on stderr and a report on stdout. Exits 1 if any target timed out or was\n"
                  "unreachable.");
  if (!vm) return 0;
  const std::string output = (*vm)["output"].as<std::string>();
  if (output != "table" && output != "json") throw UsageError("probe: --output must be table or json");
  RunOnceLimits limits;
  if (vm->count("canaries") && vm->count("duration")) throw UsageError("probe: give --canaries or --duration, not both");
  if (vm->count("canaries")) {
    limits.canaries = (*vm)["canaries"].as<int>();
    if (limits.canaries < 1) throw UsageError("probe: --canaries must be at least 1");
  }
  if (vm->count("duration")) {
    auto dur = parse_duration((*vm)["duration"].as<std::string>());
    if (!dur || *dur <= Duration(0)) throw UsageError("probe: --duration: expected e.g. 30s or 2m");
    limits.duration = *dur;
  }
  if (limits.canaries == 0 && limits.duration == Duration(0)) limits.canaries = 30;
  const auto budget = parse_duration((*vm)["wait-budget"].as<std::string>());
  if (!budget || *budget < Duration(0)) throw UsageError("probe: --wait-budget: expected e.g. 100ms");
  const double wait_budget = to_seconds(*budget);

  std::stop_source stop;
  SignalStop signals(stop);
  Config c = load_and_apply((*vm)["config"].as<std::string>(), *vm);
  ReportSink report(report_options(c, wait_budget));
  SteadyClock clock;
  ProbeSet probes(c, report, clock);
  std::jthread progress([&report, tok = stop.get_token()] {
    while (sleep_for(tok, std::chrono::seconds(1))) std::cerr << report.progress() << std::flush;
  });
  probes.run_once(limits, stop.get_token());
  stop.request_stop();
  progress.join();
  const auto summary = report.summarize();
  if (output == "json") std::cout << report_json(summary).dump(2) << "\n";
  else std::cout << report_table(summary);
  return report_exit_code(summary);
}

int cmd_rules(const std::vector<std::string>& args) {
  po::options_description d("rules options");
  d.add_options()("help,h", "show this help")("config,c", po::value<std::string>()->required(),
                                                 "an agent config with slos:, or a file with only slos:");
  auto vm = parse("rules", d, args,
                  "Prints a Prometheus rules file for the staleness SLOs the config declares (slos:): the share of\n"
                  "canaries late or lost over the burn-rate windows and the SLO's period, the error budget left, and\n"
                  "multi-window multi-burn-rate alerts with severity page (14.4x over 1h and 5m, 6x over 6h and 30m)\n"
                  "and ticket (3x over 1d and 2h, 1x over 3d and 6h). Load it in the Prometheus that evaluates the\n"
                  "ghostwatch rules (in a fleet, the central one).");
  if (!vm) return 0;
  const std::string path = (*vm)["config"].as<std::string>();
  std::cout << render_slo_rules(load_slos(path), path);
  return 0;
}

int cmd_wait(const std::vector<std::string>& args) {
  po::options_description d = common_options("wait options");
  d.add_options()("probe,p", po::value<std::string>()->required(), "the postgres or mysql probe whose replicas to wait for")(
      "position", po::value<std::string>()->required(),
      "the primary's position to wait for: an LSN (pg_current_wal_lsn()), a GTID list (@@gtid_binlog_pos) or set "
      "(@@gtid_executed)")(
      "target,t", po::value<std::string>(), "only this replica (default: every replica of the probe)")(
      "timeout", po::value<std::string>()->default_value("30s"), "give up after this long (exit 1)");
  auto vm = parse("wait", d, args,
                  "Polls the probe's replicas (every poll_interval, connecting as the config says) until each has\n"
                  "replayed the position, reading positions only. Exits 0 when all have, 1 on timeout, 2 on bad input.");
  if (!vm) return 0;
  WaitRequest request;
  request.probe = (*vm)["probe"].as<std::string>();
  request.position = (*vm)["position"].as<std::string>();
  if (vm->count("target")) request.target = (*vm)["target"].as<std::string>();
  auto timeout = parse_duration((*vm)["timeout"].as<std::string>());
  if (!timeout || *timeout <= Duration(0)) throw UsageError("wait: --timeout: expected e.g. 2s or 500ms");
  request.timeout = *timeout;
  std::stop_source stop;
  SignalStop signals(stop);
  const Config c = load_and_apply((*vm)["config"].as<std::string>(), *vm);
  return wait_for_position(c, request, stop.get_token());
}

}  // namespace

int cli_main(int argc, char** argv) {
  curl_global_init(CURL_GLOBAL_DEFAULT);  // before any thread: HTTP read paths use libcurl
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? kExitUsage : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "version" || command == "--version") {
      std::cout << "ghostwatch " << GHOSTWATCH_VERSION << "\n";
      return 0;
    }
    if (command == "run") return cmd_run(args);
    if (command == "probe") return cmd_probe(args);
    if (command == "check-config") return cmd_check_config(args);
    if (command == "init") return cmd_init(args);
    if (command == "reconcile") return cmd_reconcile(args);
    if (command == "wait") return cmd_wait(args);
    if (command == "rules") return cmd_rules(args);
    std::cerr << "ghostwatch: unknown command '" << command << "'\n\n" << kUsage;
    return kExitUsage;
  } catch (const ConfigError& e) {
    std::cerr << "ghostwatch: config error: " << e.what() << "\n";
    return kExitUsage;
  } catch (const UsageError& e) {
    std::cerr << "ghostwatch: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "ghostwatch: " << e.what() << "\n";
    return kExitStartup;
  }
}

}  // namespace ghostwatch
