// The HTML page the agent serves on `/`: who it is and what it sees now, per probe and target,
// self-contained (no scripts, styles or fonts from elsewhere), refreshed by the browser.
#pragma once

#include <string>

#include "exporters/live_status.h"

namespace ghostwatch {

struct AgentInfo {
  std::string version;
  std::string agent_id;
  double uptime_seconds = 0;
};

std::string render_landing_page(const AgentInfo& agent, const StatusSnapshot& status);

// Escapes text for HTML element content and attribute values.
std::string html_escape(const std::string& text);

}  // namespace ghostwatch
