// Staleness SLOs: the `slos:` section of a config file and the Prometheus rules that follow from
// it (`ghostwatch rules`).
//
// The SLI is the share of a target's canaries seen within `threshold` of their commit ack;
// canaries never seen (timeouts) count as bad. It is read from the lag histogram's bucket at the
// threshold, which is why the threshold must be one of its boundaries. The rules aggregate away
// `instance` and `pod`, the labels that tell the agents of an HA pair apart, and keep every other
// label (`cluster` and other external labels), so that one problem yields one alert in a fleet.
#pragma once

#include <string>
#include <vector>

namespace ghostwatch {

class Cursor;

struct SloConfig {
  std::string name;
  std::string probe;          // exact probe name, or "" when probe_regex is used
  std::string probe_regex;    // RE2 regular expression, anchored as PromQL anchors =~
  std::string target_regex = ".+";
  double threshold_seconds = 0;
  double objective = 0;       // e.g. 0.999
  int window_days = 28;
};

// Parses `slos:` (a list). `probe_names`, when given, are the probes the config declares: an SLO
// naming another probe is an error. Throws ConfigError naming file:line:col and the key path.
std::vector<SloConfig> parse_slos(const Cursor& slos, const std::vector<std::string>* probe_names);

// An agent config with `slos:`, or a file with nothing but `slos:` (for the central Prometheus'
// rules, where no probe runs): the latter's SLOs are checked on their own.
std::vector<SloConfig> load_slos(const std::string& path);

// A Prometheus rules file: recording rules of the SLI over the burn-rate windows and the SLO's
// period, the error budget left, and the multi-window multi-burn-rate alerts (severity page and
// ticket). `source` is named in its header.
std::string render_slo_rules(const std::vector<SloConfig>& slos, const std::string& source);

// A number as Prometheus' text format writes it (the shortest text that reads back exactly):
// the `le` label of a histogram bucket.
std::string prometheus_number(double value);

}  // namespace ghostwatch
