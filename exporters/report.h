// ReportSink: collects a one-shot run's observations and renders the report of
// `ghostwatch probe` as a table or as JSON (the JSON shape is documented in docs/reference/cli.md and is
// a stable interface: fields are added, never renamed or removed).
#pragma once

#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "exporters/sink.h"
#include "exporters/strategies.h"

namespace ghostwatch {

struct TargetSummary {
  std::string name;
  int samples = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0;  // seconds
  int timeouts = 0;
  int errors = 0;
  int polls = 0;
  double resolution = 0;  // median width of the samples' visibility windows, seconds
  bool reachable = false;  // at least one poll succeeded and the last one did
  std::optional<bool> is_primary;  // last known: the target accepts writes itself
  std::string source = "static";   // "static" (the config) or its discovery source
  std::string role;                // shown_role(): "" while unknown
  std::string last_error;  // redacted
  // What the server itself reported as its lag (Seconds_Behind_Master, replay timestamp age).
  int reported_samples = 0;
  double reported_p50 = 0, reported_max = 0;  // seconds
  // When the canary's commit position was received (before being applied); none for caches.
  int received_samples = 0;
  double received_p50 = 0, received_p99 = 0;  // seconds
  double received_resolution = 0;  // median width of the received samples' windows, seconds
};

struct DelaySummary {
  std::string delay;  // as configured, e.g. "250ms"
  long reads = 0, stale = 0, errors = 0, skipped = 0;
  double stale_ratio = 0;           // stale / (reads - errors); 0 when nothing was read
  double ci_low = 0, ci_high = 1;   // Wilson 95% interval of the stale ratio
};

struct ReadPathSummary {
  std::string name;
  std::vector<DelaySummary> delays;  // ascending delay
  double offset_p50 = 0, offset_p99 = 0, offset_max = 0;  // seconds late against the plan
  std::optional<std::string> recommended;  // shortest delay from which on the stale ratio <= target
  bool answered = false;                   // at least one read did not fail
  std::string last_error;                  // redacted
  // A session path's own marker writes (its reads count from their acks).
  bool session = false;
  long writes_ok = 0, write_errors = 0;
  double write_p50 = 0, write_p99 = 0;  // seconds
};

struct ProbeSummary {
  std::string name;
  std::string kind;
  int writes_ok = 0;
  int write_errors = 0;
  double write_p50 = 0, write_p99 = 0;  // seconds
  std::string last_write_error;
  std::vector<TargetSummary> targets;
  std::vector<ReadPathSummary> read_paths;
  double stale_target = 0.001;
  // mode: position: the "canaries" are samples of the primary's position that advanced, so none
  // at all is an idle primary, not a failure.
  bool position_mode = false;
  // The read-your-writes strategies compared on this run's lags (nullopt without a sample), for
  // reads at `read_delays` after the write and a wait budget of `wait_budget` seconds.
  std::optional<StrategyComparison> strategies;
  std::vector<std::pair<std::string, double>> read_delays;
  double wait_budget = 0.1;
};

// Seconds (or ratios) rounded to microseconds for JSON: finer digits are noise, and stable
// output diffs well. `rounded_or_null`: null for a figure that was not observed, never 0.
double rounded(double value);
nlohmann::json rounded_or_null(const std::optional<double>& value);

// What the report needs to know of a probe beyond its observations.
struct ReportProbeOptions {
  double stale_target = 0.001;
  bool position_mode = false;
  std::set<std::string> caches{};  // targets that are caches, not replicas
  std::vector<std::pair<std::string, double>> read_delays{};  // label, seconds
  double wait_budget = 0.1;  // seconds
};

class ReportSink final : public ObservationSink {
 public:
  // `options`: per probe name (a probe without gets the defaults).
  explicit ReportSink(std::map<std::string, ReportProbeOptions> options = {}) : options_(std::move(options)) {}
  std::shared_ptr<ProbeSink> probe(const std::string& name, const std::string& kind) override;

  std::vector<ProbeSummary> summarize() const;
  // One line per probe for the progress display.
  std::string progress() const;

  struct ProbeState;

 private:
  mutable std::mutex mu_;
  std::map<std::string, ReportProbeOptions> options_;
  std::vector<std::shared_ptr<ProbeState>> probes_;
};

// 0 when every target was reachable and saw every canary in time; 1 otherwise (any timeout,
// an unreachable target, a read path on which every read failed, or no canary written).
int report_exit_code(const std::vector<ProbeSummary>& probes);

nlohmann::json report_json(const std::vector<ProbeSummary>& probes);
std::string report_table(const std::vector<ProbeSummary>& probes);

}  // namespace ghostwatch
