#include "agent/runner.h"

#include <thread>

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
      : db_(make_database_backend(probe, agent_id)), probe_(probe), agent_id_(agent_id) {}
  std::unique_ptr<CanaryWriter> writer() override { return db_->writer(); }
  std::unique_ptr<CanaryReader> reader(const TargetConfig& t, bool report_lag) override {
    if (t.cache) return cache::make_cache_reader(*t.cache, agent_id_, probe_);
    return db_->reader(t, report_lag);
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

ProbeSet::ProbeSet(const Config& config, ObservationSink& sink, const Clock& clock) {
  for (const ProbeConfig& p : config.probes) {
    backends_.push_back(make_backend(p, config.agent.id));
    std::vector<std::unique_ptr<ReadPath>> read_paths;
    for (const ReadPathConfig& r : p.read_paths) {
      read_paths.push_back(make_read_path(p, r, *backends_.back(), config.agent.id));
    }
    probes_.push_back(std::make_unique<ReplicationProbe>(p, *backends_.back(), sink, clock, std::move(read_paths)));
  }
}

template <class Fn>
void ProbeSet::each_in_thread(Fn fn) {
  std::vector<std::jthread> threads;
  for (auto& p : probes_) threads.emplace_back([&fn, &p] { fn(*p); });
}

void ProbeSet::run(std::stop_token stop) {
  each_in_thread([stop](ReplicationProbe& p) { p.run(stop); });
}

void ProbeSet::run_once(const RunOnceLimits& limits, std::stop_token stop) {
  each_in_thread([&limits, stop](ReplicationProbe& p) { p.run_once(limits, stop); });
}

}  // namespace ghostwatch
