#include "exporters/landing_page.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "exporters/charts.h"

namespace ghostwatch {
namespace {

std::string ms_cell(const std::optional<double>& seconds) {
  if (!seconds) return "<td class=\"none\">-</td>";
  char buf[64];
  std::snprintf(buf, sizeof buf, "<td>%.1f</td>", *seconds * 1000);
  return buf;
}

std::string uptime(double seconds) {
  const long s = std::lround(seconds);
  char buf[64];
  if (s >= 86400) std::snprintf(buf, sizeof buf, "%ldd %ldh %ldm", s / 86400, s % 86400 / 3600, s % 3600 / 60);
  else if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh %ldm %lds", s / 3600, s % 3600 / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ldm %lds", s / 60, s % 60);
  return buf;
}

constexpr const char* kStyle =
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #ccc;padding:.3em .7em;text-align:right}"
    "th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}"
    ".up{color:#070}.down{color:#b00;font-weight:bold}.none{color:#888}"
    ".notready{background:#fff4d6;padding:.5em;border:1px solid #e0c060}"
    ".cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}"
    "figure{margin:0;border:1px solid #ddd;border-radius:4px;padding:.4em .6em;background:#fcfcfc}"
    "figcaption{font-size:.9em;margin-bottom:.2em}figcaption .meta{color:#666}"
    "svg text{font-size:10px;fill:#555}svg .scale{text-anchor:end}svg .end{text-anchor:end}"
    "svg .empty{text-anchor:middle;fill:#999}svg .value,svg .delay{text-anchor:middle}"
    ".axis{fill:none;stroke:#bbb}path.p50,path.p99,path.pending{fill:none;stroke-width:2;stroke-linecap:round;"
    "stroke-linejoin:round}path.p50{stroke:#1f77b4}path.p99{stroke:#ff7f0e}path.pending{stroke:#d62728;"
    "stroke-dasharray:4 3;stroke-width:1.5}rect.track{fill:#eee}rect.stale{fill:#d62728}"
    ".legend span{margin-right:1.2em}.legend i{display:inline-block;width:1.6em;height:3px;vertical-align:middle;"
    "margin-right:.3em}";

// The charts shown: the targets with the highest p99 first; a fleet's agent has hundreds, and
// the table below lists them all.
constexpr std::size_t kMostCharts = 48;

// A target's state as the table and the charts show it: a word and its style.
const char* state_class(const TargetStatus& t) {
  if (!t.polled) return "none";
  return !t.up || t.is_primary ? "down" : "up";
}
const char* state_word(const TargetStatus& t) {
  if (!t.polled) return "not polled yet";
  if (!t.up) return "DOWN";
  return t.is_primary ? "PRIMARY" : "up";
}

std::string target_rows(const ProbeStatus& p) {
  std::string out;
  for (const TargetStatus& t : p.targets) {
    const std::string state = "<td class=\"" + std::string(state_class(t)) + "\">" + state_word(t) +
                              (t.polled && t.up && t.is_primary ? " (not a replica: its lag means nothing)" : "") + "</td>";
    char pending[64], counts[64];
    std::snprintf(pending, sizeof pending, "<td>%.1f</td>", t.pending * 1000);
    std::snprintf(counts, sizeof counts, "<td>%ld</td><td>%ld</td><td>%ld</td>", t.samples, t.timeouts, t.errors);
    out += "<tr data-probe=\"" + html_escape(p.name) + "\" data-target=\"" + html_escape(t.name) + "\"><td>" +
           html_escape(p.name) + "</td><td>" + html_escape(t.name) + "</td>" + state + "<td class=\"role\">" +
           html_escape(t.role.empty() ? "-" : t.role) + "</td><td class=\"source\">" + html_escape(t.source) + "</td>" + ms_cell(t.last) + ms_cell(t.p99) + ms_cell(t.received_p50) +
           pending + counts + "</tr>\n";
    if (t.polled && !t.up && !t.last_error.empty()) {
      out += "<tr><td></td><td colspan=\"11\" class=\"down\">" + html_escape(t.last_error) + "</td></tr>\n";
    }
  }
  return out;
}

std::string probes_table(const StatusSnapshot& status) {
  std::string out =
      "<table id=\"targets\">\n<tr><th>probe</th><th>target</th><th>state</th><th>role</th><th>source</th><th>last lag ms</th><th>p99 ms</th>"
      "<th>received p50 ms</th><th>pending ms</th><th>canaries seen</th><th>timeouts</th><th>poll errors</th></tr>\n";
  for (const ProbeStatus& p : status.probes) out += target_rows(p);
  out += "</table>\n";
  for (const ProbeStatus& p : status.probes) {
    out += "<p>probe <b>" + html_escape(p.name) + "</b> (" + html_escape(p.kind) + "): " + std::to_string(p.writes_ok) +
           " canaries written, " + std::to_string(p.write_errors) + " write errors";
    if (p.write_errors > 0 && !p.last_write_error.empty()) out += "; last: " + html_escape(p.last_write_error);
    out += "</p>\n";
  }
  return out;
}

// "p50 201 ms · p99 205 ms" of the target's recent samples, under its name.
std::string latest_figures(const TargetStatus& t) {
  if (!t.p50 || !t.p99) return "";
  char buf[128];
  std::snprintf(buf, sizeof buf, "<br><span class=\"figures\">p50 %.1f ms &middot; p99 %.1f ms &middot; pending %.0f ms</span>",
                *t.p50 * 1000, *t.p99 * 1000, t.pending * 1000);
  return buf;
}

std::string lag_charts(const StatusSnapshot& status) {
  std::vector<std::pair<const ProbeStatus*, const TargetStatus*>> shown;
  for (const ProbeStatus& p : status.probes) {
    for (const TargetStatus& t : p.targets) shown.emplace_back(&p, &t);
  }
  if (shown.empty()) return "";
  std::stable_sort(shown.begin(), shown.end(), [](const auto& a, const auto& b) {
    return a.second->p99.value_or(-1) > b.second->p99.value_or(-1);
  });
  const std::size_t total = shown.size();
  if (shown.size() > kMostCharts) shown.resize(kMostCharts);
  std::string out =
      "<p class=\"legend\"><span><i style=\"background:#1f77b4\"></i>lag p50</span><span><i "
      "style=\"background:#ff7f0e\"></i>lag p99</span><span><i style=\"background:#d62728\"></i>pending (age of the "
      "oldest canary not seen yet)</span>last 15 minutes, 15 s a step</p>\n";
  if (total > shown.size()) {
    out += "<p>The " + std::to_string(shown.size()) + " targets with the highest p99 of " + std::to_string(total) +
           "; the table lists all.</p>\n";
  }
  out += "<div class=\"cards\" id=\"lag-charts\">\n";
  for (const auto& [p, t] : shown) {
    out += "<figure class=\"target\"><figcaption><b>" + html_escape(p->name) + " / " + html_escape(t->name) +
           "</b> <span class=\"" + state_class(*t) + "\">" + state_word(*t) + "</span> <span class=\"meta\">" +
           html_escape(t->role.empty() ? "role unknown" : t->role) + " &middot; " + html_escape(t->source) + "</span>" +
           latest_figures(*t) + "</figcaption>\n" + lag_chart_svg(p->name, *t) + "</figure>\n";
  }
  return out + "</div>\n";
}

std::string stale_read_charts(const StatusSnapshot& status) {
  std::string out;
  for (const ProbeStatus& p : status.probes) {
    for (const ReadPathStatus& r : p.read_paths) {
      out += "<figure class=\"read-path\"><figcaption><b>" + html_escape(p.name) + " / " + html_escape(r.name) +
             "</b> <span class=\"meta\">stale reads by delay after the write</span></figcaption>\n" +
             stale_bars_svg(p.name, r) + "</figure>\n";
    }
  }
  if (out.empty()) return "";
  return "<h2>Read-your-writes</h2>\n<p>The share of read-backs, issued that long after the write's ack through "
         "each read path, that did not show the write yet (since the agent started; errors are not counted).</p>\n"
         "<div class=\"cards\" id=\"stale-reads\">\n" +
         out + "</div>\n";
}

std::string reconcilers_table(const StatusSnapshot& status) {
  if (status.reconcilers.empty()) return "";
  std::string out =
      "<h2>Cache reconciliation</h2>\n<table id=\"reconcilers\">\n<tr><th>probe</th><th>cache</th><th>entries checked"
      "</th><th>consistent</th><th>stale</th><th>ahead</th><th>orphan</th><th>sweeps failed</th></tr>\n";
  for (const ReconcileStatus& r : status.reconcilers) {
    out += "<tr><td>" + html_escape(r.name) + "</td><td>" + html_escape(r.target) + "</td>";
    if (r.last) {
      char cells[256];
      std::snprintf(cells, sizeof cells, "<td>%ld</td><td>%.4f%%</td><td>%ld</td><td>%ld</td><td>%ld</td>",
                    r.last->checked, r.last->consistent_ratio * 100, r.last->stale, r.last->ahead, r.last->orphan);
      out += cells;
    } else {
      out += "<td class=\"none\" colspan=\"5\">no sweep finished yet</td>";
    }
    out += "<td>" + std::to_string(r.sweeps_failed) + "</td></tr>\n";
  }
  return out + "</table>\n";
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string render_landing_page(const AgentInfo& agent, const StatusSnapshot& status) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta http-equiv=\"refresh\" content=\"5\">\n";
  out += "<title>ghostwatch " + html_escape(agent.agent_id) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  out += "<h1>ghostwatch</h1>\n<p>version <span id=\"version\">" + html_escape(agent.version) +
         "</span> &middot; agent <span id=\"agent-id\">" + html_escape(agent.agent_id) +
         "</span> &middot; up <span id=\"uptime\">" + uptime(agent.uptime_seconds) + "</span></p>\n";
  out += "<p><a href=\"metrics\">/metrics</a> &middot; <a href=\"healthz\">/healthz</a> &middot; "
         "<a href=\"readyz\">/readyz</a> &middot; <a href=\"config\">/config</a></p>\n";
  const std::string waiting = not_ready_reasons(status);
  if (!waiting.empty()) out += "<pre class=\"notready\">not ready:\n" + html_escape(waiting) + "</pre>\n";
  out += "<h2>Replication and cache visibility</h2>\n";
  out += "<p>Lag is measured from the canary's commit on the primary to its first sight on the target, on this "
         "agent's clock; - means no canary was seen yet. Received is when the canary's commit position reached "
         "the replica (WAL receiver, IO thread): received small and lag large means the replay is late, both "
         "large the network or the primary.</p>\n";
  out += lag_charts(status);
  out += probes_table(status);
  out += stale_read_charts(status);
  out += reconcilers_table(status);
  return out + "</body>\n</html>\n";
}

}  // namespace ghostwatch
