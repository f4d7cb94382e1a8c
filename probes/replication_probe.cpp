#include "probes/replication_probe.h"

#include <algorithm>
#include <thread>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/interruptible.h"
#include "common/log.h"
#include "common/recent_lags.h"
#include "probes/arrival_predictor.h"
#include "probes/poll_loop.h"
#include "probes/position_sampler.h"
#include "probes/visibility_tracker.h"

namespace ghostwatch {
namespace {

constexpr auto kMonitorTick = std::chrono::milliseconds(50);
constexpr auto kMaxBackoff = std::chrono::seconds(5);
constexpr std::size_t kMaxCanaryPositions = 1u << 16;
constexpr std::size_t kPrimaryHistory = 64;
constexpr std::size_t kRecentLags = 32;  // per target, for the freshness answer's expected wait
// Connects under way at once on an event loop: each costs the loop a password hash (SCRAM,
// about 1-2 ms of CPU), so a thousand at once would make every one of them miss its deadline.
constexpr int kMaxConnecting = 32;

// Logs a component's failures once per outage and its recovery, not every failed attempt.
class HealthLog {
 public:
  explicit HealthLog(std::string what) : what_(std::move(what)) {}
  void failed(const std::string& error) {
    if (healthy_) log::warn(what_ + ": " + error);
    else log::debug(what_ + ": " + error);
    healthy_ = false;
  }
  void succeeded() {
    if (!healthy_) log::info(what_ + ": recovered");
    healthy_ = true;
  }
  bool healthy() const { return healthy_; }

 private:
  std::string what_;
  bool healthy_ = true;
};

// What the last successful poll of a target showed, for the freshness answer (read by HTTP
// threads while the target's poller writes it).
struct KnownProgress {
  mutable std::mutex mu;
  std::optional<Position> position;
  MonoTime at{};
  RecentLags lags{kRecentLags};
};

}  // namespace

struct ReplicationProbe::Target {
  explicit Target(Duration timeout) : tracker(timeout) {}
  TargetConfig config;
  std::string name;
  std::unique_ptr<CanaryReader> reader;  // made by read_loop: an event-loop target needs none
  std::shared_ptr<TargetSink> sink;
  VisibilityTracker tracker;
  Alarm canary_written;  // rung by the writer: poll now, and fast until the canary is seen
  ArrivalPredictor arrival;  // when the next canary should show (prediction: on, event loop)
  ArrivalPredictor arrival_received;  // when its commit position should reach the target
  // Every sample goes to the sink and to the predictor that learns from it.
  void visible_sample(const VisibilitySample& s) {
    sink->visible(s);
    arrival.observe(s.lag, s.resolution);
  }
  void received_sample(const VisibilitySample& s) {
    sink->received(s);
    arrival_received.observe(s.lag, s.resolution);
  }
  std::atomic<bool> poll_now{false};  // a freshness question: poll at once, whatever the prediction
  std::unique_ptr<PositionWaiter> waiter;  // wait: server on a replica; null: polled
  std::unique_ptr<AsyncCanaryReader> async;  // polled by the event loop when set
  // While the loop polls it: wake it there instead of ringing (read by HTTP threads too).
  std::atomic<PollLoop*> loop{nullptr};
  std::size_t loop_id = 0;
  bool pending_shown_zero = false;  // the gauge already says 0: a thousand idle targets skip it
  // When each canary's commit position was received there (replicas; null for caches).
  std::unique_ptr<VisibilityTracker> received{};
  // Whether the last poll was asked for the received position (see CanaryReader::want_received).
  bool wants_received = false;
  KnownProgress known{};
  std::unique_ptr<LoopTask> polled{};  // its state machine while the event loop polls it
  std::jthread thread{};               // its poller when it has a thread of its own
};

// A target polled by the event loop: read_loop's schedule as a state machine. Idle until its
// next poll is due (or a write wakes it), then polling through the reader's non-blocking steps
// until the answer or the deadline.
class ReplicationProbe::PolledTarget final : public LoopTask {
 public:
  PolledTarget(ReplicationProbe& probe, Target& t)
      : probe_(probe), t_(t), backoff_(probe.poll_backoff()) {}

  Await step(Wakeup why, bool, bool) override {
    if (!polling_) {
      if (why == Wakeup::io) {
        t_.async->drain();
        return idle();
      }
      if (why == Wakeup::woken && in_backoff_) return idle();  // a failed target keeps its pace
      if (why == Wakeup::woken && !t_.poll_now.exchange(false)) {
        // A canary was acked: its first poll may wait until shortly before it should show.
        if (const auto predicted = probe_.predicted_poll(t_); predicted && *predicted > steady_now()) {
          next_ = *predicted;
          return idle();
        }
      }
      return begin(why == Wakeup::timer);
    }
    if (why == Wakeup::woken) {
      rung_ = true;  // this poll may have left before the canary: poll again right after
      return waiting_;
    }
    if (why == Wakeup::timer) return finish(t_.async->expire());
    return next(t_.async->advance());
  }

  // The target was removed: it gives up its place in the connect queue, or its connect slot.
  void leave() {
    if (queued_) {
      auto& queue = probe_.waiting_to_connect_;
      queue.erase(std::remove(queue.begin(), queue.end(), this), queue.end());
      queued_ = false;
    }
    end_connecting();
  }

 private:
  // `on_schedule`: its timer ran, so the next poll keeps this one's slot (the loop may run it up
  // to its slack late, and the rate would drift down by that much otherwise); a poll that falls
  // more than a period behind starts a new schedule instead of catching up in a burst.
  Await begin(bool on_schedule = false) {
    if (!t_.async->connected() && !connecting_) {
      if (probe_.connecting_ >= kMaxConnecting) {
        // Its turn comes when a connect ends (a wake); until then it waits for nothing else.
        if (!queued_) probe_.waiting_to_connect_.push_back(this);
        queued_ = true;
        return Await{};  // no connection yet, so no socket to watch
      }
      ++probe_.connecting_;
      connecting_ = true;
    }
    polling_ = true;
    rung_ = false;
    if (probe_.ask_received(t_)) t_.async->want_received(t_.wants_received);
    const MonoTime now = steady_now();
    scheduled_ = on_schedule && now - next_ < probe_.poll_pace(t_) ? next_ : now;
    sent_ = probe_.clock_.now();
    return next(t_.async->begin());
  }
  // After the poll that connected: the next target in line may connect.
  void end_connecting() {
    if (!connecting_) return;
    connecting_ = false;
    --probe_.connecting_;
    if (probe_.waiting_to_connect_.empty()) return;
    PolledTarget* next = probe_.waiting_to_connect_.front();
    probe_.waiting_to_connect_.pop_front();
    next->queued_ = false;
    probe_.wake(next->t_);
  }
  Await next(PollStep s) {
    if (s.result) return finish(std::move(*s.result));
    waiting_ = Await{s.fd, s.read, s.write, s.deadline};
    return waiting_;
  }
  Await finish(Result<CanaryPoll> result) {
    const MonoTime recv = probe_.clock_.now();
    polling_ = false;
    end_connecting();
    const Status polled = probe_.record_poll(t_, result, sent_, recv);
    if (!polled || !health_.healthy()) {
      log::Context context(probe_.config_.name, t_.name);
      if (polled) health_.succeeded();
      else health_.failed(polled.error().message);
    }
    in_backoff_ = !polled;
    if (!polled) {
      next_ = steady_now() + backoff_.next();
    } else {
      backoff_.reset();
      next_ = rung_ ? steady_now() : scheduled_ + probe_.poll_pace(t_);
      if (t_.poll_now.exchange(false)) next_ = steady_now();
      else if (const auto predicted = probe_.predicted_poll(t_)) next_ = std::max(next_, *predicted);
    }
    return idle();
  }
  // Its connection stays watched between polls (see AsyncCanaryReader::drain).
  Await idle() const { return Await{t_.async->socket(), true, false, next_}; }

  ReplicationProbe& probe_;
  Target& t_;
  Backoff backoff_;
  HealthLog health_{"poll"};
  Await waiting_;
  bool polling_ = false, rung_ = false, in_backoff_ = false;
  bool connecting_ = false, queued_ = false;
  MonoTime scheduled_{}, sent_{}, next_{};
};

ReplicationProbe::ReplicationProbe(const ProbeConfig& config, CanaryBackend& backend, ObservationSink& sink,
                                   const Clock& clock, std::vector<std::unique_ptr<ReadPath>> read_paths)
    : config_(settings_of(config)), clock_(clock), backend_(backend),
      sink_(sink.probe(config.name, to_string(config.kind))), writer_(backend.writer()),
      // A probe without `primary:` writes where discovery says the leader is (agent/config.cpp).
      primary_known_(!(config.primary.dsn.empty() && config.discovery)) {
  if (!read_paths.empty()) read_back_ = std::make_unique<ReadBack>(config, std::move(read_paths), *sink_);
  auto list = std::make_shared<TargetList>();
  for (const TargetConfig& t : config.targets) list->push_back(make_target(t, TargetOrigin{}));
  targets_ = std::move(list);
}

ReplicationProbe::~ReplicationProbe() = default;

std::shared_ptr<ReplicationProbe::Target> ReplicationProbe::make_target(TargetConfig config, const TargetOrigin& origin) {
  auto t = std::make_shared<Target>(config_.timeout);
  t->config = std::move(config);
  t->name = t->config.name;
  t->sink = sink_->target(t->name);
  t->sink->origin(origin.source, origin.role);
  t->waiter = config_.wait == WaitMode::server ? backend_.waiter(t->config) : nullptr;
  if (!t->waiter) t->async = backend_.async_reader(t->config);
  if (!t->config.cache) t->received = std::make_unique<VisibilityTracker>(config_.timeout);
  return t;
}

std::shared_ptr<const ReplicationProbe::TargetList> ReplicationProbe::targets() const {
  std::lock_guard lock(targets_mu_);
  return targets_;
}

std::vector<std::string> ReplicationProbe::target_names() const {
  std::vector<std::string> names;
  const auto list = targets();
  for (const auto& t : *list) names.push_back(t->name);
  return names;
}

Status ReplicationProbe::add_target(TargetConfig target, TargetOrigin origin) {
  if (Status usable = backend_.check(target); !usable) return Error{target.name + ": " + usable.error().message};
  std::lock_guard lock(targets_mu_);
  for (const auto& existing : *targets_) {
    // Checked before its sink handle exists: two handles of one name would share its series.
    if (existing->name == target.name) return Error{"probe " + config_.name + " already has a target named " + target.name};
  }
  std::shared_ptr<Target> t = make_target(std::move(target), origin);  // connects nothing yet
  auto list = std::make_shared<TargetList>(*targets_);
  list->push_back(t);
  targets_ = std::move(list);
  if (running_) start_target(t);
  return ok_status();
}

bool ReplicationProbe::remove_target(const std::string& name) {
  std::shared_ptr<Target> gone;
  std::jthread thread;
  {
    std::lock_guard lock(targets_mu_);
    auto list = std::make_shared<TargetList>();
    for (const auto& t : *targets_) {
      if (t->name == name) gone = t;
      else list->push_back(t);
    }
    if (!gone) return false;
    targets_ = std::move(list);
    if (running_) stop_target(gone);
    thread = std::move(gone->thread);  // whoever moves a poller's thread out joins it
  }
  // Outside the lock: a poller on a thread of its own may take up to a query timeout to notice.
  if (thread.joinable()) {
    thread.request_stop();
    gone->canary_written.ring();
    thread.join();
  }
  return true;
}

void ReplicationProbe::set_target_role(const std::string& name, const std::string& role) {
  const auto list = targets();
  for (const auto& t : *list) {
    if (t->name == name) t->sink->discovered_role(role);
  }
}

// A target joins the running probe: on the event loop when it has a non-blocking reader, else
// on a thread of its own.
void ReplicationProbe::start_target(const std::shared_ptr<Target>& t) {
  if (live_loop_ && t->async) {
    t->polled = std::make_unique<PolledTarget>(*this, *t);
    PollLoop* loop = live_loop_;
    loop->post([loop, t] {
      t->loop_id = loop->add(*t->polled, steady_now());
      t->loop = loop;
    });
    return;
  }
  t->thread = std::jthread([this, t = t.get()](std::stop_token stop) { read_loop(stop, *t); });
}

// The event loop lets go of a removed target on its own thread; the posted function keeps the
// target alive until then.
void ReplicationProbe::stop_target(const std::shared_ptr<Target>& t) {
  if (!live_loop_ || !t->polled) return;
  PollLoop* loop = live_loop_;
  loop->post([this, loop, t] {
    static_cast<PolledTarget&>(*t->polled).leave();
    if (t->loop) loop->remove(t->loop_id);
    t->loop = nullptr;
  });
}

void ReplicationProbe::set_primary(DsnConfig primary) {
  {
    std::lock_guard lock(primary_mu_);
    next_primary_ = std::move(primary);
  }
  primary_moved_.ring();
}

bool ReplicationProbe::follow_primary() {
  std::optional<DsnConfig> next;
  {
    std::lock_guard lock(primary_mu_);
    next.swap(next_primary_);
  }
  if (!next) return primary_known_;
  if (Status moved = writer_->retarget(*next); !moved) {
    log::error("the writer cannot follow the primary " + next->redacted() + ": " + moved.error().message);
    return primary_known_;
  }
  log::info("canaries are written to " + next->redacted() + " from now on");
  primary_known_ = true;
  return true;
}

void ReplicationProbe::run(std::stop_token stop) { run_threads(stop, RunOnceLimits{}, /*once=*/false); }

void ReplicationProbe::run_once(const RunOnceLimits& limits, std::stop_token stop) {
  run_threads(stop, limits, /*once=*/true);
}

void ReplicationProbe::run_threads(std::stop_token outer, const RunOnceLimits& limits, bool once) {
  std::stop_source inner;
  std::stop_callback forward(outer, [&inner] { inner.request_stop(); });
  writing_done_ = false;
  std::optional<PollLoop> loop;
  try {
    loop.emplace(timer_slack());  // also for targets that may be discovered later
  } catch (const std::exception& e) {
    log::error(config_.name + ": no event loop (" + e.what() + "): a thread per target instead");
  }
  {
    std::vector<std::jthread> threads;
    {
      std::lock_guard lock(targets_mu_);
      live_loop_ = loop ? &*loop : nullptr;
      running_ = true;
      for (const auto& t : *targets_) start_target(t);
    }
    if (loop) threads.emplace_back([&loop, tok = inner.get_token()] { loop->run(tok); });
    threads.emplace_back([this, limits, tok = inner.get_token()] { write_loop(tok, limits); });
    if (read_back_) threads.emplace_back([this, tok = inner.get_token()] { read_back_->run(tok); });
    while (!inner.stop_requested()) {
      monitor_tick();
      if (once && writing_done_ && all_resolved() && (!read_back_ || read_back_->idle())) break;
      sleep_for(inner.get_token(), kMonitorTick);
    }
    inner.request_stop();
  }  // joins the loop, the writer and the read-back
  std::shared_ptr<const TargetList> list;
  std::vector<std::jthread> pollers;
  {
    std::lock_guard lock(targets_mu_);
    running_ = false;
    live_loop_ = nullptr;
    list = targets_;
    for (const auto& t : *list) {
      if (t->thread.joinable()) pollers.push_back(std::move(t->thread));
    }
  }
  for (auto& thread : pollers) thread.request_stop();
  for (const auto& t : *list) t->canary_written.ring();
  pollers.clear();  // joins them
  for (const auto& t : *list) {
    t->loop = nullptr;
    t->polled.reset();
  }
  connecting_ = 0;
  waiting_to_connect_.clear();
  monitor_tick();
}

void ReplicationProbe::write_loop(std::stop_token stop, RunOnceLimits limits) {
  Backoff backoff(std::max<Duration>(config_.interval, 100ms), kMaxBackoff);
  log::Context context(config_.name);
  HealthLog health("canary write on the primary");
  const MonoTime start = steady_now();
  MonoTime next = start;
  int attempts = 0;
  const bool sampling = config_.mode == ProbeMode::position;
  // mode: position: when the last sample that answered was sent. The newest commit in the next
  // sample's position came after it.
  std::optional<MonoTime> last_sample_sent;
  while (!stop.stop_requested()) {
    if (limits.canaries > 0 && attempts >= limits.canaries) break;
    if (limits.duration > Duration(0) && steady_now() - start >= limits.duration) break;
    if (!follow_primary()) {  // discovery has not named the primary yet
      health.failed("no primary known yet: discovery has not listed a leader");
      next = steady_now() + config_.interval;
      sleep_until(stop, next);
      continue;
    }
    const MonoTime t0 = clock_.now();
    Result<int64_t> ack = writer_->write(stop);
    const MonoTime t_ack = clock_.now();
    if (stop.stop_requested()) break;
    next += sampling ? position_sample_interval(config_) : config_.interval;
    const bool unchanged = !ack && ack.error().code == kPositionUnchanged;
    // A canary write commits before its ack, and is timed from it; a sample's newest commit lies
    // between the previous sample's send and this one's answer, and is timed from the earliest.
    const MonoTime committed_from = sampling ? last_sample_sent.value_or(t0) : t_ack;
    if (sampling && (ack || unchanged)) {
      sink_->position_sampled();
      last_sample_sent = t0;
    }
    if (unchanged) {  // mode: position, nothing new to time
      health.succeeded();
      backoff.reset();
      if (next < steady_now()) next = steady_now();
      sleep_until(stop, next);
      continue;
    }
    ++attempts;
    if (ack) {
      sink_->canary_written(true, t_ack - t0, "");
      acked(stop, ack.value(), committed_from, t_ack);
      health.succeeded();
      backoff.reset();
      if (next < steady_now()) next = steady_now();  // late: skip missed slots, do not burst
    } else {
      sink_->canary_written(false, t_ack - t0, ack.error().message);
      health.failed(ack.error().message);
      next = std::max(next, steady_now() + backoff.next());
      // A failover: discovery names the new primary while the writer backs off.
      if (primary_moved_.wait_until(stop, next) && steady_now() < next) {
        backoff.reset();
        next = steady_now();
      }
      continue;
    }
    sleep_until(stop, next);
  }
  writing_done_ = true;
}

// Canary `seq`, committed between `from` and `t_ack`, to every target's trackers and pollers.
void ReplicationProbe::acked(std::stop_token stop, int64_t seq, MonoTime from, MonoTime t_ack) {
  const Duration window = t_ack - from;
  acked_seq_ = seq;  // before the trackers learn of it: see positions_upto()
  const auto list = targets();
  for (auto& t : *list) {
    if (t->received && t->received->acked(seq, from, window)) {
      // Already shown by a poll (synchronous replication): received no later than seen.
      t->received_sample(VisibilitySample{seq, Duration(0), Duration(0)});
    }
  }
  PollLoop* loop = nullptr;  // one per probe
  std::vector<std::size_t> to_wake;  // the event loop's targets, woken with one signal
  for (auto& t : *list) {
    if (auto sample = t->tracker.acked(seq, from, window)) {
      t->visible_sample(*sample);
    } else if (t->loop) {
      loop = t->loop;
      to_wake.push_back(t->loop_id);
    } else if (!t->waiter) {
      t->canary_written.ring();
    }
  }
  if (loop) loop->wake(to_wake);
  if (read_back_) read_back_->acked(seq, t_ack);
  record_primary_position(stop, seq, t_ack);
  for (auto& t : *list) {
    if (t->waiter) t->canary_written.ring();  // its position is known now
  }
}

Status ReplicationProbe::poll_once(std::stop_token stop, Target& t) {
  if (ask_received(t)) t.reader->want_received(t.wants_received);
  const MonoTime sent = clock_.now();
  Result<CanaryPoll> poll = t.reader->poll(stop);
  const MonoTime recv = clock_.now();
  if (stop.stop_requested()) return ok_status();
  return record_poll(t, poll, sent, recv);
}

// What a poll found, sent and answered at those times, into the tracker and the sink.
Status ReplicationProbe::record_poll(Target& t, const Result<CanaryPoll>& poll, MonoTime sent, MonoTime recv) {
  if (!poll) {
    t.sink->polled(false, poll.error().message);
    return poll.error();
  }
  std::optional<int64_t> seen = poll->seq;
  if (config_.mode == ProbeMode::position) {
    // Seen: the samples whose position the target has replayed.
    if (!poll->position) return ok_status_after_poll(t, poll.value());
    const PositionsUpto upto = positions_upto(t.tracker, *poll->position);
    if (upto.undetermined && (!upto.seq || *upto.seq < *upto.undetermined)) return ok_status_after_poll(t, poll.value());
    seen = upto.seq;
  }
  const auto samples = poll->everything_acked_before_sent ? t.tracker.polled_all_acked_before(sent, recv)
                                                          : t.tracker.polled(seen, sent, recv);
  for (const VisibilitySample& s : samples) t.visible_sample(s);
  remember_poll(t, poll->position, recv, samples);
  if (t.received && poll->received) record_received(t, *poll->received, seen, sent, recv);
  return ok_status_after_poll(t, poll.value());
}

// What every successful poll reports, whatever it showed of the canaries.
Status ReplicationProbe::ok_status_after_poll(Target& t, const CanaryPoll& poll) {
  t.sink->polled(true, "");
  t.sink->position_lag(backend_.position_unit(), position_behind(poll.position));
  if (poll.reported.refreshed) t.sink->reported_lag(poll.reported.seconds);
  if (poll.is_primary) t.sink->role(*poll.is_primary);
  return ok_status();
}

// The canaries whose commit position `received` covers, into the target's received tracker. A
// canary the row shows (`seen`) was received too, whatever the position says.
void ReplicationProbe::record_received(Target& t, const Position& received, std::optional<int64_t> seen, MonoTime sent,
                                       MonoTime recv) {
  const PositionsUpto upto = positions_upto(*t.received, received);
  std::optional<int64_t> covered = upto.seq;
  if (seen && (!covered || *seen > *covered)) covered = seen;
  // A canary whose position is not recorded (yet: a round trip after its ack on MySQL) can be
  // neither counted nor ruled out, unless the row shows it: this poll is then no evidence for it,
  // and counting the ones before it would narrow its window.
  if (upto.undetermined && (!covered || *covered < *upto.undetermined)) return;
  for (const VisibilitySample& s : t.received->polled(covered, sent, recv)) t.received_sample(s);
}

// The newest canary outstanding in `tracker` whose position `at` covers (positions grow with
// seq, so the scan stops at the first one not covered).
ReplicationProbe::PositionsUpto ReplicationProbe::positions_upto(const VisibilityTracker& tracker,
                                                                const Position& at) const {
  PositionsUpto out;
  const std::optional<int64_t> oldest = tracker.oldest_outstanding();
  if (!oldest) return out;
  const int64_t acked = acked_seq_;
  std::lock_guard lock(position_mu_);
  auto it = std::lower_bound(canary_positions_.begin(), canary_positions_.end(), *oldest,
                             [](const auto& entry, int64_t seq) { return entry.first < seq; });
  for (; it != canary_positions_.end(); ++it) {
    if (!it->second) {
      out.undetermined = it->first;
      return out;
    }
    if (backend_.reached(at, *it->second) != true) return out;
    out.seq = it->first;
  }
  // Past the last recorded position: a later canary acked but not recorded yet is undetermined.
  const int64_t recorded = canary_positions_.empty() ? *oldest - 1 : std::max(*oldest - 1, canary_positions_.back().first);
  if (recorded < acked) out.undetermined = recorded + 1;
  return out;
}

// Whether to ask a target's polls for the received position, updating t.wants_received; false
// when nothing changed (the reader keeps what it was told).
bool ReplicationProbe::ask_received(Target& t) const {
  const bool want = t.received && t.received->outstanding() > 0;
  if (want == t.wants_received) return false;
  t.wants_received = want;
  return true;
}

// When the next event to resolve for the oldest unseen canary should come, on the steady clock:
// its receipt while its commit position has not reached the target (received vs applied stays
// resolved), else its visibility; nullopt when nothing is outstanding or predicted.
std::optional<MonoTime> ReplicationProbe::predicted_poll(const Target& t) const {
  if (!config_.prediction) return std::nullopt;
  const auto unseen = t.tracker.oldest_outstanding_entry();
  if (!unseen) return std::nullopt;
  const auto unreceived = t.received ? t.received->oldest_outstanding_entry() : std::nullopt;
  const bool receipt_next = unreceived && unreceived->seq <= unseen->seq;
  const Duration lead = (receipt_next ? t.arrival_received : t.arrival).lead(config_.poll_interval);
  if (lead <= Duration(0)) return std::nullopt;
  const MonoTime ack = receipt_next ? unreceived->t_ack : unseen->t_ack;
  return steady_now() + (ack + lead - clock_.now());
}

// Fast only while there is something to see.
Duration ReplicationProbe::poll_pace(const Target& t) const {
  return t.tracker.outstanding() > 0 ? config_.poll_interval : config_.idle_poll_interval;
}

// A tenth of the fast poll interval, at most 1 ms: polls stay within 10% of their interval,
// and a thousand targets polled every 100 ms leave in bursts of about ten.
Duration ReplicationProbe::timer_slack() const {
  return std::min<Duration>(config_.poll_interval / 10, std::chrono::milliseconds(1));
}

Backoff ReplicationProbe::poll_backoff() const {
  return Backoff(std::max<Duration>(config_.poll_interval, 100ms), kMaxBackoff);
}

// A canary was acked: the target's poller looks for it now.
void ReplicationProbe::wake(Target& t) {
  if (PollLoop* loop = t.loop.load()) loop->wake(t.loop_id);
  else t.canary_written.ring();
}

void ReplicationProbe::read_loop(std::stop_token stop, Target& t) {
  if (!t.reader) t.reader = backend_.reader(t.config);
  if (t.waiter) return wait_loop(stop, t);
  Backoff backoff = poll_backoff();
  log::Context context(config_.name, t.name);
  HealthLog health("poll");
  while (!stop.stop_requested()) {
    const MonoTime scheduled = steady_now();
    // A canary acked from here on may not be in this poll's answer: the next poll, after the
    // ring, looks for it.
    t.canary_written.clear();
    const Status polled = poll_once(stop, t);
    if (stop.stop_requested()) break;
    if (polled) {
      health.succeeded();
      backoff.reset();
      // A write rings the alarm to end an idle wait.
      t.canary_written.wait_until(stop, scheduled + poll_pace(t));
    } else {
      health.failed(polled.error().message);
      sleep_until(stop, steady_now() + backoff.next());
    }
  }
}

// wait: server. The replica itself is asked to wait for each canary's position, on a connection
// of its own, and answers the moment it has applied it; a poll every idle_poll_interval keeps
// target_up, the position lag and the reported lag. A canary whose position is unknown (the
// position query failed) is polled for as in poll mode.
void ReplicationProbe::wait_loop(std::stop_token stop, Target& t) {
  Backoff backoff(100ms, kMaxBackoff);
  log::Context context(config_.name, t.name);
  HealthLog poll_health("poll"), wait_health("server-side wait");
  MonoTime next_poll = steady_now();
  auto poll_for_health = [&] {
    const Status polled = poll_once(stop, t);
    if (polled) poll_health.succeeded();
    else poll_health.failed(polled.error().message);
    next_poll = steady_now() + config_.idle_poll_interval;
  };
  while (!stop.stop_requested()) {
    t.canary_written.clear();
    const CanaryToWaitFor canary = next_canary_to_wait_for(t);
    if (canary.position) {
      if (const Status waited = wait_on_server(stop, t, canary); waited) {
        wait_health.succeeded();
        backoff.reset();
      } else {
        wait_health.failed(waited.error().message);
        sleep_until(stop, steady_now() + backoff.next());
      }
      if (steady_now() >= next_poll) poll_for_health();
    } else if (canary.without_position) {
      poll_for_health();
      t.canary_written.wait_until(stop, steady_now() + config_.poll_interval);
    } else if (steady_now() >= next_poll) {
      poll_for_health();
    } else {
      t.canary_written.wait_until(stop, next_poll);
    }
  }
}

// One server-side wait for `canary`.
Status ReplicationProbe::wait_on_server(std::stop_token stop, Target& t, const CanaryToWaitFor& canary) {
  const MonoTime sent = clock_.now();
  Result<WaitOutcome> outcome = t.waiter->wait(*canary.position, kLongestServerWait, stop);
  const MonoTime recv = clock_.now();
  if (stop.stop_requested()) return ok_status();
  if (!outcome) return outcome.error();
  const Duration rtt = outcome->round_trip;
  if (!outcome->reached) {
    // The server looked within one round trip of its answer and had not applied it.
    t.tracker.not_seen_at(recv - rtt);
    return ok_status();
  }
  // Longer than the two round trips it costs when the position was already applied: the server
  // blocked, so it applied the canary within one round trip of the answer's arrival.
  const bool blocked = recv - sent > 3 * rtt;
  log::debug("server-side wait for canary " + std::to_string(canary.seq) + " answered after " +
             std::to_string(to_seconds(recv - sent) * 1e3) + " ms (round trip " + std::to_string(to_seconds(rtt) * 1e3) +
             " ms)" + (blocked ? "" : ": already applied when asked"));
  for (const VisibilitySample& s : t.tracker.waited(canary.seq, blocked ? std::optional(recv - rtt) : std::nullopt, recv)) {
    t.visible_sample(s);
  }
  return ok_status();
}

// The oldest outstanding canary whose position the writer has recorded, or a later one with a
// known position (waiting for it covers the older ones too).
ReplicationProbe::CanaryToWaitFor ReplicationProbe::next_canary_to_wait_for(const Target& t) const {
  CanaryToWaitFor out;
  const std::optional<int64_t> oldest = t.tracker.oldest_outstanding();
  if (!oldest) return out;
  std::lock_guard lock(position_mu_);
  for (const auto& [seq, position] : canary_positions_) {
    if (seq < *oldest) continue;
    if (!position) {
      out.without_position = true;
      continue;
    }
    out.seq = seq;
    out.position = position;
    out.without_position = false;
    break;
  }
  return out;
}

void ReplicationProbe::record_primary_position(std::stop_token stop, int64_t seq, MonoTime t_ack) {
  auto position = writer_->position(stop);
  const int64_t needed = oldest_needed_position(seq);
  std::lock_guard lock(position_mu_);
  primary_position_ = position ? position.value() : std::nullopt;
  if (primary_position_) {
    primary_history_.emplace_back(*primary_position_, t_ack);
    if (primary_history_.size() > kPrimaryHistory) primary_history_.pop_front();
  }
  while (!canary_positions_.empty() && canary_positions_.front().first < needed) canary_positions_.pop_front();
  canary_positions_.emplace_back(seq, position ? writer_->canary_position() : std::nullopt);
  // Enough for every canary a timeout can keep outstanding at the shortest interval.
  while (canary_positions_.size() > kMaxCanaryPositions) canary_positions_.pop_front();
}

// The oldest canary whose position a target may still ask for: outstanding in a received
// tracker, or awaited by a server-side wait. `newest` when none is.
int64_t ReplicationProbe::oldest_needed_position(int64_t newest) const {
  int64_t needed = newest;
  const auto list = targets();
  for (const auto& t : *list) {
    if (t->received) {
      if (auto oldest = t->received->oldest_outstanding()) needed = std::min(needed, *oldest);
    }
    if (t->waiter || config_.mode == ProbeMode::position) {
      if (auto oldest = t->tracker.oldest_outstanding()) needed = std::min(needed, *oldest);
    }
  }
  return needed;
}

std::optional<double> ReplicationProbe::position_behind(const std::optional<Position>& target) const {
  if (!target) return std::nullopt;
  std::lock_guard lock(position_mu_);
  if (!primary_position_) return std::nullopt;
  return backend_.position_behind(*primary_position_, *target);
}

void ReplicationProbe::remember_poll(Target& t, const std::optional<Position>& position, MonoTime recv,
                                     const std::vector<VisibilitySample>& samples) {
  std::lock_guard lock(t.known.mu);
  if (position) {
    t.known.position = position;
    t.known.at = recv;
  }
  for (const VisibilitySample& s : samples) t.known.lags.add(to_seconds(s.lag));
}

Result<std::vector<TargetFreshness>> ReplicationProbe::freshness(const Position& position) {
  if (!backend_.parses(position)) {
    return Error{"not a position of a " + std::string(to_string(config_.kind)) + " probe: " +
                 (config_.kind == ProbeKind::postgres ? "expected an LSN such as 0/3000060"
                                                      : "expected a GTID list (MariaDB, 0-1-42) or set (MySQL, uuid:1-42)")};
  }
  const MonoTime now = clock_.now();
  std::vector<TargetFreshness> out;
  const auto list = targets();
  out.reserve(list->size());
  for (const auto& t : *list) {
    out.push_back(freshness_of(*t, position, now));
    if (out.back().reached == false && !t->waiter) {
      t->poll_now = true;
      wake(*t);
    }
  }
  return out;
}

TargetFreshness ReplicationProbe::freshness_of(const Target& t, const Position& position, MonoTime now) const {
  TargetFreshness f{t.name, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt};
  std::optional<double> p50, p99;
  {
    std::lock_guard lock(t.known.mu);
    if (!t.known.position) return f;
    f.position = t.known.position;
    f.age_seconds = to_seconds(now - t.known.at);
    p50 = t.known.lags.percentile(0.5);
    p99 = t.known.lags.percentile(0.99);
  }
  f.reached = backend_.reached(*f.position, position);
  if (!f.reached) return f;  // the target's position is in another syntax (e.g. GTIDs turned off)
  if (*f.reached) {
    f.expected_wait_seconds = f.expected_wait_p99_seconds = 0.0;
    return f;
  }
  const double since = to_seconds(now - first_seen_on_primary(position).value_or(now));
  if (p50) f.expected_wait_seconds = std::max(0.0, *p50 - since);
  if (p99) f.expected_wait_p99_seconds = std::max(0.0, *p99 - since);
  return f;
}

// When the primary was first seen at or past `position` (at a canary's ack); nullopt when it
// never was (a position newer than the last canary). A position older than the history gets the
// oldest entry's time, an upper bound of when it existed.
std::optional<MonoTime> ReplicationProbe::first_seen_on_primary(const Position& position) const {
  std::lock_guard lock(position_mu_);
  for (const auto& [primary, at] : primary_history_) {
    if (backend_.reached(primary, position) == true) return at;
  }
  return std::nullopt;
}

void ReplicationProbe::monitor_tick() {
  const MonoTime now = clock_.now();
  const auto list = targets();
  for (auto& t : *list) {
    if (const int expired = t->tracker.expire(now)) t->sink->timed_out(expired);
    if (t->received) t->received->expire(now);
    const Duration pending = t->tracker.pending(now);
    const bool zero = pending == Duration(0);
    if (zero && t->pending_shown_zero) continue;
    t->sink->pending(pending);
    t->pending_shown_zero = zero;
  }
}

bool ReplicationProbe::all_resolved() const {
  const auto list = targets();
  return std::all_of(list->begin(), list->end(), [](const auto& t) { return t->tracker.outstanding() == 0; });
}

const char* to_string(ProbeKind kind) {
  switch (kind) {
    case ProbeKind::postgres: return "postgres";
    case ProbeKind::mysql: return "mysql";
  }
  return "unknown";
}

const std::vector<AllowedSetting>& allowed_session_settings(ProbeKind kind) {
  // PostgreSQL: what a commit waits for. MySQL/MariaDB: Galera's causality checks (wsrep_sync_wait,
  // a bitmask) and Group Replication's consistency level, both settable per session. MariaDB's
  // semi-synchronous replication has no session variable: it is the server's setting.
  static const std::vector<AllowedSetting> postgres{
      {"synchronous_commit", {"off", "local", "remote_write", "on", "remote_apply"}}};
  static const std::vector<AllowedSetting> mysql{
      {"wsrep_sync_wait", {}},
      {"group_replication_consistency", {"EVENTUAL", "BEFORE_ON_PRIMARY_FAILOVER", "BEFORE", "AFTER", "BEFORE_AND_AFTER"}}};
  return kind == ProbeKind::postgres ? postgres : mysql;
}

}  // namespace ghostwatch
