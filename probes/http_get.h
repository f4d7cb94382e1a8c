// One HTTP GET with libcurl, for what the probes ask of HTTP servers (read paths of kind http,
// Patroni's REST API): deadlines, a bounded body, TLS verified against the system's CAs or a CA
// file, optional basic auth, and given up as soon as the caller stops.
#pragma once

#include <stop_token>
#include <string>

#include "common/clock.h"
#include "common/result.h"

namespace ghostwatch {

struct HttpGetOptions {
  Duration connect_timeout = std::chrono::seconds(5);
  Duration timeout = std::chrono::seconds(5);  // the whole request, connect included
  std::string ca_file;                         // "" = the system's CAs
  std::string username;                        // basic auth; "" = none
  std::string password;
};

struct HttpAnswer {
  long status = 0;
  std::string body;
};

// http:// and https:// only; a body past 1 MiB is refused. The error is curl's, secrets scrubbed.
Result<HttpAnswer> http_get(const std::string& url, const HttpGetOptions& options, std::stop_token stop);

}  // namespace ghostwatch
