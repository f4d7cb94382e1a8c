// VisibilityTracker: the measurement core of DESIGN.md §1-2 for one (probe, target) pair.
//
// The writer reports each acked canary (seq, t_ack); the target's reader reports each successful
// poll (the seq it saw, when the poll was sent and when its answer arrived). The tracker turns
// these into lag samples, timeouts and the pending-staleness age, all on one monotonic clock.
//
// Each canary has exactly one outcome: a sample (first seen within `timeout`) or a timeout.
// Lag is the upper bound `t_seen - t_ack`, where t_seen is when the hitting poll's answer
// arrived; the true visibility time lies after the send time of the previous (missing) poll,
// and the width of that window is the sample's resolution. A canary whose commit time is itself
// known only within a window (mode: position: between two samples of the primary) is acked at
// the window's start with its width, which widens the resolution: the lag stays an upper bound.
// Seen-before-ack (possible with synchronous replication) is clamped to lag 0.
//
// Thread-safe: the writer, the reader and the monitor call it from different threads.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "common/clock.h"
#include "common/fifo.h"
#include "exporters/sink.h"

namespace ghostwatch {

class VisibilityTracker {
 public:
  // `max_outstanding` bounds memory during a long outage; past it the oldest entries are
  // dropped but the pending age still counts from the oldest unseen ack.
  explicit VisibilityTracker(Duration timeout, std::size_t max_outstanding = 1u << 20);

  // The writer's ack of `seq`, committed at `t_ack` or at most `ack_window` later. Returns a
  // lag-0 sample when a poll already saw it.
  std::optional<VisibilitySample> acked(int64_t seq, MonoTime t_ack, Duration ack_window = Duration(0));

  // A successful poll: `seen` is the seq the target showed (nullopt: no canary row yet).
  std::vector<VisibilitySample> polled(std::optional<int64_t> seen, MonoTime sent, MonoTime recv);

  // A successful poll that shows everything acked before `sent` (an invalidated cache key).
  std::vector<VisibilitySample> polled_all_acked_before(MonoTime sent, MonoTime recv);

  // A server-side wait for `seq`'s position answered "applied" at `recv`. `missed_at`: the wait
  // blocked, so the target had not applied it then (the answer's arrival minus one round trip).
  std::vector<VisibilitySample> waited(int64_t seq, std::optional<MonoTime> missed_at, MonoTime recv);

  // A look at the target (a server-side wait that timed out) showed nothing new as of `at`.
  void not_seen_at(MonoTime at);

  // The oldest acked canary not yet seen and not yet timed out.
  std::optional<int64_t> oldest_outstanding() const;
  // The same with its ack time, read at once.
  struct Outstanding {
    int64_t seq;
    MonoTime t_ack;
  };
  std::optional<Outstanding> oldest_outstanding_entry() const;

  // Counts canaries unseen for longer than the timeout, once each. Returns how many expired now.
  int expire(MonoTime now);

  // Age of the oldest acked canary not yet seen (timed-out ones included); 0 when caught up.
  Duration pending(MonoTime now) const;

  // Acked canaries not yet seen and not yet timed out.
  std::size_t outstanding() const;

 private:
  struct Entry {
    int64_t seq;
    MonoTime t_ack;
    Duration ack_window;
  };
  void forget_seen_locked(int64_t seen);
  void not_seen_at_locked(MonoTime at);
  std::vector<VisibilitySample> polled_locked(std::optional<int64_t> seen, MonoTime sent, MonoTime recv);

  const Duration timeout_;
  const std::size_t max_outstanding_;
  mutable std::mutex mu_;
  // Ascending seq and ack time. The first `timed_out_` entries have timed out: they stay until
  // seen so that the pending age keeps growing, but they yield no sample.
  Fifo<Entry> entries_;
  std::size_t timed_out_ = 0;
  std::optional<MonoTime> dropped_oldest_ack_;  // set when the cap dropped unseen entries
  int64_t dropped_upto_seq_ = 0;
  std::optional<int64_t> max_seen_;
  std::optional<MonoTime> last_poll_sent_;
};

}  // namespace ghostwatch
