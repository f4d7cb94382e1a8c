// Loading the YAML config into typed structs (probes/probe_config.h).
//
// Parsing is strict: an unknown key, a wrong type, a bad duration or a missing field raises
// ConfigError naming the file, line, column and key path (e.g. probes[0].interval). Order of
// work: parse -> expand ${ENV} -> read password files -> defaults -> validate.
#pragma once

#include <stdexcept>
#include <string>

#include "probes/probe_config.h"

namespace ghostwatch {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads and validates a config file. Throws ConfigError.
Config load_config(const std::string& path);
// Same from text; `source` names it in messages.
Config parse_config(const std::string& text, const std::string& source);

// The read delays a probe without read paths is compared at (its report's strategies): the
// read_delays default.
std::vector<ReadDelay> default_read_pattern();

// The effective config as YAML, with every DSN redacted.
std::string render_config(const Config& config);

// The DSNs that ask for TLS without verifying the server (sslmode=require without sslrootcert,
// ssl-mode=required without ssl-ca), or that name a certificate or key file this process cannot
// read: "probes[0].primary: sslmode=require encrypts but ...". Warnings, not errors: such a
// connection is encrypted, only not safe from an impostor; and check-config may be run by
// another user than the service's.
std::vector<std::string> tls_warnings(const Config& config);

// The certificate, key and CA files a probe's (or reconciler's) connections read: DSN options
// (sslrootcert, sslcert, sslkey; ssl-ca, ssl-cert, ssl-key) and caches' tls files. Their
// digest (tls_files_digest) is taken when the config loads, so that a reload tells a rotated
// certificate behind an unchanged config from no change at all.
std::vector<std::string> tls_files(const ProbeConfig& probe);
std::vector<std::string> tls_files(const ReconcileConfig& reconciler);

}  // namespace ghostwatch
