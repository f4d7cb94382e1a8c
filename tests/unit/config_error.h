// For config tests: the message of the ConfigError that parsing `text` raises.
#pragma once

#include <string>

#include "agent/config.h"

namespace ghostwatch {

// "" when the text parses.
inline std::string error_of(const std::string& text) {
  try {
    parse_config(text, "cfg.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace ghostwatch
