// The observation vocabulary: what probes report, and the sink interfaces that receive it.
//
// Probes do not know where their numbers go. At construction a probe asks its sink for a
// ProbeSink, and that for one TargetSink per target; on the hot path it only calls methods on
// those handles (no lookups by name). The Prometheus exporter, the one-shot report and the live
// console view are sinks; FanoutSink feeds several at once. Implementations are thread-safe: a
// probe's writer, readers and monitor call them from different threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"

namespace ghostwatch {

// One canary's sighting on a target: DESIGN.md §1-2 (VisibilityTracker makes them).
struct VisibilitySample {
  int64_t seq = 0;
  Duration lag{0};
  Duration resolution{0};
};

// The key under which a session read path writes its own marker: its own value of the canary
// table's probe column and of ghostwatch_canary_writes_total's probe label.
inline std::string session_key(const std::string& probe, const std::string& read_path) {
  return probe + "/" + read_path;
}

enum class PositionUnit { bytes, transactions };

class TargetSink {
 public:
  virtual ~TargetSink() = default;
  virtual void visible(const VisibilitySample& sample) = 0;
  // The canary's commit position reached the target (PostgreSQL's WAL receiver, the MySQL IO
  // thread) before being applied: with visible() it tells the network from the replay. Only
  // targets that report a received position (replicas, not caches) ever call it.
  virtual void received(const VisibilitySample& sample) = 0;
  virtual void timed_out(int count) = 0;
  virtual void pending(Duration age) = 0;
  // `error` is already redacted; empty when ok.
  virtual void polled(bool ok, const std::string& error) = 0;
  // How far the target's replication position is behind the primary's; nullopt when unknown.
  virtual void position_lag(PositionUnit unit, std::optional<double> behind) = 0;
  // The lag the target's server reports about itself; nullopt when it reports none (NULL).
  virtual void reported_lag(std::optional<double> seconds) = 0;
  // Whether the target is itself a primary now (e.g. promoted by a failover).
  virtual void role(bool is_primary) { (void)is_primary; }
  // Where the target came from ("static": the config's targets; else its discovery source) and
  // the role that source reports ("" when it reports none), once at its start.
  virtual void origin(const std::string& source, const std::string& role) { (void)source, (void)role; }
  // The role its discovery source reports now (a switchover).
  virtual void discovered_role(const std::string& role) { (void)role; }
};

// The role a target is shown with: what its own server says (a primary, or not) settles whether
// it is the primary; among replicas, the discovery source's finer word (sync_standby,
// standby_leader) is kept. "" when neither is known yet (a cache, or not polled yet).
inline std::string shown_role(std::optional<bool> is_primary, const std::string& discovered) {
  if (is_primary == true) return "primary";
  if (discovered == "primary") return is_primary ? "replica" : "primary";
  if (!discovered.empty()) return discovered;
  return is_primary ? "replica" : "";
}

// The rounds of one discovery source of one probe.
class DiscoverySink {
 public:
  virtual ~DiscoverySink() = default;
  // A round that answered, with the number of targets the source lists now, or one that failed.
  virtual void round(bool ok, std::size_t targets) = 0;
};

enum class ReadOutcome { fresh, stale, error };

// Observations of one read path of the read-your-writes probe. Delays are passed by their index
// in the probe's read_delays, so that a sink can prepare per-delay state once.
class ReadPathSink {
 public:
  virtual ~ReadPathSink() = default;
  // A read-back issued `delay_index`'s delay after the ack: fresh (showed the write), stale
  // (showed an older seq or no row) or error (`error` redacted; not counted as stale).
  virtual void read(std::size_t delay_index, ReadOutcome outcome, Duration latency, const std::string& error) = 0;
  // A read-back not issued because the path already had its maximum of reads in flight.
  virtual void skipped(std::size_t delay_index) = 0;
  // How late a read-back was issued relative to its planned time (ack + delay).
  virtual void schedule_offset(Duration offset) = 0;
  // A session path's own marker write (`error` redacted), whose ack its reads count from.
  virtual void written(bool ok, Duration latency, const std::string& error) { (void)ok, (void)latency, (void)error; }
};

class ProbeSink {
 public:
  virtual ~ProbeSink() = default;
  virtual void canary_written(bool ok, Duration latency, const std::string& error) = 0;
  // mode: position: the primary's position was read, advanced or not (an idle primary's probe
  // is working even though it times no canary).
  virtual void position_sampled() {}
  virtual std::shared_ptr<TargetSink> target(const std::string& name) = 0;
  virtual std::shared_ptr<ReadPathSink> read_path(const std::string& name, const std::vector<std::string>& delay_labels) = 0;
  // Sinks without a view of discovery ignore it.
  virtual std::shared_ptr<DiscoverySink> discovery(const std::string& source);
};

// One finished sweep of a cache-vs-DB reconciler.
struct SweepObservation {
  bool ok = true;  // false: the sweep failed (its error was logged); the counts are then 0
  long checked = 0, unparseable = 0;
  long stale = 0, ahead = 0, orphan = 0;  // persistent mismatches
  double seconds = 0;
  double consistent_ratio = 1;
};

class ReconcileSink {
 public:
  virtual ~ReconcileSink() = default;
  virtual void swept(const SweepObservation& sweep) = 0;
};

class ObservationSink {
 public:
  virtual ~ObservationSink() = default;
  virtual std::shared_ptr<ProbeSink> probe(const std::string& name, const std::string& kind) = 0;
  // Sinks without a view of reconciliation ignore it.
  virtual std::shared_ptr<ReconcileSink> reconcile(const std::string& name, const std::string& target);
};

}  // namespace ghostwatch
