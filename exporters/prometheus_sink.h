// PrometheusSink: turns observations into the metrics of DESIGN.md's table and serves them on
// /metrics (prometheus-cpp pull). Families are created once, in the constructor; each probe and
// target handle keeps references to its own metric children, so the hot path does no lookups.
#pragma once

#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "exporters/sink.h"

namespace ghostwatch {

class PrometheusSink final : public ObservationSink {
 public:
  PrometheusSink();
  ~PrometheusSink();
  std::shared_ptr<ProbeSink> probe(const std::string& name, const std::string& kind) override;
  std::shared_ptr<ReconcileSink> reconcile(const std::string& name, const std::string& target) override;

  // Starts serving /metrics on host:port. Throws std::runtime_error if the port is taken.
  void serve(const std::string& listen);
  // Stops serving. Prompt: civetweb notices a stop only between 2-second polls of its
  // listening socket, so we connect to it to wake it up.
  void stop_serving();
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  struct Families {
    prometheus::Family<prometheus::Counter>& writes;
    prometheus::Family<prometheus::Histogram>& write_seconds;
    prometheus::Family<prometheus::Histogram>& lag;
    prometheus::Family<prometheus::Gauge>& pending;
    prometheus::Family<prometheus::Counter>& timeouts;
    prometheus::Family<prometheus::Gauge>& up;
    prometheus::Family<prometheus::Counter>& poll_errors;
    prometheus::Family<prometheus::Counter>& polls;
    prometheus::Family<prometheus::Gauge>& resolution;
    prometheus::Family<prometheus::Gauge>& position_bytes;
    prometheus::Family<prometheus::Gauge>& position_transactions;
    prometheus::Family<prometheus::Gauge>& reported_lag;
    prometheus::Family<prometheus::Gauge>& build_info;
    prometheus::Family<prometheus::Counter>& reads;
    prometheus::Family<prometheus::Counter>& stale_reads;
    prometheus::Family<prometheus::Counter>& read_errors;
    prometheus::Family<prometheus::Counter>& reads_skipped;
    prometheus::Family<prometheus::Histogram>& read_seconds;
    prometheus::Family<prometheus::Histogram>& read_offset;
    prometheus::Family<prometheus::Counter>& cache_checked;
    prometheus::Family<prometheus::Counter>& cache_mismatches;
    prometheus::Family<prometheus::Counter>& cache_unparseable;
    prometheus::Family<prometheus::Gauge>& cache_stale_entries;
    prometheus::Family<prometheus::Gauge>& cache_consistency;
    prometheus::Family<prometheus::Gauge>& cache_sweep_seconds;
    prometheus::Family<prometheus::Counter>& cache_sweeps;
  };

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  Families families_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string listen_;
};

// Bucket bounds (seconds) of the visibility lag histogram: fine steps up to 1 s, where replica
// lag usually lives, then coarse ones up to 5 minutes.
const prometheus::Histogram::BucketBoundaries& lag_buckets();

}  // namespace ghostwatch
