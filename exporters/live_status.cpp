#include "exporters/live_status.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "common/recent_lags.h"

namespace ghostwatch {
namespace {

constexpr std::size_t kRecent = 100;

struct LiveTargetState {
  std::mutex mu;
  TargetStatus status;
  std::optional<bool> polled_primary;
  std::string discovered_role;
  LagHistory history;  // the recent lags too
  RecentLags received{kRecent};
};

struct LiveReadPathState {
  std::mutex mu;
  ReadPathStatus status;
};

class LiveTarget final : public TargetSink {
 public:
  explicit LiveTarget(std::shared_ptr<LiveTargetState> s) : s_(std::move(s)) {}
  void visible(const VisibilitySample& sample) override {
    std::lock_guard lock(s_->mu);
    const double lag = to_seconds(sample.lag);
    s_->status.last = lag;
    ++s_->status.samples;
    s_->history.lag(steady_now(), lag);
  }
  void received(const VisibilitySample& sample) override {
    std::lock_guard lock(s_->mu);
    s_->received.add(to_seconds(sample.lag));
  }
  void timed_out(int n) override {
    std::lock_guard lock(s_->mu);
    s_->status.timeouts += n;
  }
  void pending(Duration age) override {
    std::lock_guard lock(s_->mu);
    s_->status.pending = to_seconds(age);
    s_->history.pending(steady_now(), s_->status.pending);
  }
  void polled(bool ok, const std::string& error) override {
    std::lock_guard lock(s_->mu);
    s_->status.polled = true;
    s_->status.up = ok;
    if (!ok) {
      ++s_->status.errors;
      s_->status.last_error = error;
    }
  }
  void position_lag(PositionUnit, std::optional<double>) override {}
  void reported_lag(std::optional<double> seconds) override {
    std::lock_guard lock(s_->mu);
    s_->status.reported = seconds;
  }
  void role(bool is_primary) override {
    std::lock_guard lock(s_->mu);
    s_->status.is_primary = is_primary;
    s_->polled_primary = is_primary;
  }
  void origin(const std::string& source, const std::string& role) override {
    std::lock_guard lock(s_->mu);
    s_->status.source = source;
    s_->discovered_role = role;
  }
  void discovered_role(const std::string& role) override {
    std::lock_guard lock(s_->mu);
    s_->discovered_role = role;
  }

 private:
  std::shared_ptr<LiveTargetState> s_;
};

class LiveReadPath final : public ReadPathSink {
 public:
  explicit LiveReadPath(std::shared_ptr<LiveReadPathState> s) : s_(std::move(s)) {}
  void read(std::size_t d, ReadOutcome outcome, Duration, const std::string&) override {
    std::lock_guard lock(s_->mu);
    ++s_->status.reads.at(d);
    if (outcome == ReadOutcome::stale) ++s_->status.stale.at(d);
    if (outcome == ReadOutcome::error) ++s_->status.errors.at(d);
  }
  void skipped(std::size_t) override {}
  void schedule_offset(Duration) override {}

 private:
  std::shared_ptr<LiveReadPathState> s_;
};

}  // namespace

struct LiveStatus::ProbeState {
  std::mutex mu;
  std::string name, kind;
  long writes_ok = 0, write_errors = 0;
  std::string last_write_error;
  bool position_sampled = false;
  std::vector<std::weak_ptr<LiveTargetState>> targets;  // a removed target (discovery) leaves the views
  std::vector<std::shared_ptr<LiveReadPathState>> read_paths;
};

struct LiveStatus::ReconcileState {
  std::mutex mu;
  ReconcileStatus status;
};

namespace {

class LiveProbe final : public ProbeSink {
 public:
  explicit LiveProbe(std::shared_ptr<LiveStatus::ProbeState> s) : s_(std::move(s)) {}
  void position_sampled() override {
    std::lock_guard lock(s_->mu);
    s_->position_sampled = true;
  }
  void canary_written(bool ok, Duration, const std::string& error) override {
    std::lock_guard lock(s_->mu);
    if (ok) ++s_->writes_ok;
    else {
      ++s_->write_errors;
      s_->last_write_error = error;
    }
  }
  std::shared_ptr<TargetSink> target(const std::string& name) override {
    auto t = std::make_shared<LiveTargetState>();
    t->status.name = name;
    std::lock_guard lock(s_->mu);
    s_->targets.push_back(t);
    return std::make_shared<LiveTarget>(t);
  }
  std::shared_ptr<ReadPathSink> read_path(const std::string& name, const std::vector<std::string>& delays) override {
    auto r = std::make_shared<LiveReadPathState>();
    r->status.name = name;
    r->status.delays = delays;
    r->status.reads.assign(delays.size(), 0);
    r->status.stale.assign(delays.size(), 0);
    r->status.errors.assign(delays.size(), 0);
    std::lock_guard lock(s_->mu);
    s_->read_paths.push_back(r);
    return std::make_shared<LiveReadPath>(r);
  }

 private:
  std::shared_ptr<LiveStatus::ProbeState> s_;
};

class LiveReconcile final : public ReconcileSink {
 public:
  explicit LiveReconcile(std::shared_ptr<LiveStatus::ReconcileState> s) : s_(std::move(s)) {}
  void swept(const SweepObservation& sweep) override {
    std::lock_guard lock(s_->mu);
    if (!sweep.ok) {
      ++s_->status.sweeps_failed;
      return;
    }
    ++s_->status.sweeps_ok;
    s_->status.last = sweep;
  }

 private:
  std::shared_ptr<LiveStatus::ReconcileState> s_;
};

TargetStatus snapshot_of(LiveTargetState& t, bool with_history) {
  std::lock_guard lock(t.mu);
  TargetStatus s = t.status;
  if (with_history) s.history = t.history.points(steady_now());
  s.p50 = t.history.recent_percentile(0.5);
  s.p99 = t.history.recent_percentile(0.99);
  s.received_p50 = t.received.percentile(0.5);
  s.role = shown_role(t.polled_primary, t.discovered_role);
  return s;
}

// The live entries of `list`, dropping those whose probe has gone.
template <class State>
std::vector<std::shared_ptr<State>> live_entries(std::vector<std::weak_ptr<State>>& list) {
  std::vector<std::shared_ptr<State>> out;
  std::erase_if(list, [&out](const std::weak_ptr<State>& w) {
    auto s = w.lock();
    if (!s) return true;
    out.push_back(std::move(s));
    return false;
  });
  return out;
}

}  // namespace

std::shared_ptr<ProbeSink> LiveStatus::probe(const std::string& name, const std::string& kind) {
  auto state = std::make_shared<ProbeState>();
  state->name = name;
  state->kind = kind;
  std::lock_guard lock(mu_);
  probes_.push_back(state);
  return std::make_shared<LiveProbe>(state);
}

std::shared_ptr<ReconcileSink> LiveStatus::reconcile(const std::string& name, const std::string& target) {
  auto state = std::make_shared<ReconcileState>();
  state->status.name = name;
  state->status.target = target;
  std::lock_guard lock(mu_);
  reconcilers_.push_back(state);
  return std::make_shared<LiveReconcile>(state);
}

StatusSnapshot LiveStatus::snapshot(bool with_history) const {
  std::vector<std::shared_ptr<ProbeState>> probes;
  std::vector<std::shared_ptr<ReconcileState>> reconcilers;
  {
    std::lock_guard lock(mu_);
    probes = live_entries(probes_);
    reconcilers = live_entries(reconcilers_);
  }
  StatusSnapshot out;
  for (const auto& p : probes) {
    std::lock_guard lock(p->mu);
    ProbeStatus s{p->name, p->kind, p->writes_ok, p->write_errors, p->last_write_error, p->position_sampled, {}, {}};
    for (const auto& t : live_entries(p->targets)) s.targets.push_back(snapshot_of(*t, with_history));
    for (const auto& r : p->read_paths) {
      std::lock_guard rlock(r->mu);
      s.read_paths.push_back(r->status);
    }
    out.probes.push_back(std::move(s));
  }
  for (const auto& r : reconcilers) {
    std::lock_guard lock(r->mu);
    out.reconcilers.push_back(r->status);
  }
  return out;
}

std::string not_ready_reasons(const StatusSnapshot& status) {
  std::string out;
  for (const ProbeStatus& p : status.probes) {
    if (p.writes_ok == 0 && !p.position_sampled) {
      out += "probe " + p.name + ": no canary written yet";
      if (!p.last_write_error.empty()) out += " (last error: " + p.last_write_error + ")";
      out += "\n";
    }
    for (const TargetStatus& t : p.targets) {
      if (!t.polled) out += "probe " + p.name + ": target " + t.name + ": not polled yet\n";
    }
  }
  return out;
}

namespace {

std::string ms_or_dash(const std::optional<double>& seconds) {
  if (!seconds) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", *seconds * 1000);
  return buf;
}

std::string render_reads(const StatusSnapshot& status) {
  std::string out;
  char cell[96];
  for (const ProbeStatus& p : status.probes) {
    for (const ReadPathStatus& r : p.read_paths) {
      if (out.empty()) out = "stale reads (read-your-writes), by delay after the write:\n";
      std::snprintf(cell, sizeof cell, "%-12s %-14s", p.name.c_str(), r.name.c_str());
      out += cell;
      for (std::size_t d = 0; d < r.delays.size(); ++d) {
        const long answered = r.reads[d] - r.errors[d];
        if (answered > 0) {
          std::snprintf(cell, sizeof cell, " %6s %5.1f%%", r.delays[d].c_str(), 100.0 * r.stale[d] / answered);
        } else {
          std::snprintf(cell, sizeof cell, " %6s %6s", r.delays[d].c_str(), r.reads[d] ? "err" : "-");
        }
        out += cell;
      }
      out += "\n";
    }
  }
  return out;
}

std::string render_reconcilers(const StatusSnapshot& status) {
  std::string out;
  char line[192];
  for (const ReconcileStatus& r : status.reconcilers) {
    if (out.empty()) out = "cache reconciliation (last sweep):\n";
    if (!r.last) {
      std::snprintf(line, sizeof line, "%-12s %-10s no sweep finished yet (%ld failed)\n", r.name.c_str(),
                    r.target.c_str(), r.sweeps_failed);
    } else {
      std::snprintf(line, sizeof line, "%-12s %-10s %8ld checked %10.4f%% consistent  stale %ld ahead %ld orphan %ld\n",
                    r.name.c_str(), r.target.c_str(), r.last->checked, r.last->consistent_ratio * 100, r.last->stale,
                    r.last->ahead, r.last->orphan);
    }
    out += line;
  }
  return out;
}

}  // namespace

std::string render_console(const StatusSnapshot& status) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-12s %-14s %-5s %10s %10s %10s %10s %11s %12s %8s %7s\n", "probe", "target", "up",
                "last ms", "p50 ms", "p99 ms", "recv p50", "pending ms", "reported ms", "timeouts", "errors");
  out += line;
  for (const ProbeStatus& p : status.probes) {
    for (const TargetStatus& t : p.targets) {
      std::snprintf(line, sizeof line, "%-12s %-14s %-5s %10s %10s %10s %10s %11.1f %12s %8ld %7ld\n", p.name.c_str(),
                    t.name.c_str(), !t.polled ? "?" : (!t.up ? "NO" : (t.is_primary ? "PRIM" : "yes")), ms_or_dash(t.last).c_str(),
                    ms_or_dash(t.p50).c_str(), ms_or_dash(t.p99).c_str(), ms_or_dash(t.received_p50).c_str(), t.pending * 1000,
                    ms_or_dash(t.reported).c_str(), t.timeouts, t.errors);
      out += line;
    }
  }
  return out + render_reads(status) + render_reconcilers(status);
}

}  // namespace ghostwatch
