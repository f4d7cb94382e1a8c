// The canary protocol's backend interface (DESIGN.md "The canary table"). A backend writes the
// canary row on the primary and reads it on a target; the replication probe does the timing.
// Implementations own their connections, connect lazily, and after a failure drop the broken
// connection so the next call reconnects (the probe paces retries with Backoff).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "common/result.h"
#include "exporters/sink.h"
#include "probes/probe_config.h"

namespace ghostwatch {

// A log position in the backend's own text form (a PostgreSQL LSN, a GTID list or set).
using Position = std::string;

// What a target's server says its replication lag is. `refreshed` is false when this poll did
// not ask (a backend may ask less often than it polls); `seconds` is nullopt when the server
// answers NULL or nothing (replication stopped, not a replica).
struct ReportedLag {
  bool refreshed = false;
  std::optional<double> seconds;
};

struct CanaryPoll {
  std::optional<int64_t> seq;        // nullopt: no canary row on the target (yet)
  std::optional<Position> position;  // the target's replayed/applied position, if known
  ReportedLag reported;
  // An invalidated cache: the old value is gone, so every canary acked before the poll was
  // sent counts as seen (seq is then ignored).
  bool everything_acked_before_sent = false;
  // The target accepts writes (PostgreSQL: not in recovery): after a failover it is a primary,
  // and its lag of ~0 says nothing about replication. nullopt when the backend cannot tell.
  std::optional<bool> is_primary;
};

class CanaryWriter {
 public:
  virtual ~CanaryWriter() = default;
  // Creates the canary table when missing, bumps this (agent, probe)'s seq and returns it once
  // the COMMIT is acknowledged. Does nothing else, so the caller can time the ack.
  virtual Result<int64_t> write(std::stop_token stop) = 0;
  // The primary's position just after the last write (may cost a round trip; called after the
  // ack was timed). nullopt when the backend cannot tell.
  virtual Result<std::optional<Position>> position(std::stop_token stop) = 0;
};

class CanaryReader {
 public:
  virtual ~CanaryReader() = default;
  virtual Result<CanaryPoll> poll(std::stop_token stop) = 0;
};

class CanaryBackend {
 public:
  virtual ~CanaryBackend() = default;
  virtual std::unique_ptr<CanaryWriter> writer() = 0;
  // `report_lag`: also ask the server for its own lag figure (replication targets do; read
  // paths, which only want the canary, do not).
  virtual std::unique_ptr<CanaryReader> reader(const TargetConfig& target, bool report_lag = true) = 0;
  // The unit of position_behind(): WAL bytes, or transactions.
  virtual PositionUnit position_unit() const = 0;
  // How far `target` is behind `primary`, never negative; nullopt when it cannot be computed.
  virtual std::optional<double> position_behind(const Position& primary, const Position& target) const = 0;
};

}  // namespace ghostwatch
