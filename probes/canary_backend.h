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
#include <vector>

#include "common/clock.h"
#include "common/resolver.h"
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
  // What the target has received, applied or not (PostgreSQL: the WAL receiver's flushed LSN;
  // MariaDB: the IO thread's GTID position; MySQL: the retrieved and executed sets), if known.
  std::optional<Position> received;
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
  // The position of the last write's own transaction, as the last position() call learnt it,
  // for a server-side wait. nullopt when the backend cannot tell.
  virtual std::optional<Position> canary_position() const { return std::nullopt; }
  // Writes to another primary from the next write on (discovery found a new leader), keeping the
  // seq it has reached: seq never goes back, whatever the new primary's row says. An error when
  // the writer cannot (mode: position samples).
  virtual Status retarget(const DsnConfig& primary) {
    (void)primary;
    return Error{"this probe's writer cannot change its primary while it runs"};
  }
};

// The longest single server-side wait a probe asks for; it asks again after one passes (the
// target's health poll goes between). Not a whole number of seconds: MASTER_DELAY is one, and a
// renewal falling on the moment the delayed replica applies the canary would widen that sample's
// window by the renewal's round trips.
inline constexpr Duration kLongestServerWait = std::chrono::milliseconds(1370);

// A server-side wait on a target for a position (wait: server), on a connection of its own.
struct WaitOutcome {
  bool reached = false;     // false: `limit` passed first
  Duration round_trip{0};   // of a trivial statement just before the wait, on the same connection
};

class PositionWaiter {
 public:
  virtual ~PositionWaiter() = default;
  // Blocks until the target has applied `position` or `limit` passes.
  virtual Result<WaitOutcome> wait(const Position& position, Duration limit, std::stop_token stop) = 0;
};

class CanaryReader {
 public:
  virtual ~CanaryReader() = default;
  virtual Result<CanaryPoll> poll(std::stop_token stop) = 0;
  // While a canary's position is not yet known to be received there, the probe asks every poll
  // for the received position, which may cost a backend a statement it otherwise makes once a
  // second (MySQL's SHOW REPLICA STATUS).
  virtual void want_received(bool) {}
};

// A session read path's connection (read_paths[].session): it writes the path's own marker row
// and reads it back on the same connection, as an application that writes and reads through one
// pooled connection does; a middleware's session guarantee (pgpool-II's
// disable_load_balance_on_write) is kept, or not, there. Runs with the probe's session_settings.
class CanarySession {
 public:
  virtual ~CanarySession() = default;
  // Connects (and runs the session settings) unless connected, so that the write's timing is the
  // write's alone.
  virtual Status open(std::stop_token stop) = 0;
  // Upserts the marker row and returns its seq once the commit is acknowledged.
  virtual Result<int64_t> write(std::stop_token stop) = 0;
  // The marker's seq as this connection shows it now; nullopt when it shows no row.
  virtual Result<std::optional<int64_t>> read(std::stop_token stop) = 0;
};

// One step of a poll driven by an event loop (PollLoop): either the poll is over (`result`), or
// it waits for its socket to be ready for reading and/or writing, until `deadline`.
struct PollStep {
  std::optional<Result<CanaryPoll>> result;
  int fd = -1;
  bool read = false, write = false;
  MonoTime deadline{};
};

// A name lookup as a step of a poll: started into `lookup`, then waited on by its descriptor,
// readable once the lookup is over. An error, and no lookup, when the kernel refused the
// descriptor.
inline Result<PollStep> start_lookup(std::shared_ptr<NameLookup>& lookup, std::vector<std::string> hosts,
                                     MonoTime deadline) {
  lookup = look_up(std::move(hosts));
  if (lookup->fd() >= 0) return PollStep{std::nullopt, lookup->fd(), true, false, deadline};
  lookup.reset();
  return Error{"no descriptor for a name lookup (eventfd refused)"};
}
// The step that waits for a lookup still running; nothing once it is over.
inline std::optional<PollStep> lookup_pending(const NameLookup& lookup, MonoTime deadline) {
  if (lookup.done()) return std::nullopt;
  return PollStep{std::nullopt, lookup.fd(), true, false, deadline};
}

// A reader whose calls never block, for the event loop: begin() starts a poll (connecting first
// when needed), advance() goes on once the socket is ready as the last step asked, and expire()
// ends a poll whose deadline passed, dropping the connection, with the reason. The same
// answers as CanaryReader::poll.
class AsyncCanaryReader {
 public:
  virtual ~AsyncCanaryReader() = default;
  virtual PollStep begin() = 0;
  virtual PollStep advance() = 0;
  virtual Error expire() = 0;
  // False when the next begin() must connect first (the loop limits how many connect at once).
  virtual bool connected() const = 0;
  // Between polls the loop keeps watching the connection's socket (-1: none), so that it need
  // not register it again for every poll; drain() reads what arrives meanwhile (a notice, the
  // server closing), dropping a connection that broke.
  virtual int socket() const = 0;
  virtual void drain() = 0;
  // As CanaryReader::want_received, for the polls begun from now on.
  virtual void want_received(bool) {}
};

class CanaryBackend {
 public:
  virtual ~CanaryBackend() = default;
  virtual std::unique_ptr<CanaryWriter> writer() = 0;
  // Whether a target's DSN can be used at all (a discovered one was not checked with the config).
  virtual Status check(const TargetConfig&) const { return ok_status(); }
  // `report_lag`: also ask the server for its own lag figure (replication targets do; read
  // paths, which only want the canary, do not).
  virtual std::unique_ptr<CanaryReader> reader(const TargetConfig& target, bool report_lag = true) = 0;
  // A reader for the event loop; null when the backend or the target has none (it is then polled
  // by a thread of its own through reader()).
  virtual std::unique_ptr<AsyncCanaryReader> async_reader(const TargetConfig&) { return nullptr; }
  // A session on `target` (a read path's DSN) whose marker row is keyed `key`; null when the
  // backend has none.
  virtual std::unique_ptr<CanarySession> session(const TargetConfig& target, const std::string& key) {
    (void)target, (void)key;
    return nullptr;
  }
  // A server-side waiter for `target`; null when the backend or the target (a cache) has none.
  virtual std::unique_ptr<PositionWaiter> waiter(const TargetConfig& target) = 0;
  // The unit of position_behind(): WAL bytes, or transactions.
  virtual PositionUnit position_unit() const = 0;
  // How far `target` is behind `primary`, never negative; nullopt when it cannot be computed.
  virtual std::optional<double> position_behind(const Position& primary, const Position& target) const = 0;
  // Whether `at` is at or past `wanted`; nullopt when either does not parse.
  std::optional<bool> reached(const Position& at, const Position& wanted) const {
    const std::optional<double> behind = position_behind(wanted, at);
    if (!behind) return std::nullopt;
    return *behind == 0;
  }
  // Whether `position` is one in this backend's syntax.
  bool parses(const Position& position) const { return reached(position, position).has_value(); }
};

}  // namespace ghostwatch
