#include "exporters/landing_page.h"

#include <cmath>
#include <cstdio>

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
    ".notready{background:#fff4d6;padding:.5em;border:1px solid #e0c060}";

std::string target_rows(const ProbeStatus& p) {
  std::string out;
  for (const TargetStatus& t : p.targets) {
    const char* state = !t.polled      ? "<td class=\"none\">not polled yet</td>"
                        : !t.up        ? "<td class=\"down\">DOWN</td>"
                        : t.is_primary ? "<td class=\"down\">PRIMARY (not a replica: its lag means nothing)</td>"
                                       : "<td class=\"up\">up</td>";
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
  out += probes_table(status);
  out += reconcilers_table(status);
  return out + "</body>\n</html>\n";
}

}  // namespace ghostwatch
