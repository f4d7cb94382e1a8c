// The web config file: TLS and basic auth for the agent's HTTP endpoints, in the format of the
// Prometheus exporter-toolkit (https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md):
//
//   tls_server_config:
//     cert_file: server.crt        # relative paths resolve against the web config's directory
//     key_file: server.key
//     min_version: TLS12           # optional: TLS12 (default) or TLS13
//   basic_auth_users:
//     prometheus: $2y$10$...       # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':\n')
//   unauthenticated_paths: [/healthz]   # ghostwatch's addition: only /healthz and /readyz may be listed
//
// Named by agent.web_config or `run --web-config`. Parsed strictly, with file:line:col errors.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>

#include "exporters/http_server.h"

namespace ghostwatch {

struct WebConfig {
  std::string source;  // the file it came from
  std::optional<TlsFiles> tls;
  std::map<std::string, std::string> users;  // name -> bcrypt hash
  std::set<std::string> unauthenticated_paths;
};

// Reads and validates a web config file (certificate and key readable, hashes bcrypt). Throws
// ConfigError.
WebConfig load_web_config(const std::string& path);
WebConfig parse_web_config(const std::string& text, const std::string& source);

// Checks HTTP basic auth credentials against bcrypt hashes with the system's crypt(3)
// (libxcrypt). A bcrypt check costs tens of milliseconds by design, and Prometheus scrapes every
// few seconds with the same credentials, so verified credentials are remembered as a keyed
// SHA-256 digest (never the password itself). Thread-safe.
class BasicAuth {
 public:
  explicit BasicAuth(std::map<std::string, std::string> users);
  bool enabled() const { return !users_.empty(); }
  // `authorization`: the Authorization header's value ("Basic <base64>").
  bool check(std::string_view authorization) const;

 private:
  bool verify(const std::string& user, const std::string& password) const;
  std::string digest(const std::string& user, const std::string& password) const;

  std::map<std::string, std::string> users_;
  std::string key_;  // random, per process: the cache's digests mean nothing elsewhere
  mutable std::mutex mu_;
  mutable std::unordered_set<std::string> verified_;
};

// What the HTTP guard applies to each request: credentials unless the path is exempt.
struct WebAccess {
  explicit WebAccess(const WebConfig& config) : auth(config.users), open_paths(config.unauthenticated_paths) {}
  // nullopt: go on; otherwise the 401 to send.
  std::optional<HttpResponse> refuse(const HttpRequest& request) const;
  BasicAuth auth;
  std::set<std::string> open_paths;
};

}  // namespace ghostwatch
