// Typed probe configuration: what agent/config.cpp produces from YAML, after defaults and
// validation. Probes receive these structs and never see YAML or untyped strings.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"

namespace ghostwatch {

using namespace std::chrono_literals;

// A connection string and, when given by password_file, its password kept apart.
struct DsnConfig {
  std::string dsn;                      // after ${ENV} expansion; may hold a password
  std::optional<std::string> password;  // read from password_file
  std::optional<std::string> password_file;
  std::string redacted() const;         // for printing
};

struct TargetConfig {
  std::string name;
  DsnConfig dsn;
};

enum class ProbeKind { postgres, mysql };

struct ProbeConfig {
  std::string name;
  ProbeKind kind = ProbeKind::postgres;
  DsnConfig primary;
  std::vector<TargetConfig> targets;
  std::string schema = "ghostwatch";
  Duration interval = 1s;          // canary write period
  Duration poll_interval = 10ms;   // per-target poll period
  Duration timeout = 60s;          // a canary unseen this long is a timeout
  Duration connect_timeout = 5s;
  Duration query_timeout = 2s;
};

struct AgentConfig {
  std::string id;                          // default: the host name
  std::string listen = "127.0.0.1:9739";
  std::string log_level = "info";
};

struct Config {
  std::string source;  // the file it came from, for messages
  AgentConfig agent;
  std::vector<ProbeConfig> probes;
};

const char* to_string(ProbeKind kind);

}  // namespace ghostwatch
