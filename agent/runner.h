// The registry of probe kinds, and ProbeSet: the probes of one config run side by side, each on
// its own threads, all reporting to one sink (what `ghostwatch probe` runs once).
#pragma once

#include <memory>
#include <stop_token>
#include <vector>

#include "common/clock.h"
#include "exporters/sink.h"
#include "probes/canary_backend.h"
#include "probes/discovery/discovery.h"
#include "probes/reconcile/reconciler.h"
#include "probes/replication_probe.h"

namespace ghostwatch {

// The registry: maps a probe's kind to its database backend (adding a kind adds one case in
// runner.cpp), with cache targets routed to cache readers.
std::unique_ptr<CanaryBackend> make_backend(const ProbeConfig& probe, const std::string& agent_id);

// A replication probe with its read paths; `backend` must outlive it.
std::unique_ptr<ReplicationProbe> make_probe(const ProbeConfig& probe, const std::string& agent_id,
                                             CanaryBackend& backend, ObservationSink& sink, const Clock& clock);

// Sweeps every `config.every` until `stop`, reporting each sweep to `sink`.
void run_reconciler(const ReconcileConfig& config, ReconcileSink& sink, std::stop_token stop);

// The metrics' view of a sweep.
SweepObservation observation_of(const reconcile::SweepResult& result);

class ProbeSet {
 public:
  ProbeSet(const Config& config, ObservationSink& sink, const Clock& clock);
  void run(std::stop_token stop);
  void run_once(const RunOnceLimits& limits, std::stop_token stop);

 private:
  template <class Fn>
  void each_in_thread(std::stop_token stop, Fn fn);
  std::vector<std::unique_ptr<CanaryBackend>> backends_;
  std::vector<std::unique_ptr<ReplicationProbe>> probes_;
  std::vector<std::unique_ptr<discovery::ProbeDiscovery>> discoveries_;  // by probe; null without discovery
};

}  // namespace ghostwatch
