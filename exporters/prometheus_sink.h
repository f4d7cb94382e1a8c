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

#include <prometheus/histogram.h>

#include "exporters/series_family.h"
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

  struct Families {
    SeriesFamily<prometheus::Counter>& writes;
    SeriesFamily<prometheus::Histogram>& write_seconds;
    SeriesFamily<prometheus::Histogram>& lag;
    SeriesFamily<prometheus::Histogram>& received_lag;
    SeriesFamily<prometheus::Gauge>& pending;
    SeriesFamily<prometheus::Counter>& timeouts;
    SeriesFamily<prometheus::Gauge>& up;
    SeriesFamily<prometheus::Counter>& poll_errors;
    SeriesFamily<prometheus::Counter>& polls;
    SeriesFamily<prometheus::Gauge>& resolution;
    SeriesFamily<prometheus::Gauge>& position_bytes;
    SeriesFamily<prometheus::Gauge>& position_transactions;
    SeriesFamily<prometheus::Gauge>& reported_lag;
    SeriesFamily<prometheus::Gauge>& build_info;
    SeriesFamily<prometheus::Counter>& reads;
    SeriesFamily<prometheus::Counter>& stale_reads;
    SeriesFamily<prometheus::Counter>& read_errors;
    SeriesFamily<prometheus::Counter>& reads_skipped;
    SeriesFamily<prometheus::Histogram>& read_seconds;
    SeriesFamily<prometheus::Histogram>& read_offset;
    SeriesFamily<prometheus::Counter>& cache_checked;
    SeriesFamily<prometheus::Counter>& cache_mismatches;
    SeriesFamily<prometheus::Counter>& cache_unparseable;
    SeriesFamily<prometheus::Gauge>& cache_stale_entries;
    SeriesFamily<prometheus::Gauge>& cache_consistency;
    SeriesFamily<prometheus::Gauge>& cache_sweep_seconds;
    SeriesFamily<prometheus::Counter>& cache_sweeps;
    SeriesFamily<prometheus::Gauge>& role;
    SeriesFamily<prometheus::Gauge>& discovery_targets;
    SeriesFamily<prometheus::Gauge>& discovery_success;
    SeriesFamily<prometheus::Counter>& discovery_errors;
    SeriesFamily<prometheus::Gauge>& reload_ok;
    SeriesFamily<prometheus::Gauge>& reload_time;
  };

 private:
  template <class Metric>
  SeriesFamily<Metric>& keep(const char* name, const char* help) {
    auto family = std::make_unique<SeriesFamily<Metric>>(name, help);
    SeriesFamily<Metric>& kept = *family;
    families_in_order_.push_back(std::move(family));
    return kept;
  }

  std::vector<std::unique_ptr<TextFamily>> families_in_order_;  // every family, in /metrics' order
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
