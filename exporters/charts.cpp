#include "exporters/charts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>

#include "exporters/landing_page.h"

namespace ghostwatch {
namespace {

// The lag chart's plot area inside its viewBox.
constexpr double kWidth = 320, kHeight = 96;
constexpr double kLeft = 48, kRight = 312, kTop = 8, kBottom = 74;

std::string printed(const char* format, double a, double b = 0, double c = 0) {
  char buf[96];
  std::snprintf(buf, sizeof buf, format, a, b, c);
  return buf;
}

// The top of the scale: 1, 2 or 5 times a power of ten, at or above the largest value (ms).
double nice_ceiling(double ms) {
  if (!(ms > 1)) return 1;
  const double power = std::pow(10, std::floor(std::log10(ms)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * power >= ms) return m * power;
  }
  return 10 * power;
}

std::string ms_text(double ms) {
  if (ms >= 10000) return printed("%.0f s", ms / 1000);
  if (ms >= 1000) return printed("%.1f s", ms / 1000);
  return printed(ms >= 10 ? "%.0f ms" : "%.1f ms", ms);
}

using Series = std::function<std::optional<double>(const HistoryPoint&)>;

// An SVG path through the points that have a value; a gap starts a new subpath. A lone point
// is a zero-length segment, which the round line cap draws as a dot.
std::string path_of(const std::vector<HistoryPoint>& points, const Series& value, double top_ms) {
  std::string d;
  bool drawing = false;
  const double step = (kRight - kLeft) / std::max<std::size_t>(points.size() - 1, 1);
  for (std::size_t i = 0; i < points.size(); ++i) {
    const std::optional<double> v = value(points[i]);
    if (!v) {
      drawing = false;
      continue;
    }
    const double x = kLeft + step * static_cast<double>(i);
    const double y = kBottom - (kBottom - kTop) * std::min(*v / top_ms, 1.0);
    d += printed(drawing ? "L%.1f %.1f" : "M%.1f %.1fh0", x, y);
    drawing = true;
  }
  return d;
}

std::optional<double> p50_ms(const HistoryPoint& p) {
  return std::isnan(p.p50) ? std::nullopt : std::optional<double>(p.p50 * 1000.0);
}
std::optional<double> p99_ms(const HistoryPoint& p) {
  return std::isnan(p.p99) ? std::nullopt : std::optional<double>(p.p99 * 1000.0);
}
std::optional<double> pending_ms(const HistoryPoint& p) {
  return p.seen ? std::optional<double>(p.pending * 1000.0) : std::nullopt;
}

std::string data_ms(const char* name, const std::optional<double>& ms) {
  if (!ms) return "";
  return std::string(" ") + name + "=\"" + printed("%.1f", *ms) + "\"";
}

}  // namespace

std::string lag_chart_svg(const std::string& probe, const TargetStatus& target) {
  const std::vector<HistoryPoint>& points = target.history;
  double largest = 0;
  int with_data = 0;
  std::optional<double> last_p50, last_p99;
  for (const HistoryPoint& p : points) {
    with_data += p.seen;
    for (const auto& v : {p99_ms(p), p50_ms(p), pending_ms(p)}) largest = std::max(largest, v.value_or(0));
    if (p50_ms(p)) last_p50 = p50_ms(p), last_p99 = p99_ms(p);
  }
  const double top = nice_ceiling(largest);
  std::string out = "<svg class=\"chart\" viewBox=\"0 0 " + printed("%.0f %.0f", kWidth, kHeight) +
                    "\" width=\"320\" height=\"96\" role=\"img\" data-probe=\"" + html_escape(probe) +
                    "\" data-target=\"" + html_escape(target.name) + "\" data-points=\"" + std::to_string(with_data) +
                    "\"" + data_ms("data-last-p50-ms", last_p50) + data_ms("data-last-p99-ms", last_p99) +
                    data_ms("data-max-ms", top) + ">\n";
  out += "<title>" + html_escape(probe + " / " + target.name) +
         ": lag p50 and p99 and pending age, last 15 minutes in 15 s steps</title>\n";
  // The frame, the scale and the time axis.
  out += printed("<path class=\"axis\" d=\"M%.0f %.0fV%.0f", kLeft, kTop, kBottom) + printed("H%.0f\"/>\n", kRight);
  out += printed("<text x=\"%.0f\" y=\"%.0f\" class=\"scale\">", kLeft - 4, kTop + 4) + ms_text(top) + "</text>\n";
  out += printed("<text x=\"%.0f\" y=\"%.0f\" class=\"scale\">0</text>\n", kLeft - 4, kBottom);
  out += printed("<text x=\"%.0f\" y=\"%.0f\" class=\"time\">-15 min</text>", kLeft, kBottom + 14) +
         printed("<text x=\"%.0f\" y=\"%.0f\" class=\"time end\">now</text>\n", kRight, kBottom + 14);
  if (with_data == 0) {
    out += printed("<text x=\"%.0f\" y=\"%.0f\" class=\"empty\">nothing seen yet</text>\n", (kLeft + kRight) / 2,
               (kTop + kBottom) / 2);
  }
  out += "<path class=\"pending\" d=\"" + path_of(points, pending_ms, top) + "\"/>\n";
  out += "<path class=\"p99\" d=\"" + path_of(points, p99_ms, top) + "\"/>\n";
  out += "<path class=\"p50\" d=\"" + path_of(points, p50_ms, top) + "\"/>\n";
  return out + "</svg>";
}

std::string stale_bars_svg(const std::string& probe, const ReadPathStatus& path) {
  constexpr double bar = 34, gap = 14, left = 8, top = 18, bottom = 96;
  const double width = left * 2 + static_cast<double>(path.delays.size()) * (bar + gap);
  std::string out = "<svg class=\"bars\" viewBox=\"0 0 " + printed("%.0f 124", width) + "\" width=\"" + printed("%.0f", width) +
                    "\" height=\"124\" role=\"img\" data-probe=\"" + html_escape(probe) + "\" data-read-path=\"" +
                    html_escape(path.name) + "\">\n<title>" + html_escape(probe + " / " + path.name) +
                    ": share of stale reads by delay after the write</title>\n";
  for (std::size_t i = 0; i < path.delays.size(); ++i) {
    const double x = left + static_cast<double>(i) * (bar + gap);
    const long answered = path.reads[i] - path.errors[i];
    out += printed("<rect class=\"track\" x=\"%.0f\" y=\"%.0f\" width=\"%.0f\"", x, top, bar) +
           printed(" height=\"%.0f\"/>", bottom - top);
    std::string label = "-";
    if (answered > 0) {
      const double ratio = static_cast<double>(path.stale[i]) / static_cast<double>(answered);
      const double h = std::max((bottom - top) * ratio, ratio > 0 ? 1.0 : 0.0);
      out += "<rect class=\"stale\" data-delay=\"" + html_escape(path.delays[i]) + "\" data-ratio=\"" +
             printed("%.4f", ratio) + "\" data-reads=\"" + std::to_string(answered) + "\"" +
             printed(" x=\"%.0f\" y=\"%.1f\" width=\"%.0f\"", x, bottom - h, bar) + printed(" height=\"%.1f\"/>", h);
      label = printed(ratio >= 0.1 || ratio == 0 ? "%.0f%%" : "%.1f%%", ratio * 100);
    }
    out += printed("<text x=\"%.0f\" y=\"%.0f\" class=\"value\">", x + bar / 2, top - 5) + label + "</text>";
    out += printed("<text x=\"%.0f\" y=\"%.0f\" class=\"delay\">", x + bar / 2, bottom + 14) + html_escape(path.delays[i]) +
           "</text>\n";
  }
  return out + "</svg>";
}

}  // namespace ghostwatch
