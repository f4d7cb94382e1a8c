// ReplicationProbe: DESIGN.md §1-2 for any backend. One writer thread bumps the canary on the
// primary every `interval`; each target is polled every `poll_interval` while a canary is
// outstanding there and every `idle_poll_interval` otherwise (each write wakes its pollers at
// once), or, with `wait: server`, has the target wait for each canary's position; a monitor
// expires timeouts and refreshes the pending gauges. Targets with a non-blocking reader
// (PostgreSQL, MySQL/MariaDB, Redis, memcached) are all polled by one event-loop thread
// (PollLoop); the others (server-side waits, the few cases a backend cannot serve there) by a
// thread each. A target that is slow or down holds only its own socket, timer or thread: the writer and
// the other targets share nothing with it but the trackers, whose critical sections are tiny.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/interruptible.h"
#include "exporters/sink.h"
#include "probes/canary_backend.h"
#include "probes/probe_config.h"
#include "probes/read_back.h"
#include "probes/visibility_tracker.h"

namespace ghostwatch {

class PollLoop;

// Limits for a one-shot run: stop writing after `canaries` writes or after `duration`,
// whichever comes first (0 = no limit), then wait until every canary is seen or timed out.
struct RunOnceLimits {
  int canaries = 0;
  Duration duration{0};
};

// What the agent knows of one target's progress towards a position (GET /v1/freshness).
struct TargetFreshness {
  std::string target;
  std::optional<bool> reached;          // nullopt: no position known (a cache, or never polled)
  std::optional<Position> position;     // the target's last known replayed/applied position
  std::optional<double> age_seconds;    // since the poll that brought it arrived
  // From the target's recent visibility lags: when the position is not reached, the time until
  // it should be at the median (and p99) lag, counted from when the agent first saw the primary
  // at or past it (or from now for a position newer than the agent has seen); 0 when reached.
  std::optional<double> expected_wait_seconds, expected_wait_p99_seconds;
};

// Where a target came from: "static" (the config's targets) or a discovery source (patroni,
// from_primary, dns, file), and the role that source reports ("" when it reports none).
struct TargetOrigin {
  std::string source = "static";
  std::string role;
};

class ReplicationProbe {
 public:
  // With `read_paths` (one per config.read_paths), every acked canary is also read back through
  // them (ReadBack); the clock must then follow the steady clock.
  ReplicationProbe(const ProbeConfig& config, CanaryBackend& backend, ObservationSink& sink, const Clock& clock,
                   std::vector<std::unique_ptr<ReadPath>> read_paths = {});
  ~ReplicationProbe();
  ReplicationProbe(const ReplicationProbe&) = delete;
  ReplicationProbe& operator=(const ReplicationProbe&) = delete;

  const std::string& name() const { return config_.name; }
  ProbeSink& sink() { return *sink_; }

  // Whether each target has replayed `position` (in the backend's syntax: an LSN, a GTID list or
  // set), as of its last poll. An error names what is wrong with a position that does not parse.
  // A target that has not reached it is polled at once, so that asking again a few milliseconds
  // later gets an answer that fresh, not one an idle_poll_interval old.
  Result<std::vector<TargetFreshness>> freshness(const Position& position);

  // The live target set (discovery), from any thread, whether the probe runs or not. An added
  // target is polled from the next moment; a removed one stops, and its series leave the sink
  // once nothing polls it. Adding a name already there is an error naming it.
  Status add_target(TargetConfig target, TargetOrigin origin);
  bool remove_target(const std::string& name);
  // The role its source reports now (a switchover), without touching its series.
  void set_target_role(const std::string& name, const std::string& role);
  std::vector<std::string> target_names() const;
  // The writer's primary from discovery (a Patroni leader): taken before the next write.
  void set_primary(DsnConfig primary);

  // Runs until `stop` is requested.
  void run(std::stop_token stop);
  // Runs until the limits are reached and all canaries are resolved, or `stop` is requested.
  void run_once(const RunOnceLimits& limits, std::stop_token stop);

 private:
  struct Target;
  class PolledTarget;
  void write_loop(std::stop_token stop, RunOnceLimits limits);
  bool follow_primary();  // false while no primary is known
  void acked(std::stop_token stop, int64_t seq, MonoTime from, MonoTime t_ack);
  using TargetList = std::vector<std::shared_ptr<Target>>;
  std::shared_ptr<const TargetList> targets() const;  // a snapshot: safe while the set changes
  std::shared_ptr<Target> make_target(TargetConfig config, const TargetOrigin& origin);
  void start_target(const std::shared_ptr<Target>& target);  // with targets_mu_ held, while running
  void stop_target(const std::shared_ptr<Target>& target);   // the same, for a removed target
  void leave_loop(PolledTarget& task);
  void read_loop(std::stop_token stop, Target& target);
  void wait_loop(std::stop_token stop, Target& target);
  Status poll_once(std::stop_token stop, Target& target);
  Status record_poll(Target& target, const Result<CanaryPoll>& poll, MonoTime sent, MonoTime recv);
  void wake(Target& target);
  Duration poll_pace(const Target& target) const;  // from one poll's start to the next
  std::optional<MonoTime> predicted_poll(const Target& target) const;
  Backoff poll_backoff() const;
  Duration timer_slack() const;  // how late the event loop may run a poll's timer
  struct CanaryToWaitFor {
    int64_t seq = 0;
    std::optional<Position> position;  // nullopt: nothing to wait for (yet)
    bool without_position = false;     // an outstanding canary's position is unknown: poll for it
  };
  CanaryToWaitFor next_canary_to_wait_for(const Target& target) const;
  Status wait_on_server(std::stop_token stop, Target& target, const CanaryToWaitFor& canary);
  void monitor_tick();
  void record_primary_position(std::stop_token stop, int64_t seq, MonoTime t_ack);
  void remember_poll(Target& target, const std::optional<Position>& position, MonoTime recv,
                     const std::vector<VisibilitySample>& samples);
  TargetFreshness freshness_of(const Target& target, const Position& position, MonoTime now) const;
  std::optional<MonoTime> first_seen_on_primary(const Position& position) const;
  int64_t oldest_needed_position(int64_t newest) const;
  struct PositionsUpto {
    std::optional<int64_t> seq;  // the newest outstanding canary received; nullopt: none
    std::optional<int64_t> undetermined;  // the next one, whose position is unknown (not recorded yet, or failed)
  };
  PositionsUpto positions_upto(const VisibilityTracker& tracker, const Position& at) const;
  Status ok_status_after_poll(Target& target, const CanaryPoll& poll);
  void record_received(Target& target, const Position& received, std::optional<int64_t> seen, MonoTime sent,
                       MonoTime recv);
  bool ask_received(Target& target) const;
  std::optional<double> position_behind(const std::optional<Position>& target) const;
  bool all_resolved() const;
  void run_threads(std::stop_token outer, const RunOnceLimits& limits, bool once);

  const ProbeConfig config_;
  const Clock& clock_;
  CanaryBackend& backend_;
  std::shared_ptr<ProbeSink> sink_;
  std::unique_ptr<CanaryWriter> writer_;
  std::mutex primary_mu_;
  std::optional<DsnConfig> next_primary_;  // from set_primary, for the writer's thread
  Alarm primary_moved_;  // ends the writer's back-off: the new primary is worth trying at once
  bool primary_known_;                     // the writer's thread only
  // Copied on change, never changed in place: readers take a snapshot under the lock.
  mutable std::mutex targets_mu_;
  std::shared_ptr<const TargetList> targets_;
  bool running_ = false;         // run_threads has started the targets (under targets_mu_)
  PollLoop* live_loop_ = nullptr;  // the event loop while it runs (under targets_mu_)
  std::unique_ptr<ReadBack> read_back_;  // null without read paths
  mutable std::mutex position_mu_;
  std::optional<Position> primary_position_;  // at the last successful write
  // Each canary's own position (nullopt when the query failed), by ascending seq, from the oldest
  // one a target may still ask for (received trackers, server-side waits).
  std::deque<std::pair<int64_t, std::optional<Position>>> canary_positions_;
  std::atomic<int64_t> acked_seq_{0};  // the newest canary acked
  // The primary's position at the last few canaries and when each was acked, oldest first: when
  // a position asked about existed on the primary at the latest.
  std::deque<std::pair<Position, MonoTime>> primary_history_;
  std::atomic<bool> writing_done_{false};
  // The event loop's connects under way, and the targets waiting for their turn (loop thread
  // only): a thousand targets connecting at once would each pay a password hash on the loop.
  int connecting_ = 0;
  std::deque<PolledTarget*> waiting_to_connect_;
};

}  // namespace ghostwatch
