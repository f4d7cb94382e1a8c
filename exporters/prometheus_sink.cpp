#include "exporters/prometheus_sink.h"

#include <malloc.h>

#include <functional>
#include <mutex>

namespace ghostwatch {
namespace {

const prometheus::Histogram::BucketBoundaries& write_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                         0.05,   0.1,   0.25,   0.5,   1,    2.5, 5};
  return b;
}

// A gauge child that exists only while its value is known: a series that is absent says
// "unknown", which a 0 would hide (e.g. Seconds_Behind_Master is NULL while replication stops).
// `labels` must outlive it (a target's five share one copy).
class OptionalGauge {
 public:
  OptionalGauge(SeriesFamily<prometheus::Gauge>& family, const prometheus::Labels& labels)
      : family_(family), labels_(labels) {}
  ~OptionalGauge() { set(std::nullopt); }
  OptionalGauge(const OptionalGauge&) = delete;
  OptionalGauge& operator=(const OptionalGauge&) = delete;
  void set(std::optional<double> value) {
    std::lock_guard lock(mu_);
    if (value) {
      if (!child_) child_ = &family_.add(labels_);
      child_->Set(*value);
    } else if (child_) {
      family_.remove(child_);
      child_ = nullptr;
    }
  }

 private:
  SeriesFamily<prometheus::Gauge>& family_;
  const prometheus::Labels& labels_;
  std::mutex mu_;
  prometheus::Gauge* child_ = nullptr;
};


// Removes the series a handle added when the handle goes: a probe stopped by a reload takes its
// series out of /metrics with it.
class SeriesOwner {
 public:
  SeriesOwner() = default;
  SeriesOwner(const SeriesOwner&) = delete;
  SeriesOwner& operator=(const SeriesOwner&) = delete;
  ~SeriesOwner() {
    for (auto& remove : removers_) remove();
  }
  template <class T, class... Args>
  T& add(SeriesFamily<T>& family, const prometheus::Labels& labels, Args&&... args) {
    T& metric = family.add(labels, std::forward<Args>(args)...);
    removers_.push_back([&family, &metric] { family.remove(&metric); });
    return metric;
  }

 private:
  std::vector<std::function<void()>> removers_;
};

// Coarser than the visibility lag's: a received lag is usually a few milliseconds, and its
// quantiles need only tell that from a replay delay or a stalled receiver. Half the series per
// target (a thousand targets' /metrics grows by a third, not doubles).
const prometheus::Histogram::BucketBoundaries& received_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                         0.25,  0.5,   1,    2.5,   10,   60};
  return b;
}

// A histogram child added at its first observation: a target that never reports the figure
// (a cache has no received position) has no series, rather than an empty one.
class LazyHistogram {
 public:
  LazyHistogram(SeriesFamily<prometheus::Histogram>& family, const prometheus::Labels& labels)
      : family_(family), labels_(labels) {}
  ~LazyHistogram() {
    if (child_) family_.remove(child_);
  }
  LazyHistogram(const LazyHistogram&) = delete;
  LazyHistogram& operator=(const LazyHistogram&) = delete;
  void observe(double value) {
    std::lock_guard lock(mu_);
    if (!child_) child_ = &family_.add(labels_, received_buckets());
    child_->Observe(value);
  }

 private:
  SeriesFamily<prometheus::Histogram>& family_;
  const prometheus::Labels& labels_;
  std::mutex mu_;
  prometheus::Histogram* child_ = nullptr;
};

class PromTarget final : public TargetSink {
 public:
  PromTarget(PrometheusSink::Families& f, prometheus::Labels labels)
      : labels_(std::move(labels)), lag_(series_.add(f.lag, labels_, lag_buckets())), received_(f.received_lag, labels_),
        pending_(series_.add(f.pending, labels_)), timeouts_(series_.add(f.timeouts, labels_)),
        up_(series_.add(f.up, labels_)), poll_errors_(series_.add(f.poll_errors, labels_)),
        polls_(series_.add(f.polls, labels_)), resolution_(f.resolution, labels_),
        position_bytes_(f.position_bytes, labels_), position_transactions_(f.position_transactions, labels_),
        reported_(f.reported_lag, labels_), role_family_(f.role) {}
  ~PromTarget() override { show_role(""); }

  void visible(const VisibilitySample& s) override {
    lag_.Observe(to_seconds(s.lag));
    resolution_.set(to_seconds(s.resolution));
  }
  void received(const VisibilitySample& s) override { received_.observe(to_seconds(s.lag)); }
  void timed_out(int count) override { timeouts_.Increment(count); }
  void pending(Duration age) override { pending_.Set(to_seconds(age)); }
  void polled(bool ok, const std::string&) override {
    polls_.Increment();
    up_.Set(ok ? 1 : 0);
    if (!ok) poll_errors_.Increment();
  }
  void position_lag(PositionUnit unit, std::optional<double> behind) override {
    (unit == PositionUnit::bytes ? position_bytes_ : position_transactions_).set(behind);
  }
  void reported_lag(std::optional<double> seconds) override { reported_.set(seconds); }
  void role(bool is_primary) override {
    std::lock_guard lock(role_mu_);
    polled_primary_ = is_primary;
    show_role(shown_role(polled_primary_, discovered_));
  }
  void origin(const std::string&, const std::string& role) override { discovered_role(role); }
  void discovered_role(const std::string& role) override {
    std::lock_guard lock(role_mu_);
    discovered_ = role;
    show_role(shown_role(polled_primary_, discovered_));
  }

 private:
  // One series at a time: the old role's leaves when the role changes.
  void show_role(const std::string& role) {
    if (role == role_shown_) return;
    if (role_child_) role_family_.remove(role_child_);
    role_child_ = nullptr;
    role_shown_ = role;
    if (role.empty()) return;
    prometheus::Labels labels = labels_;
    labels["role"] = role;
    role_child_ = &role_family_.add(labels);
    role_child_->Set(1);
  }

  const prometheus::Labels labels_;  // the optional gauges' (declared before them, destroyed after)
  SeriesOwner series_;  // constructed before the references below, destroyed after
  prometheus::Histogram& lag_;
  LazyHistogram received_;
  prometheus::Gauge& pending_;
  prometheus::Counter& timeouts_;
  prometheus::Gauge& up_;
  prometheus::Counter& poll_errors_;
  prometheus::Counter& polls_;
  OptionalGauge resolution_;  // absent until a canary is seen: no resolution without a sample
  OptionalGauge position_bytes_;
  OptionalGauge position_transactions_;
  OptionalGauge reported_;
  SeriesFamily<prometheus::Gauge>& role_family_;
  std::mutex role_mu_;
  std::optional<bool> polled_primary_;
  std::string discovered_, role_shown_;
  prometheus::Gauge* role_child_ = nullptr;
};

class PromDiscovery final : public DiscoverySink {
 public:
  PromDiscovery(PrometheusSink::Families& f, const prometheus::Labels& labels)
      : targets_(series_.add(f.discovery_targets, labels)), success_(series_.add(f.discovery_success, labels)),
        errors_(series_.add(f.discovery_errors, labels)) {}
  void round(bool ok, std::size_t targets) override {
    if (!ok) {
      errors_.Increment();
      return;
    }
    targets_.Set(static_cast<double>(targets));
    success_.Set(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  }

 private:
  SeriesOwner series_;
  prometheus::Gauge& targets_;
  prometheus::Gauge& success_;
  prometheus::Counter& errors_;
};

const prometheus::Histogram::BucketBoundaries& offset_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005,
                                                         0.01,   0.025,   0.05,   0.1,   0.25};
  return b;
}

// A session path's own marker writes, under its own probe label value (session_key()), so that
// a probe's canary write count stays the canary's. Added at the first write: only session paths
// write.
class SessionWrites {
 public:
  SessionWrites(PrometheusSink::Families& f, std::string key) : f_(f), key_(std::move(key)) {}
  void written(bool ok, Duration latency) {
    std::lock_guard lock(mu_);
    if (!ok_) {
      ok_ = &series_.add(f_.writes, {{"probe", key_}, {"result", "ok"}});
      error_ = &series_.add(f_.writes, {{"probe", key_}, {"result", "error"}});
      seconds_ = &series_.add(f_.write_seconds, {{"probe", key_}}, write_buckets());
    }
    if (!ok) return error_->Increment();
    ok_->Increment();
    seconds_->Observe(to_seconds(latency));
  }

 private:
  PrometheusSink::Families& f_;
  std::string key_;
  std::mutex mu_;
  SeriesOwner series_;
  prometheus::Counter* ok_ = nullptr;
  prometheus::Counter* error_ = nullptr;
  prometheus::Histogram* seconds_ = nullptr;
};

class PromReadPath final : public ReadPathSink {
 public:
  PromReadPath(PrometheusSink::Families& f, const std::string& probe, const std::string& path,
               const std::vector<std::string>& delays)
      : session_writes_(f, session_key(probe, path)), latency_(series_.add(f.read_seconds, {{"probe", probe}, {"read_path", path}}, write_buckets())),
        offset_(series_.add(f.read_offset, {{"probe", probe}, {"read_path", path}}, offset_buckets())) {
    for (const std::string& delay : delays) {
      const prometheus::Labels labels{{"probe", probe}, {"read_path", path}, {"delay", delay}};
      per_delay_.push_back({&series_.add(f.reads, labels), &series_.add(f.stale_reads, labels),
                            &series_.add(f.read_errors, labels), &series_.add(f.reads_skipped, labels)});
    }
  }
  void read(std::size_t d, ReadOutcome outcome, Duration latency, const std::string&) override {
    PerDelay& c = per_delay_.at(d);
    c.reads->Increment();
    if (outcome == ReadOutcome::stale) c.stale->Increment();
    if (outcome == ReadOutcome::error) c.errors->Increment();
    else latency_.Observe(to_seconds(latency));
  }
  void skipped(std::size_t d) override { per_delay_.at(d).skipped->Increment(); }
  void schedule_offset(Duration offset) override { offset_.Observe(std::max(0.0, to_seconds(offset))); }
  void written(bool ok, Duration latency, const std::string&) override { session_writes_.written(ok, latency); }

 private:
  struct PerDelay {
    prometheus::Counter *reads, *stale, *errors, *skipped;
  };
  SessionWrites session_writes_;
  SeriesOwner series_;
  prometheus::Histogram& latency_;
  prometheus::Histogram& offset_;
  std::vector<PerDelay> per_delay_;  // by delay index
};

class PromReconcile final : public ReconcileSink {
 public:
  PromReconcile(PrometheusSink::Families& f, const prometheus::Labels& labels)
      : checked_(series_.add(f.cache_checked, labels)), unparseable_(series_.add(f.cache_unparseable, labels)),
        stale_entries_(series_.add(f.cache_stale_entries, labels)),
        consistency_(series_.add(f.cache_consistency, labels)), seconds_(series_.add(f.cache_sweep_seconds, labels)),
        ok_(series_.add(f.cache_sweeps, with(labels, "result", "ok"))),
        failed_(series_.add(f.cache_sweeps, with(labels, "result", "error"))),
        stale_(series_.add(f.cache_mismatches, with(labels, "kind", "stale"))),
        ahead_(series_.add(f.cache_mismatches, with(labels, "kind", "ahead"))),
        orphan_(series_.add(f.cache_mismatches, with(labels, "kind", "orphan"))) {}

  void swept(const SweepObservation& s) override {
    if (!s.ok) {
      failed_.Increment();
      return;
    }
    ok_.Increment();
    checked_.Increment(static_cast<double>(s.checked));
    unparseable_.Increment(static_cast<double>(s.unparseable));
    stale_.Increment(static_cast<double>(s.stale));
    ahead_.Increment(static_cast<double>(s.ahead));
    orphan_.Increment(static_cast<double>(s.orphan));
    stale_entries_.Set(static_cast<double>(s.stale));
    consistency_.Set(s.consistent_ratio);
    seconds_.Set(s.seconds);
  }

 private:
  static prometheus::Labels with(prometheus::Labels labels, const std::string& k, const std::string& v) {
    labels[k] = v;
    return labels;
  }
  SeriesOwner series_;
  prometheus::Counter& checked_;
  prometheus::Counter& unparseable_;
  prometheus::Gauge& stale_entries_;
  prometheus::Gauge& consistency_;
  prometheus::Gauge& seconds_;
  prometheus::Counter& ok_;
  prometheus::Counter& failed_;
  prometheus::Counter& stale_;
  prometheus::Counter& ahead_;
  prometheus::Counter& orphan_;
};

class PromProbe final : public ProbeSink {
 public:
  PromProbe(PrometheusSink::Families& f, std::string name)
      : f_(f), name_(std::move(name)), ok_(series_.add(f.writes, {{"probe", name_}, {"result", "ok"}})),
        error_(series_.add(f.writes, {{"probe", name_}, {"result", "error"}})),
        write_seconds_(series_.add(f.write_seconds, {{"probe", name_}}, write_buckets())) {}

  void canary_written(bool ok, Duration latency, const std::string&) override {
    if (ok) {
      ok_.Increment();
      write_seconds_.Observe(to_seconds(latency));
    } else {
      error_.Increment();
    }
  }
  std::shared_ptr<TargetSink> target(const std::string& name) override {
    return std::make_shared<PromTarget>(f_, prometheus::Labels{{"probe", name_}, {"target", name}});
  }
  std::shared_ptr<ReadPathSink> read_path(const std::string& name, const std::vector<std::string>& delays) override {
    return std::make_shared<PromReadPath>(f_, name_, name, delays);
  }
  std::shared_ptr<DiscoverySink> discovery(const std::string& source) override {
    return std::make_shared<PromDiscovery>(f_, prometheus::Labels{{"probe", name_}, {"source", source}});
  }

 private:
  PrometheusSink::Families& f_;
  std::string name_;
  SeriesOwner series_;
  prometheus::Counter& ok_;
  prometheus::Counter& error_;
  prometheus::Histogram& write_seconds_;
};

}  // namespace

const prometheus::Histogram::BucketBoundaries& lag_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4,
      0.5,   0.75,   1,     1.5,  2,     3,    5,     10,  30,   60,  120,  300};
  return b;
}

PrometheusSink::PrometheusSink()
    : families_{
          keep<prometheus::Counter>("ghostwatch_canary_writes_total",
               "Canary writes on the primary, by result (ok or error)."),
          keep<prometheus::Histogram>("ghostwatch_canary_write_seconds",
               "Time from sending the canary upsert to its commit being acknowledged by the primary."),
          keep<prometheus::Histogram>("ghostwatch_visibility_lag_seconds",
               "Time from the canary's commit ack on the primary to its first sight on the target, "
               "on the agent's monotonic clock (an upper bound; see ghostwatch_visibility_resolution_seconds)."),
          keep<prometheus::Histogram>("ghostwatch_received_lag_seconds",
               "Time from the canary's commit ack on the primary to its commit position being received by "
               "the target (WAL receiver, IO thread), on the agent's monotonic clock. Received small and "
               "visibility lag large: the replay is late; both large: the network or the primary. Absent "
               "for targets that report no received position (caches)."),
          keep<prometheus::Gauge>("ghostwatch_visibility_pending_seconds",
               "Age of the oldest canary acked on the primary but not yet seen on the target; 0 when caught "
               "up. Grows in real time while replication is stopped."),
          keep<prometheus::Counter>("ghostwatch_visibility_timeouts_total",
               "Canaries not seen on the target within the probe's timeout."),
          keep<prometheus::Gauge>("ghostwatch_target_up",
               "1 when the last poll of the target succeeded, 0 when it failed."),
          keep<prometheus::Counter>("ghostwatch_poll_errors_total",
               "Polls of the target that failed (connection or query error, or timeout)."),
          keep<prometheus::Counter>("ghostwatch_polls_total",
               "Polls of the target, successful or not."),
          keep<prometheus::Gauge>("ghostwatch_visibility_resolution_seconds",
               "Width of the window in which the last observed canary became visible: the lag's uncertainty. "
               "Absent until the target has shown a canary."),
          keep<prometheus::Gauge>("ghostwatch_replication_position_lag_bytes",
               "Log bytes between the primary's position at the last canary write and the position the "
               "target has replayed (PostgreSQL: WAL LSN distance). Absent while unknown."),
          keep<prometheus::Gauge>("ghostwatch_replication_position_lag_transactions",
               "Transactions the target has yet to apply, from GTID positions (MariaDB: per-domain sequence "
               "numbers; MySQL: GTID set difference). Absent while unknown."),
          keep<prometheus::Gauge>("ghostwatch_reported_lag_seconds",
               "The lag the target's server reports about itself (MySQL/MariaDB Seconds_Behind_Master; "
               "PostgreSQL now() - pg_last_xact_replay_timestamp()). Absent when the server reports NULL. "
               "Compare with ghostwatch_visibility_lag_seconds, which is measured."),
          keep<prometheus::Gauge>("ghostwatch_build_info",
               "Always 1; the version label tells which ghostwatch build is running."),
          keep<prometheus::Counter>("ghostwatch_reads_total",
               "Read-backs of the canary through a read path at a delay after its write (fresh, stale or "
               "failed)."),
          keep<prometheus::Counter>("ghostwatch_stale_reads_total",
               "Read-backs that did not show the caller's own write: what a user reading that long after "
               "writing would have seen as a ghost. Stale ratio = stale / (reads - errors)."),
          keep<prometheus::Counter>("ghostwatch_read_errors_total",
               "Read-backs that failed (connect, query, HTTP or parse error); they are not counted as stale."),
          keep<prometheus::Counter>("ghostwatch_reads_skipped_total",
               "Read-backs not issued because the read path already had its maximum of reads in flight."),
          keep<prometheus::Histogram>("ghostwatch_read_seconds",
               "Duration of successful read-backs through the read path, connection set-up included."),
          keep<prometheus::Histogram>("ghostwatch_read_schedule_offset_seconds",
               "How late read-backs were issued relative to their planned time (canary ack + delay)."),
          keep<prometheus::Counter>("ghostwatch_cache_checked_total",
               "Cache entries compared with their DB rows by the reconciler (present and parseable)."),
          keep<prometheus::Counter>("ghostwatch_cache_mismatches_total",
               "Cache entries still inconsistent with the DB after the grace period, by kind: stale (older "
               "than the DB), ahead (newer), orphan (no DB row)."),
          keep<prometheus::Counter>("ghostwatch_cache_unparseable_total",
               "Cache entries whose version could not be read (not an integer, not JSON, field missing)."),
          keep<prometheus::Gauge>("ghostwatch_cache_stale_entries",
               "Stale entries (older than the DB after the grace period) found by the last sweep."),
          keep<prometheus::Gauge>("ghostwatch_cache_consistency_ratio",
               "Share of the entries checked by the last sweep that were consistent with the DB."),
          keep<prometheus::Gauge>("ghostwatch_cache_sweep_seconds",
               "Duration of the last reconciler sweep, grace period included."),
          keep<prometheus::Counter>("ghostwatch_cache_sweeps_total",
               "Reconciler sweeps, by result (ok or error)."),
          keep<prometheus::Gauge>("ghostwatch_target_role",
               "1 for the target's current role (primary, replica, sync_standby, standby_leader, ...): its "
               "server's own word on whether it is the primary (role=\"primary\": it accepts writes itself, "
               "e.g. promoted by a failover, and its lag of about 0 says nothing about replication), its "
               "discovery source's for the rest. Absent while unknown."),
          keep<prometheus::Gauge>("ghostwatch_discovery_targets",
               "Targets a discovery source lists now (its last good round)."),
          keep<prometheus::Gauge>("ghostwatch_discovery_last_success_timestamp_seconds",
               "Unix time of a discovery source's last round that answered."),
          keep<prometheus::Counter>("ghostwatch_discovery_errors_total",
               "Discovery rounds that failed (the source unreachable or its answer unreadable): the last good "
               "set of targets is kept."),
          keep<prometheus::Gauge>("ghostwatch_config_last_reload_successful",
               "1 when the last config reload (SIGHUP or POST /-/reload) was applied, 0 when it was refused "
               "(the agent keeps running on the previous config)."),
          keep<prometheus::Gauge>("ghostwatch_config_last_reload_success_timestamp_seconds",
               "Unix time at which a config was last applied (at start or by a reload)."),
      },
      reload_ok_(families_.reload_ok.add({})),
      reload_time_(families_.reload_time.add({})) {
  families_.build_info.add({{"version", GHOSTWATCH_VERSION}}).Set(1);
}

void PrometheusSink::config_applied(bool ok, double unix_seconds) {
  reload_ok_.Set(ok ? 1 : 0);
  if (ok) reload_time_.Set(unix_seconds);
}

// Handing the pages of the render's transient blocks back after it keeps RSS at what the agent
// holds between scrapes (bench/poll_cost), for half a millisecond per scrape.
std::string PrometheusSink::render() const {
  std::string text;
  text.reserve(last_text_size_.load(std::memory_order_relaxed) * 9 / 8);
  for (const auto& family : families_in_order_) family->append_text(text);
  last_text_size_.store(text.size(), std::memory_order_relaxed);
  malloc_trim(0);
  return text;
}

std::shared_ptr<ReconcileSink> PrometheusSink::reconcile(const std::string& name, const std::string& target) {
  return std::make_shared<PromReconcile>(families_, prometheus::Labels{{"probe", name}, {"target", target}});
}

std::shared_ptr<ProbeSink> PrometheusSink::probe(const std::string& name, const std::string&) {
  return std::make_shared<PromProbe>(families_, name);
}

}  // namespace ghostwatch
