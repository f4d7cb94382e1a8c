// PrometheusSink: turns observations into the metrics of DESIGN.md's table and renders them in
// the text exposition format (the HTTP server serves them on /metrics). Families are created
// once, in the constructor; each probe and target handle keeps references to its own metric
// children, so the hot path does no lookups, and removes them when it goes (a probe stopped by
// a reload leaves /metrics).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "exporters/sink.h"

namespace ghostwatch {

class PrometheusSink final : public ObservationSink {
 public:
  PrometheusSink();
  std::shared_ptr<ProbeSink> probe(const std::string& name, const std::string& kind) override;
  std::shared_ptr<ReconcileSink> reconcile(const std::string& name, const std::string& target) override;

  // The outcome of applying a config (at start, or a reload): ghostwatch_config_last_reload_*.
  void config_applied(bool ok, double unix_seconds);
  // Every metric in the Prometheus text format (what /metrics answers).
  std::string render() const;
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  struct Families {
    prometheus::Family<prometheus::Counter>& writes;
    prometheus::Family<prometheus::Histogram>& write_seconds;
    prometheus::Family<prometheus::Histogram>& lag;
    prometheus::Family<prometheus::Histogram>& received_lag;
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
    prometheus::Family<prometheus::Gauge>& role;
    prometheus::Family<prometheus::Gauge>& discovery_targets;
    prometheus::Family<prometheus::Gauge>& discovery_success;
    prometheus::Family<prometheus::Counter>& discovery_errors;
    prometheus::Family<prometheus::Gauge>& reload_ok;
    prometheus::Family<prometheus::Gauge>& reload_time;
  };

 private:
  template <class Family>
  Family& keep(Family& f) {
    families_in_order_.push_back(&f);
    return f;
  }

  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<const prometheus::Collectable*> families_in_order_;  // every family, for render()
  // The last render's size: the next one reserves it (and some) at once rather
  // than growing through a dozen copies of a 4 MB string.
  mutable std::atomic<std::size_t> last_text_size_{0};
  Families families_;
  prometheus::Gauge& reload_ok_;
  prometheus::Gauge& reload_time_;
};

// Bucket bounds (seconds) of the visibility lag histogram: fine steps up to 1 s, where replica
// lag usually lives, then coarse ones up to 5 minutes.
const prometheus::Histogram::BucketBoundaries& lag_buckets();

}  // namespace ghostwatch
