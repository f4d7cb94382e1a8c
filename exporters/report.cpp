#include "exporters/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "common/percentiles.h"
#include "common/wilson.h"

namespace ghostwatch {

struct TargetState {
  std::mutex mu;
  std::string name;
  std::vector<double> lags, windows, reported, received, received_windows;
  std::vector<int64_t> seqs;  // of the lags, for the strategies (which pair canaries across replicas)
  int timeouts = 0, errors = 0, polls = 0, ok_polls = 0;
  bool last_ok = false;
  std::string last_error;
  std::optional<bool> is_primary;
  std::string source = "static", discovered_role;
};

struct ReadPathState {
  std::mutex mu;
  std::string name;
  std::vector<std::string> delays;
  std::vector<DelaySummary> counts;  // by delay index
  std::vector<double> offsets;
  std::string last_error;
  long writes_ok = 0, write_errors = 0;  // a session path's own marker writes
  std::vector<double> write_latencies;
};

struct ReportSink::ProbeState {
  std::mutex mu;
  std::string name, kind;
  int writes_ok = 0, write_errors = 0;
  std::vector<double> write_latencies;
  std::string last_write_error;
  std::vector<std::shared_ptr<TargetState>> targets;
  std::vector<std::shared_ptr<ReadPathState>> read_paths;
};

namespace {

class ReportTarget final : public TargetSink {
 public:
  explicit ReportTarget(std::shared_ptr<TargetState> s) : s_(std::move(s)) {}
  void visible(const VisibilitySample& sample) override {
    std::lock_guard lock(s_->mu);
    s_->lags.push_back(to_seconds(sample.lag));
    s_->seqs.push_back(sample.seq);
    s_->windows.push_back(to_seconds(sample.resolution));
  }
  void received(const VisibilitySample& sample) override {
    std::lock_guard lock(s_->mu);
    s_->received.push_back(to_seconds(sample.lag));
    s_->received_windows.push_back(to_seconds(sample.resolution));
  }
  void timed_out(int count) override {
    std::lock_guard lock(s_->mu);
    s_->timeouts += count;
  }
  void pending(Duration) override {}
  void polled(bool ok, const std::string& error) override {
    std::lock_guard lock(s_->mu);
    ++s_->polls;
    s_->last_ok = ok;
    if (ok) ++s_->ok_polls;
    else {
      ++s_->errors;
      s_->last_error = error;
    }
  }
  void position_lag(PositionUnit, std::optional<double>) override {}
  void reported_lag(std::optional<double> seconds) override {
    std::lock_guard lock(s_->mu);
    if (seconds) s_->reported.push_back(*seconds);
  }
  void role(bool is_primary) override {
    std::lock_guard lock(s_->mu);
    s_->is_primary = is_primary;
  }
  void origin(const std::string& source, const std::string& role) override {
    std::lock_guard lock(s_->mu);
    s_->source = source;
    s_->discovered_role = role;
  }
  void discovered_role(const std::string& role) override {
    std::lock_guard lock(s_->mu);
    s_->discovered_role = role;
  }

 private:
  std::shared_ptr<TargetState> s_;
};

class ReportReadPath final : public ReadPathSink {
 public:
  explicit ReportReadPath(std::shared_ptr<ReadPathState> s) : s_(std::move(s)) {}
  void read(std::size_t d, ReadOutcome outcome, Duration, const std::string& error) override {
    std::lock_guard lock(s_->mu);
    DelaySummary& c = s_->counts.at(d);
    ++c.reads;
    if (outcome == ReadOutcome::stale) ++c.stale;
    if (outcome == ReadOutcome::error) {
      ++c.errors;
      s_->last_error = error;
    }
  }
  void skipped(std::size_t d) override {
    std::lock_guard lock(s_->mu);
    ++s_->counts.at(d).skipped;
  }
  void schedule_offset(Duration offset) override {
    std::lock_guard lock(s_->mu);
    s_->offsets.push_back(to_seconds(offset));
  }
  void written(bool ok, Duration latency, const std::string& error) override {
    std::lock_guard lock(s_->mu);
    if (!ok) {
      ++s_->write_errors;
      s_->last_error = error;
      return;
    }
    ++s_->writes_ok;
    s_->write_latencies.push_back(to_seconds(latency));
  }

 private:
  std::shared_ptr<ReadPathState> s_;
};

class ReportProbe final : public ProbeSink {
 public:
  explicit ReportProbe(std::shared_ptr<ReportSink::ProbeState> s) : s_(std::move(s)) {}
  void canary_written(bool ok, Duration latency, const std::string& error) override {
    std::lock_guard lock(s_->mu);
    if (ok) {
      ++s_->writes_ok;
      s_->write_latencies.push_back(to_seconds(latency));
    } else {
      ++s_->write_errors;
      s_->last_write_error = error;
    }
  }
  std::shared_ptr<TargetSink> target(const std::string& name) override {
    auto t = std::make_shared<TargetState>();
    t->name = name;
    std::lock_guard lock(s_->mu);
    s_->targets.push_back(t);
    return std::make_shared<ReportTarget>(t);
  }
  std::shared_ptr<ReadPathSink> read_path(const std::string& name, const std::vector<std::string>& delays) override {
    auto r = std::make_shared<ReadPathState>();
    r->name = name;
    r->delays = delays;
    for (const std::string& d : delays) r->counts.push_back(DelaySummary{d});
    std::lock_guard lock(s_->mu);
    s_->read_paths.push_back(r);
    return std::make_shared<ReportReadPath>(r);
  }

 private:
  std::shared_ptr<ReportSink::ProbeState> s_;
};

TargetSummary summarize_target(TargetState& t) {
  std::lock_guard lock(t.mu);
  TargetSummary s;
  s.name = t.name;
  s.samples = static_cast<int>(t.lags.size());
  s.p50 = percentile(t.lags, 0.50);
  s.p90 = percentile(t.lags, 0.90);
  s.p99 = percentile(t.lags, 0.99);
  s.max = t.lags.empty() ? 0 : *std::max_element(t.lags.begin(), t.lags.end());
  s.timeouts = t.timeouts;
  s.errors = t.errors;
  s.polls = t.polls;
  s.resolution = percentile(t.windows, 0.50);
  s.reachable = t.ok_polls > 0 && t.last_ok;
  s.last_error = t.last_error;
  s.is_primary = t.is_primary;
  s.source = t.source;
  s.role = shown_role(t.is_primary, t.discovered_role);
  s.reported_samples = static_cast<int>(t.reported.size());
  s.reported_p50 = percentile(t.reported, 0.5);
  s.reported_max = t.reported.empty() ? 0 : *std::max_element(t.reported.begin(), t.reported.end());
  s.received_samples = static_cast<int>(t.received.size());
  s.received_p50 = percentile(t.received, 0.5);
  s.received_p99 = percentile(t.received, 0.99);
  s.received_resolution = percentile(t.received_windows, 0.5);
  return s;
}

ReadPathSummary summarize_read_path(ReadPathState& r, double stale_target) {
  std::lock_guard lock(r.mu);
  ReadPathSummary s;
  s.name = r.name;
  for (DelaySummary d : r.counts) {
    const long answered = d.reads - d.errors;
    d.stale_ratio = answered > 0 ? static_cast<double>(d.stale) / static_cast<double>(answered) : 0.0;
    std::tie(d.ci_low, d.ci_high) = wilson_interval(d.stale, answered);
    s.answered = s.answered || answered > 0;
    s.delays.push_back(d);
  }
  // The shortest delay from which on every (answered) delay meets the target.
  for (auto it = s.delays.rbegin(); it != s.delays.rend(); ++it) {
    if (it->reads - it->errors <= 0 || it->stale_ratio > stale_target) break;
    s.recommended = it->delay;
  }
  s.last_error = r.last_error;
  s.offset_p50 = percentile(r.offsets, 0.5);
  s.offset_p99 = percentile(r.offsets, 0.99);
  s.offset_max = r.offsets.empty() ? 0 : *std::max_element(r.offsets.begin(), r.offsets.end());
  s.session = r.writes_ok + r.write_errors > 0;
  s.writes_ok = r.writes_ok;
  s.write_errors = r.write_errors;
  s.write_p50 = percentile(r.write_latencies, 0.5);
  s.write_p99 = percentile(r.write_latencies, 0.99);
  return s;
}

std::string fixed1(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", value);
  return buf;
}

std::string ms(double seconds) { return fixed1(seconds * 1000); }

}  // namespace

double rounded(double value) { return std::round(value * 1e6) / 1e6; }

nlohmann::json rounded_or_null(const std::optional<double>& value) {
  return value ? nlohmann::json(rounded(*value)) : nlohmann::json();
}

std::shared_ptr<ProbeSink> ReportSink::probe(const std::string& name, const std::string& kind) {
  auto state = std::make_shared<ProbeState>();
  state->name = name;
  state->kind = kind;
  std::lock_guard lock(mu_);
  probes_.push_back(state);
  return std::make_shared<ReportProbe>(state);
}

namespace {

// Each canary's lag on each replica (caches are not read from), as the strategies need them.
StrategyInput strategy_input(ReportSink::ProbeState& p, const ReportProbeOptions& options) {
  StrategyInput in;
  in.delays = options.read_delays;
  in.stale_target = options.stale_target;
  in.budget = options.wait_budget;
  for (const auto& t : p.targets) {
    if (options.caches.count(t->name)) continue;
    std::lock_guard lock(t->mu);
    in.replicas.push_back(t->name);
    for (std::size_t i = 0; i < t->lags.size(); ++i) in.lags[t->seqs[i]][t->name] = t->lags[i];
  }
  return in;
}

}  // namespace

std::vector<ProbeSummary> ReportSink::summarize() const {
  std::lock_guard lock(mu_);
  std::vector<ProbeSummary> out;
  for (const auto& p : probes_) {
    std::lock_guard plock(p->mu);
    ProbeSummary s;
    s.name = p->name;
    s.kind = p->kind;
    s.writes_ok = p->writes_ok;
    s.write_errors = p->write_errors;
    s.write_p50 = percentile(p->write_latencies, 0.5);
    s.write_p99 = percentile(p->write_latencies, 0.99);
    s.last_write_error = p->last_write_error;
    for (const auto& t : p->targets) s.targets.push_back(summarize_target(*t));
    auto found = options_.find(p->name);
    const ReportProbeOptions options = found != options_.end() ? found->second : ReportProbeOptions{};
    s.stale_target = options.stale_target;
    s.position_mode = options.position_mode;
    s.read_delays = options.read_delays;
    s.wait_budget = options.wait_budget;
    s.strategies = compare_strategies(strategy_input(*p, options));
    for (const auto& r : p->read_paths) s.read_paths.push_back(summarize_read_path(*r, s.stale_target));
    out.push_back(std::move(s));
  }
  return out;
}

std::string ReportSink::progress() const {
  std::ostringstream out;
  for (const ProbeSummary& p : summarize()) {
    out << p.name << ": " << p.writes_ok << " written";
    if (p.write_errors) out << ", " << p.write_errors << " write errors";
    for (const TargetSummary& t : p.targets) {
      out << "; " << t.name << " " << t.samples << " seen";
      if (t.timeouts) out << " " << t.timeouts << " timed out";
      if (t.errors) out << " " << t.errors << " poll errors";
    }
    out << '\n';
  }
  return out.str();
}

int report_exit_code(const std::vector<ProbeSummary>& probes) {
  for (const ProbeSummary& p : probes) {
    if (p.writes_ok == 0 && !p.position_mode) return 1;
    for (const TargetSummary& t : p.targets) {
      if (t.timeouts > 0 || !t.reachable) return 1;
    }
    for (const ReadPathSummary& r : p.read_paths) {
      long reads = 0, errors = 0;
      for (const DelaySummary& d : r.delays) {
        reads += d.reads;
        errors += d.errors;
      }
      if (reads > 0 && errors == reads) return 1;  // the path never answered
    }
  }
  return 0;
}

namespace {

// The replication lag p99 of the probe's slowest target: what a read-from-primary window has
// to cover for replica reads to be fresh.
double worst_p99(const ProbeSummary& p) {
  double worst = 0;
  for (const TargetSummary& t : p.targets) {
    if (t.samples > 0) worst = std::max(worst, t.p99);
  }
  return worst;
}

nlohmann::json read_path_json(const ReadPathSummary& r) {
  nlohmann::json jr = {{"name", r.name},
                       {"delays", nlohmann::json::array()},
                       {"schedule_offset_seconds",
                        {{"p50", rounded(r.offset_p50)}, {"p99", rounded(r.offset_p99)}, {"max", rounded(r.offset_max)}}},
                       {"recommended_window", r.recommended ? nlohmann::json(*r.recommended) : nlohmann::json()}};
  if (!r.last_error.empty()) jr["last_error"] = r.last_error;
  if (r.session) {
    jr["session_writes"] = {{"ok", r.writes_ok},
                            {"errors", r.write_errors},
                            {"p50_seconds", r.writes_ok ? nlohmann::json(rounded(r.write_p50)) : nlohmann::json()},
                            {"p99_seconds", r.writes_ok ? nlohmann::json(rounded(r.write_p99)) : nlohmann::json()}};
  }
  for (const DelaySummary& d : r.delays) {
    jr["delays"].push_back({{"delay", d.delay},
                            {"reads", d.reads},
                            {"stale", d.stale},
                            {"errors", d.errors},
                            {"skipped", d.skipped},
                            {"stale_ratio", rounded(d.stale_ratio)},
                            {"ci95", {rounded(d.ci_low), rounded(d.ci_high)}}});
  }
  return jr;
}

std::string percent(double ratio) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", ratio * 100);
  return buf;
}

void read_paths_table(std::ostringstream& out, const ProbeSummary& p) {
  if (p.read_paths.empty()) return;
  out << "  read-your-writes (stale ratio per delay after the write, 95% interval; target " << percent(p.stale_target)
      << "):\n";
  for (const ReadPathSummary& r : p.read_paths) {
    char line[256];
    std::snprintf(line, sizeof line, "  %-24s %8s %7s %7s %7s %8s %17s\n", ("path " + r.name).c_str(), "delay",
                  "reads", "stale", "errors", "ratio", "95% interval");
    out << line;
    for (const DelaySummary& d : r.delays) {
      const std::string interval = percent(d.ci_low) + "-" + percent(d.ci_high);
      std::snprintf(line, sizeof line, "  %-24s %8s %7ld %7ld %7ld %8s %17s%s\n", "", d.delay.c_str(), d.reads, d.stale,
                    d.errors, percent(d.stale_ratio).c_str(), interval.c_str(),
                    d.skipped ? (" (" + std::to_string(d.skipped) + " skipped)").c_str() : "");
      out << line;
    }
    if (r.session) {
      out << "    its own writes (session): " << r.writes_ok << " ok, " << r.write_errors << " failed, p50 " << ms(r.write_p50)
          << " ms, p99 " << ms(r.write_p99) << " ms\n";
    }
    if (!r.answered) {
      out << "    no read through this path answered; last error: " << r.last_error << "\n";
      continue;
    }
    out << "    read from the primary for " << (r.recommended ? *r.recommended : std::string("longer than every delay tried"))
        << " after a write; replication lag p99 (slowest target) " << ms(worst_p99(p))
        << " ms; reads issued late by p50 " << ms(r.offset_p50) << " ms, p99 " << ms(r.offset_p99) << " ms\n";
  }
}

nlohmann::json strategies_json(const ProbeSummary& p) {
  if (!p.strategies) return nullptr;
  const StrategyComparison& c = *p.strategies;
  nlohmann::json delays = nlohmann::json::array(), by_delay = nlohmann::json::array();
  for (std::size_t i = 0; i < p.read_delays.size(); ++i) {
    delays.push_back(p.read_delays[i].first);
    by_delay.push_back({{"delay", p.read_delays[i].first}, {"stale_share", rounded(c.replica_stale_by_delay.at(i))}});
  }
  return {{"read_delays", delays},
          {"canaries", c.canaries},
          {"replica", {{"stale_share", rounded(c.replica_stale)}, {"stale_share_by_delay", by_delay}}},
          {"pin_to_primary",
           {{"window_seconds", rounded_or_null(c.pin_window)},
            {"window_is_max_lag", c.pin_window_is_max},
            {"primary_share", rounded(c.pin_primary)},
            {"stale_share", rounded(c.pin_stale)}}},
          {"wait_for_position",
           {{"budget_seconds", rounded(p.wait_budget)},
            {"wait_share", rounded(c.wait_share)},
            {"wait_p50_seconds", rounded_or_null(c.wait_p50)},
            {"wait_p99_seconds", rounded_or_null(c.wait_p99)},
            {"primary_share", rounded(c.wait_primary)}}}};
}

void strategies_table(std::ostringstream& out, const ProbeSummary& p) {
  if (!p.strategies) return;
  const StrategyComparison& c = *p.strategies;
  std::string delays, by_delay;
  for (std::size_t i = 0; i < p.read_delays.size(); ++i) {
    delays += (i ? ", " : "") + p.read_delays[i].first;
    by_delay += (i ? ", " : "") + p.read_delays[i].first + " " + percent(c.replica_stale_by_delay.at(i));
  }
  out << "  read-your-writes strategies, for reads at " << delays << " after a write (equally often), from "
      << c.canaries << " canaries:\n";
  out << "    read a random replica at once:      stale " << percent(c.replica_stale) << " of reads (" << by_delay << ")\n";
  if (c.pin_window) {
    out << "    pin reads to the primary for " << ms(*c.pin_window) << " ms: primary " << percent(c.pin_primary)
        << " of reads, stale " << percent(c.pin_stale);
    if (c.pin_window_is_max) out << " (the largest lag seen: too few canaries to resolve " << percent(p.stale_target) << ")";
    out << "\n";
  } else {
    out << "    pin reads to the primary: no window keeps stale reads under " << percent(p.stale_target)
        << " (a replica missed canaries)\n";
  }
  out << "    wait for the position, up to " << ms(p.wait_budget) << " ms: " << percent(c.wait_share) << " of reads wait";
  if (c.wait_p50) out << " (p50 " << ms(*c.wait_p50) << " ms, p99 " << ms(*c.wait_p99) << " ms)";
  out << ", primary " << percent(c.wait_primary) << ", stale 0%\n";
}

}  // namespace

// What resolution costs: a reader polls fast only while a canary is outstanding on its target.
nlohmann::json polls_per_canary(const ProbeSummary& p, const TargetSummary& t) {
  if (p.writes_ok == 0) return nullptr;
  return std::round(100.0 * t.polls / p.writes_ok) / 100.0;
}

nlohmann::json report_json(const std::vector<ProbeSummary>& probes) {
  nlohmann::json out = {{"probes", nlohmann::json::array()}};
  for (const ProbeSummary& p : probes) {
    nlohmann::json jp = {{"name", p.name},
                         {"kind", p.kind},
                         {"mode", p.position_mode ? "position" : "canary"},
                         {"canaries_written", p.writes_ok},
                         {"write_errors", p.write_errors},
                         {"write_p50_seconds", rounded(p.write_p50)},
                         {"write_p99_seconds", rounded(p.write_p99)},
                         {"targets", nlohmann::json::array()}};
    if (!p.last_write_error.empty()) jp["last_write_error"] = p.last_write_error;
    for (const TargetSummary& t : p.targets) {
      // Without a sample nothing was observed: null, never a 0 that reads as "no lag".
      auto observed = [&t](double seconds) { return t.samples > 0 ? nlohmann::json(rounded(seconds)) : nlohmann::json(); };
      auto received = [&t](double seconds) {
        return t.received_samples > 0 ? nlohmann::json(rounded(seconds)) : nlohmann::json();
      };
      nlohmann::json jt = {{"name", t.name},
                           {"samples", t.samples},
                           {"p50_seconds", observed(t.p50)},
                           {"p90_seconds", observed(t.p90)},
                           {"p99_seconds", observed(t.p99)},
                           {"max_seconds", observed(t.max)},
                           {"received_samples", t.received_samples},
                           {"received_p50_seconds", received(t.received_p50)},
                           {"received_p99_seconds", received(t.received_p99)},
                           {"received_resolution_seconds", received(t.received_resolution)},
                           {"timeouts", t.timeouts},
                           {"errors", t.errors},
                           {"resolution_seconds", observed(t.resolution)},
                           {"polls", t.polls},
                           {"polls_per_canary", polls_per_canary(p, t)},
                           {"reachable", t.reachable},
                           {"source", t.source},
                           {"role", t.role.empty() ? nlohmann::json() : nlohmann::json(t.role)}};
      if (t.reported_samples > 0) {
        jt["reported_lag"] = {{"samples", t.reported_samples},
                              {"p50_seconds", rounded(t.reported_p50)},
                              {"max_seconds", rounded(t.reported_max)}};
      }
      if (!t.last_error.empty()) jt["last_error"] = t.last_error;
      jp["targets"].push_back(std::move(jt));
    }
    jp["strategies"] = strategies_json(p);
    if (!p.read_paths.empty()) {
      jp["stale_target"] = p.stale_target;
      jp["replication_lag_p99_seconds"] = rounded(worst_p99(p));
      jp["read_paths"] = nlohmann::json::array();
      for (const ReadPathSummary& r : p.read_paths) jp["read_paths"].push_back(read_path_json(r));
    }
    out["probes"].push_back(std::move(jp));
  }
  return out;
}

std::string report_table(const std::vector<ProbeSummary>& probes) {
  std::ostringstream out;
  for (const ProbeSummary& p : probes) {
    if (p.position_mode) {
      out << "probe " << p.name << " (" << p.kind << ", mode: position): " << p.writes_ok
          << " samples of the primary's position advanced, " << p.write_errors << " sample errors\n";
    } else {
      out << "probe " << p.name << " (" << p.kind << "): " << p.writes_ok << " canaries written, " << p.write_errors
          << " write errors, write p50 " << ms(p.write_p50) << " ms, p99 " << ms(p.write_p99) << " ms\n";
    }
    if (!p.last_write_error.empty()) out << "  last write error: " << p.last_write_error << '\n';
    char line[256];
    std::snprintf(line, sizeof line, "  %-16s %7s %9s %9s %9s %9s %13s %8s %6s %9s %13s %10s\n", "target",
                  "samples", "p50 ms", "p90 ms", "p99 ms", "max ms", "received p50", "timeouts", "errors", "res. ms",
                  "reported p50", "polls/can.");
    out << line;
    for (const TargetSummary& t : p.targets) {
      const std::string reported = t.reported_samples > 0 ? ms(t.reported_p50) + " ms" : "-";
      const std::string received = t.received_samples > 0 ? ms(t.received_p50) + " ms" : "-";
      auto observed = [&t](double seconds) { return t.samples > 0 ? ms(seconds) : std::string("-"); };
      const nlohmann::json per_canary = polls_per_canary(p, t);
      const std::string polls = per_canary.is_null() ? "-" : fixed1(per_canary.get<double>());
      std::snprintf(line, sizeof line, "  %-16s %7d %9s %9s %9s %9s %13s %8d %6d %9s %13s %10s%s\n", t.name.c_str(),
                    t.samples, observed(t.p50).c_str(), observed(t.p90).c_str(), observed(t.p99).c_str(),
                    observed(t.max).c_str(), received.c_str(), t.timeouts, t.errors, observed(t.resolution).c_str(), reported.c_str(),
                    polls.c_str(),
                    t.reachable ? (t.is_primary.value_or(false) ? "  PRIMARY (not a replica)" : "") : "  UNREACHABLE");
      out << line;
      if (t.source != "static") out << "    discovered by " << t.source << (t.role.empty() ? "" : ", role " + t.role) << '\n';
      if (!t.last_error.empty() && !t.reachable) out << "    last error: " << t.last_error << '\n';
    }
    strategies_table(out, p);
    read_paths_table(out, p);
  }
  return out.str();
}

}  // namespace ghostwatch
