#include "agent/runner.h"

#include <thread>

#include "common/interruptible.h"
#include "common/log.h"

#include "probes/cache/cache_reader.h"
#include "probes/mysql/mysql_replication.h"
#include "probes/postgres/pg_replication.h"
#include "probes/read_paths.h"

namespace ghostwatch {

namespace {

std::unique_ptr<CanaryBackend> make_database_backend(const ProbeConfig& probe, const std::string& agent_id) {
  switch (probe.kind) {
    case ProbeKind::postgres: return std::make_unique<pg::PostgresBackend>(probe, agent_id);
    case ProbeKind::mysql: return std::make_unique<mysql::MysqlBackend>(probe, agent_id);
  }
  return nullptr;
}

// Sends cache targets to cache readers and everything else to the probe's database backend.
class TargetRouter final : public CanaryBackend {
 public:
  TargetRouter(const ProbeConfig& probe, const std::string& agent_id)
      : db_(make_database_backend(probe, agent_id)), probe_(settings_of(probe)), agent_id_(agent_id) {}
  std::unique_ptr<CanaryWriter> writer() override { return db_->writer(); }
  Status check(const TargetConfig& t) const override { return t.cache ? ok_status() : db_->check(t); }
  std::unique_ptr<CanaryReader> reader(const TargetConfig& t, bool report_lag) override {
    if (t.cache) return cache::make_cache_reader(*t.cache, agent_id_, probe_);
    return db_->reader(t, report_lag);
  }
  std::unique_ptr<AsyncCanaryReader> async_reader(const TargetConfig& t) override {
    if (t.cache) return cache::make_async_cache_reader(*t.cache, agent_id_, probe_);
    return db_->async_reader(t);
  }
  std::unique_ptr<CanarySession> session(const TargetConfig& t, const std::string& key) override {
    return db_->session(t, key);
  }
  std::unique_ptr<PositionWaiter> waiter(const TargetConfig& t) override {
    if (t.cache) return nullptr;
    return db_->waiter(t);
  }
  PositionUnit position_unit() const override { return db_->position_unit(); }
  std::optional<double> position_behind(const Position& primary, const Position& target) const override {
    return db_->position_behind(primary, target);
  }

 private:
  std::unique_ptr<CanaryBackend> db_;
  ProbeConfig probe_;
  std::string agent_id_;
};

}  // namespace

std::unique_ptr<CanaryBackend> make_backend(const ProbeConfig& probe, const std::string& agent_id) {
  return std::make_unique<TargetRouter>(probe, agent_id);
}

std::unique_ptr<ReplicationProbe> make_probe(const ProbeConfig& p, const std::string& agent_id, CanaryBackend& backend,
                                             ObservationSink& sink, const Clock& clock) {
  std::vector<std::unique_ptr<ReadPath>> read_paths;
  for (const ReadPathConfig& r : p.read_paths) read_paths.push_back(make_read_path(p, r, backend, agent_id));
  return std::make_unique<ReplicationProbe>(p, backend, sink, clock, std::move(read_paths));
}

ProbeSet::ProbeSet(const Config& config, ObservationSink& sink, const Clock& clock) {
  for (const ProbeConfig& p : config.probes) {
    backends_.push_back(make_backend(p, config.agent.id));
    probes_.push_back(make_probe(p, config.agent.id, *backends_.back(), sink, clock));
    discoveries_.push_back(discovery::make_discovery(p, *probes_.back()));
  }
}

SweepObservation observation_of(const reconcile::SweepResult& r) {
  SweepObservation o;
  o.checked = r.checked;
  o.unparseable = r.unparseable;
  auto count = [&r](reconcile::Kind k) {
    auto it = r.counts.find(k);
    return it == r.counts.end() ? 0L : it->second;
  };
  o.stale = count(reconcile::Kind::stale);
  o.ahead = count(reconcile::Kind::ahead);
  o.orphan = count(reconcile::Kind::orphan);
  o.seconds = to_seconds(r.duration);
  o.consistent_ratio = r.consistent_ratio();
  return o;
}

void run_reconciler(const ReconcileConfig& config, ReconcileSink& sink, std::stop_token stop) {
  log::Context context(config.name);
  reconcile::Reconciler reconciler(config, reconcile::make_cache_side(config), reconcile::make_db_side(config));
  while (!stop.stop_requested()) {
    const MonoTime next = std::chrono::steady_clock::now() + config.every;
    auto result = reconciler.sweep(reconcile::SweepOptions{}, stop);
    if (stop.stop_requested()) break;
    if (result) {
      sink.swept(observation_of(result.value()));
    } else {
      log::warn("reconcile sweep failed: " + result.error().message);
      sink.swept(SweepObservation{false});
    }
    sleep_until(stop, next);
  }
}

// Each probe on a thread of its own, and its discovery beside it until the probe is done.
template <class Fn>
void ProbeSet::each_in_thread(std::stop_token stop, Fn fn) {
  std::vector<std::jthread> threads;
  for (std::size_t i = 0; i < probes_.size(); ++i) {
    threads.emplace_back([&fn, stop, p = probes_[i].get(), d = discoveries_[i].get()] {
      std::stop_source done;
      std::stop_callback forward(stop, [&done] { done.request_stop(); });
      std::jthread discovering;
      if (d) discovering = std::jthread([d, tok = done.get_token()] { d->run(tok); });
      fn(*p);
      done.request_stop();
    });
  }
}

void ProbeSet::run(std::stop_token stop) {
  each_in_thread(stop, [stop](ReplicationProbe& p) { p.run(stop); });
}

// A one-shot run starts with the targets every source lists at its start.
void ProbeSet::run_once(const RunOnceLimits& limits, std::stop_token stop) {
  for (auto& d : discoveries_) {
    if (d) d->first_rounds(stop);
  }
  each_in_thread(stop, [&limits, stop](ReplicationProbe& p) { p.run_once(limits, stop); });
}

}  // namespace ghostwatch
