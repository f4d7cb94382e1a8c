// ReadPath: one way a user reads the canary back (DESIGN.md §3) - a load balancer or pooler
// DSN, the probe's replicas chosen by a policy, or an HTTP endpoint of the application. A read
// returns the seq it saw; the read-back scheduler decides whether that was stale.
// Implementations are thread-safe: several workers read through one path at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "common/result.h"
#include "probes/canary_backend.h"

namespace ghostwatch {

class ReadPath {
 public:
  virtual ~ReadPath() = default;
  // The canary's seq as this path shows it; nullopt when the path shows no canary row.
  // `written` is the seq just written (an HTTP path may put it in its URL).
  virtual Result<std::optional<int64_t>> read(int64_t written, std::stop_token stop) = 0;
  // A session path (read_paths[].session) writes its own marker and reads it back through one
  // session: a new one here; null for paths that only read the probe's canary.
  virtual std::unique_ptr<CanarySession> open_session() { return nullptr; }
  // Whether a session outlives its cycle (connection: pool) or is closed after it (per_read).
  virtual bool keeps_sessions() const { return false; }
};

}  // namespace ghostwatch
