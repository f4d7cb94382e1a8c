// The canary protocol's backend interface (DESIGN.md "The canary table"). A backend writes the
// canary row on the primary and reads it on a target; the replication probe does the timing.
// Implementations own their connections, connect lazily, and after a failure drop the broken
// connection so the next call reconnects (the probe paces retries with Backoff).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>

#include "common/result.h"
#include "probes/probe_config.h"

namespace ghostwatch {

struct CanaryAck {
  int64_t seq = 0;
  std::optional<uint64_t> position;  // the primary's log position at the write, if known
};

struct CanaryPoll {
  std::optional<int64_t> seq;        // nullopt: no canary row on the target (yet)
  std::optional<uint64_t> position;  // the target's replayed log position, if known
};

class CanaryWriter {
 public:
  virtual ~CanaryWriter() = default;
  // Creates the canary table when missing, bumps this (agent, probe)'s seq, returns after COMMIT.
  virtual Result<CanaryAck> write(std::stop_token stop) = 0;
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
  virtual std::unique_ptr<CanaryReader> reader(const TargetConfig& target) = 0;
};

}  // namespace ghostwatch
