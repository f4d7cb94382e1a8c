// The landing page's charts as inline SVG: no script, no style sheet or font from elsewhere, so
// the page works where the agent runs (often without a way out to the internet).
#pragma once

#include <string>
#include <vector>

#include "exporters/lag_history.h"
#include "exporters/live_status.h"

namespace ghostwatch {

// A target's lag (p50, p99) and pending age over the history's window. The <svg> carries what
// it draws as data attributes (data-points: steps with data; data-last-p50-ms, data-last-p99-ms:
// the newest step with a lag; data-max-ms: the top of the scale) for tests and scrapers of the
// page.
std::string lag_chart_svg(const std::string& probe, const TargetStatus& target);

// A read path's stale-read ratio by delay after the write, one bar per delay (since the agent
// started): stale / (reads - errors), as the terminal view shows it.
std::string stale_bars_svg(const std::string& probe, const ReadPathStatus& path);

}  // namespace ghostwatch
