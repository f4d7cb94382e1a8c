#include "agent/slo.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

#include "agent/config.h"
#include "agent/duration.h"
#include "agent/yaml_cursor.h"
#include "exporters/prometheus_sink.h"

namespace ghostwatch {
namespace {

// The SRE workbook's multi-window, multi-burn-rate alerts: a burn rate sustained over the long
// window, and still going on over the short one (so that the alert resolves soon after the burn
// stops). For a 30-day period, 14.4x over 1h spends 2% of the budget, 6x over 6h 5%, 3x over 1d
// 10%, 1x over 3d 10%.
struct BurnWindow {
  const char* long_window;
  const char* short_window;
  const char* factor;
};
struct BurnAlert {
  const char* name;
  const char* severity;
  const char* for_duration;
  BurnWindow windows[2];
};
constexpr BurnAlert kBurnAlerts[] = {
    {"GhostwatchSLOFastBurn", "page", "2m", {{"1h", "5m", "14.4"}, {"6h", "30m", "6"}}},
    {"GhostwatchSLOSlowBurn", "ticket", "15m", {{"1d", "2h", "3"}, {"3d", "6h", "1"}}},
};
constexpr const char* kRateWindows[] = {"5m", "30m", "1h", "2h", "6h", "1d", "3d"};
constexpr double kFastestBurn = 14.4;
constexpr int kMinWindowDays = 7;
constexpr int kMaxWindowDays = 366;

std::string promql_string(const std::string& text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '\\' || ch == '"') out += '\\';
    out += ch;
  }
  return out + "\"";
}

// PromQL matches with RE2, which has no lookaround and no backreferences; std::regex catches
// the rest of what would not compile.
void check_regex(const Cursor& at) {
  const std::string text = at.as_string();
  if (text.empty()) at.fail("expected a regular expression, e.g. \"replica-.*\"");
  if (text.find('\n') != std::string::npos) at.fail("a regular expression on one line is expected");
  static const std::regex unsupported(R"(\(\?(=|!|<=|<!)|\\[1-9])");
  if (std::regex_search(text, unsupported)) {
    at.fail("Prometheus' regular expressions (RE2) have no lookaround and no backreferences: '" + text + "'");
  }
  try {
    std::regex check(text);
  } catch (const std::regex_error&) {
    at.fail("not a valid regular expression: '" + text + "'");
  }
}

// A bucket boundary or threshold in seconds as the config writes durations ("250ms").
std::string duration_text(double seconds) {
  return format_duration(Duration(static_cast<Duration::rep>(std::llround(seconds * 1e9))));
}

std::string bucket_list() {
  std::string list;
  for (double b : lag_buckets()) list += (list.empty() ? "" : ", ") + duration_text(b);
  return list;
}

double parse_threshold(const Cursor& at) {
  const Duration d = at.as_duration();
  const double seconds = std::chrono::duration<double>(d).count();
  for (double b : lag_buckets()) {
    if (std::fabs(b - seconds) < 1e-9) return b;
  }
  at.fail(at.node().Scalar() + " is not a bucket boundary of ghostwatch_visibility_lag_seconds, so its share "
          "cannot be counted; use one of: " + bucket_list());
}

double parse_objective(const Cursor& at) {
  const double o = at.as_double();
  if (!(o > 0 && o < 1)) at.fail("expected a share between 0 and 1, e.g. 0.999 (99.9% of canaries in time)");
  if (kFastestBurn * (1 - o) >= 1) {
    char min[32];
    std::snprintf(min, sizeof min, "%.4f", 1 - 1 / kFastestBurn);
    at.fail("an objective of " + at.node().Scalar() + " leaves an error budget so large that the page alert's " +
            "14.4x burn rate would need more than 100% bad canaries; use an objective above " + min);
  }
  return o;
}

int parse_window(const Cursor& at) {
  static const std::regex days(R"(^([0-9]{1,3})d$)");
  const std::string text = at.as_string();
  std::smatch m;
  if (!std::regex_match(text, m, days)) at.fail("expected whole days, e.g. 28d, got '" + text + "'");
  const int n = std::stoi(m[1].str());
  if (n < kMinWindowDays || n > kMaxWindowDays) {
    at.fail("the period must be " + std::to_string(kMinWindowDays) + "d to " + std::to_string(kMaxWindowDays) +
            "d (the slow-burn alert looks back 3 days), got " + text);
  }
  return n;
}

SloConfig parse_slo(const Cursor& at, const std::vector<std::string>* probe_names) {
  at.check_keys({"name", "probe", "probe_regex", "target_regex", "threshold", "objective", "window"});
  SloConfig s;
  const Cursor name = at.require("name");
  s.name = name.as_string();
  static const std::regex valid_name(R"(^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$)");
  if (!std::regex_match(s.name, valid_name)) {
    name.fail("expected 1-64 letters, digits, '_', '.' or '-' (it becomes the slo label), got '" + s.name + "'");
  }
  if (at.has("probe") == at.has("probe_regex")) at.fail("give exactly one of probe (a name) and probe_regex");
  if (at.has("probe")) {
    s.probe = at.child("probe").as_string();
    if (probe_names && std::find(probe_names->begin(), probe_names->end(), s.probe) == probe_names->end()) {
      at.child("probe").fail("no probe named '" + s.probe + "' in this config");
    }
  } else {
    check_regex(at.child("probe_regex"));
    s.probe_regex = at.child("probe_regex").as_string();
  }
  if (at.has("target_regex")) {
    check_regex(at.child("target_regex"));
    s.target_regex = at.child("target_regex").as_string();
  }
  s.threshold_seconds = parse_threshold(at.require("threshold"));
  s.objective = parse_objective(at.require("objective"));
  if (at.has("window")) s.window_days = parse_window(at.child("window"));
  return s;
}

std::string indent(const std::string& text, const std::string& by) {
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out += by + line + "\n";
  return out;
}

std::string selector(const SloConfig& s) {
  const std::string probe =
      s.probe.empty() ? "probe=~" + promql_string(s.probe_regex) : "probe=" + promql_string(s.probe);
  return probe + ",target=~" + promql_string(s.target_regex);
}

// Bad canaries (late or never seen) / all canaries over `range`; no series while none completed.
std::string error_ratio(const SloConfig& s, const std::string& range) {
  const std::string sel = selector(s);
  const std::string seen = "sum without (instance, pod) (rate(ghostwatch_visibility_lag_seconds_count{" + sel + "}[" +
                           range + "]))";
  const std::string total = "(\n  " + seen + "\n  + (sum without (instance, pod) (rate(ghostwatch_visibility_timeouts_total{" +
                            sel + "}[" + range + "])) or " + seen + " * 0)\n)";
  const std::string in_time = "sum without (instance, pod, le) (rate(ghostwatch_visibility_lag_seconds_bucket{" + sel +
                              ",le=\"" + prometheus_number(s.threshold_seconds) + "\"}[" + range + "]))";
  return "(\n" + indent(total, "  ") + "  - " + in_time + "\n)\n/\n(" + total + " > 0)";
}

std::string recording_rule(const std::string& record, const std::string& expr, const SloConfig& s) {
  return "      - record: " + record + "\n        expr: |\n" + indent(expr, "          ") +
         "        labels:\n          slo: " + s.name + "\n";
}

std::string ratio_name(const std::string& window) { return "ghostwatch:slo_visibility_errors:ratio_rate" + window; }

std::string burn_condition(const SloConfig& s, const BurnWindow& w) {
  const std::string slo = "{slo=" + promql_string(s.name) + "}";
  const std::string budget = "(" + std::string(w.factor) + " * (1 - " + prometheus_number(s.objective) + "))";
  return "(\n  " + ratio_name(w.long_window) + slo + " > " + budget + "\n  and\n  " + ratio_name(w.short_window) +
         slo + " > " + budget + "\n)";
}

std::string percent(double share) {
  char text[32];
  std::snprintf(text, sizeof text, "%g%%", share * 100);
  return text;
}

std::string alert_rule(const SloConfig& s, const BurnAlert& a) {
  const BurnWindow& first = a.windows[0];
  const BurnWindow& second = a.windows[1];
  std::string out = "      - alert: " + std::string(a.name) + "\n";
  out += "        # " + std::string(first.factor) + "x the budget's rate over " + first.long_window + " and " +
         first.short_window + ", or " + second.factor + "x over " + second.long_window + " and " + second.short_window +
         ".\n";
  out += "        expr: |\n" + indent(burn_condition(s, first) + "\nor\n" + burn_condition(s, second), "          ");
  out += "        for: " + std::string(a.for_duration) + "\n";
  out += "        labels:\n          severity: " + std::string(a.severity) + "\n          slo: " + s.name + "\n";
  out += "        annotations:\n";
  out += "          summary: \"SLO " + s.name + ": {{ $labels.target }} burns its error budget " +
         (a.severity == std::string("page") ? "fast" : "slowly") + "\"\n";
  out += "          description: \"Probe {{ $labels.probe }}{{ with $labels.cluster }} in cluster {{ . }}{{ end }}: " +
         std::string("{{ $value | humanizePercentage }} of the canaries of the last ") + first.long_window + " (or " +
         second.long_window + ") were not visible on {{ $labels.target }} within " + duration_text(s.threshold_seconds) +
         " or never; the objective allows " + percent(1 - s.objective) + " over " + std::to_string(s.window_days) +
         " days. Budget left: ghostwatch:slo_error_budget_remaining:ratio{slo=\\\"" + s.name + "\\\"}.\"\n";
  return out;
}

std::string slo_groups(const SloConfig& s) {
  const std::string period = std::to_string(s.window_days) + "d";
  const std::string slo = "{slo=" + promql_string(s.name) + "}";
  std::string out;
  out += "  # SLO " + s.name + ": " + percent(s.objective) + " of the canaries of probe " +
         (s.probe.empty() ? "=~ " + s.probe_regex : s.probe) + " visible on each target =~ " + s.target_regex +
         " within " + duration_text(s.threshold_seconds) +
         " of their commit, over " + period + "; timeouts count as late.\n";
  out += "  - name: ghostwatch.slo." + s.name + ".sli\n    rules:\n";
  for (const char* w : kRateWindows) out += recording_rule(ratio_name(w), error_ratio(s, w), s);
  // The period's ratio over its whole range is the costly one: evaluated once a minute.
  out += "  - name: ghostwatch.slo." + s.name + ".budget\n    interval: 1m\n    rules:\n";
  out += recording_rule("ghostwatch:slo_visibility_errors:ratio_period", error_ratio(s, period), s);
  out += recording_rule("ghostwatch:slo_error_budget_remaining:ratio",
                        "1 - ghostwatch:slo_visibility_errors:ratio_period" + slo + " / (1 - " +
                            prometheus_number(s.objective) + ")",
                        s);
  out += recording_rule("ghostwatch:slo_objective:ratio", "vector(" + prometheus_number(s.objective) + ")", s);
  out += "  - name: ghostwatch.slo." + s.name + ".alerts\n    rules:\n";
  for (const BurnAlert& a : kBurnAlerts) out += alert_rule(s, a);
  return out;
}

std::string file_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::vector<SloConfig> parse_slos(const Cursor& slos, const std::vector<std::string>* probe_names) {
  std::vector<SloConfig> out;
  if (!slos.node().IsDefined() || slos.node().IsNull()) return out;
  slos.expect_sequence();
  std::set<std::string> names;
  for (std::size_t i = 0; i < slos.node().size(); ++i) {
    const Cursor item = slos.item(i);
    item.expect_map();
    out.push_back(parse_slo(item, probe_names));
    if (!names.insert(out.back().name).second) item.child("name").fail("duplicate SLO name '" + out.back().name + "'");
  }
  return out;
}

std::vector<SloConfig> load_slos(const std::string& path) {
  const std::string text = read_config_file(path, "config file");
  const YAML::Node root = load_yaml(text, path);
  const Cursor top(path, root, "");
  if (!root.IsDefined() || root.IsNull()) top.fail("the file is empty");
  top.expect_map();
  // An agent config is checked whole, its SLOs' probes against its probes (parse_config).
  if (top.has("probes")) parse_config(text, path);
  else top.check_keys({"slos"});
  if (!top.has("slos")) top.fail("no slos: to make rules for (see docs/guides/fleet.md, \"Staleness SLOs\")");
  return parse_slos(top.child("slos"), nullptr);
}

std::string render_slo_rules(const std::vector<SloConfig>& slos, const std::string& source) {
  std::string out = "# Staleness SLO rules generated by `ghostwatch rules` from " + file_name(source) +
                    ": regenerate rather than edit.\n"
                    "# ghostwatch:slo_visibility_errors:ratio_rate<window> is the share of canaries late or never "
                    "seen;\n"
                    "# the sums drop instance and pod (the agents of an HA pair) and keep every other label.\n"
                    "groups:\n";
  for (const SloConfig& s : slos) out += slo_groups(s);
  return out;
}

std::string prometheus_number(double value) {
  char text[40];
  const auto end = std::to_chars(text, text + sizeof text, value).ptr;
  return std::string(text, end);
}

}  // namespace ghostwatch
