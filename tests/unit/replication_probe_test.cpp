// The replication probe's threads and timing against an in-memory fake backend: a "primary"
// that records commit times and "replicas" that show a seq only `lag` after its commit.
#include "probes/replication_probe.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <functional>
#include <map>
#include <thread>
#include <mutex>

#include "common/interruptible.h"
#include "exporters/prometheus_sink.h"
#include "exporters/report.h"

namespace ghostwatch {
namespace {

using std::chrono::milliseconds;

struct FakePrimary {
  std::mutex mu;
  int64_t seq = 0;
  std::deque<std::pair<int64_t, MonoTime>> commits;
  bool knows_canary_positions = true;  // false: as if every position query failed

  int64_t commit() {
    std::lock_guard lock(mu);
    commits.emplace_back(++seq, std::chrono::steady_clock::now());
    return seq;
  }
  std::optional<int64_t> visible_with_lag(Duration lag) {
    std::lock_guard lock(mu);
    std::optional<int64_t> seen;
    const MonoTime now = std::chrono::steady_clock::now();
    for (auto& [s, t] : commits) {
      if (t + lag <= now) seen = s;
    }
    return seen;
  }
  std::optional<MonoTime> committed_at(int64_t s) {
    std::lock_guard lock(mu);
    for (auto& [c, t] : commits) {
      if (c == s) return t;
    }
    return std::nullopt;
  }
};

enum class Behaviour { healthy, failing, blocking };

struct FakeTarget {
  Duration lag{0};
  Behaviour behaviour = Behaviour::healthy;
  // When set, polls also report the received position: the newest seq committed this long ago.
  std::optional<Duration> received_lag{};
};

class FakeBackend final : public CanaryBackend {
 public:
  FakeBackend(FakePrimary& primary, std::map<std::string, FakeTarget> targets)
      : primary_(primary), targets_(std::move(targets)) {}

  bool event_loop = false;  // offer non-blocking readers: the probe polls from its event loop
  std::unique_ptr<AsyncCanaryReader> async_reader(const TargetConfig& t) override {
    if (!event_loop) return nullptr;
    return std::make_unique<AsyncReader>(primary_, targets_.at(t.name));
  }

  std::unique_ptr<CanaryWriter> writer() override { return std::make_unique<Writer>(primary_); }
  std::unique_ptr<CanaryReader> reader(const TargetConfig& t, bool) override {
    return std::make_unique<Reader>(primary_, targets_.at(t.name));
  }
  std::unique_ptr<PositionWaiter> waiter(const TargetConfig& t) override {
    return std::make_unique<Waiter>(primary_, targets_.at(t.name));
  }
  PositionUnit position_unit() const override { return PositionUnit::transactions; }
  // Positions are seqs.
  std::optional<double> position_behind(const Position& primary, const Position& target) const override {
    return static_cast<double>(std::max<int64_t>(0, std::stoll(primary) - std::stoll(target)));
  }

 private:
  struct Writer final : CanaryWriter {
    explicit Writer(FakePrimary& p) : p(p) {}
    Result<int64_t> write(std::stop_token) override { return last = p.commit(); }
    Result<std::optional<Position>> position(std::stop_token) override { return std::optional<Position>(); }
    std::optional<Position> canary_position() const override {
      if (!p.knows_canary_positions) return std::nullopt;
      return std::to_string(last);
    }
    FakePrimary& p;
    int64_t last = 0;
  };
  // Answers the moment the target has applied the position (its seq), as MASTER_GTID_WAIT does.
  struct Waiter final : PositionWaiter {
    Waiter(FakePrimary& p, FakeTarget t) : p(p), t(t) {}
    Result<WaitOutcome> wait(const Position& position, Duration limit, std::stop_token stop) override {
      const auto committed = p.committed_at(std::stoll(position));
      if (!committed) return Error{"unknown position"};
      const MonoTime applied = *committed + t.lag, deadline = std::chrono::steady_clock::now() + limit;
      sleep_until(stop, std::min(applied, deadline));
      return WaitOutcome{applied <= deadline, std::chrono::microseconds(50)};
    }
    FakePrimary& p;
    FakeTarget t;
  };
  struct Reader final : CanaryReader {
    Reader(FakePrimary& p, FakeTarget t) : p(p), t(t) {}
    Result<CanaryPoll> poll(std::stop_token stop) override {
      if (t.behaviour == Behaviour::failing) return Error{"connection refused"};
      if (t.behaviour == Behaviour::blocking) {
        sleep_for(stop, milliseconds(1500));
        return Error{"query timed out"};
      }
      CanaryPoll poll;
      poll.seq = p.visible_with_lag(t.lag);
      if (t.received_lag) poll.received = std::to_string(p.visible_with_lag(*t.received_lag).value_or(0));
      return poll;
    }
    FakePrimary& p;
    FakeTarget t;
  };
  // The same answers without blocking: a healthy or failing target answers in begin(); a
  // blocking one waits on a socket that never becomes readable until its 300 ms deadline.
  struct AsyncReader final : AsyncCanaryReader {
    AsyncReader(FakePrimary& p, FakeTarget t) : sync(p, t), behaviour(t.behaviour) {
      if (behaviour == Behaviour::blocking && socketpair(AF_UNIX, SOCK_STREAM, 0, silent) != 0) silent[0] = -1;
    }
    ~AsyncReader() override {
      if (behaviour == Behaviour::blocking) {
        close(silent[0]);
        close(silent[1]);
      }
    }
    PollStep begin() override {
      if (behaviour != Behaviour::blocking) return PollStep{sync.poll(std::stop_token())};
      return PollStep{std::nullopt, silent[0], true, false, std::chrono::steady_clock::now() + milliseconds(300)};
    }
    PollStep advance() override { return PollStep{Error{"a silent socket became readable"}}; }
    Error expire() override { return Error{"query timed out"}; }
    bool connected() const override { return true; }
    int socket() const override { return -1; }
    void drain() override {}
    Reader sync;
    Behaviour behaviour;
    int silent[2] = {-1, -1};
  };
  FakePrimary& primary_;
  std::map<std::string, FakeTarget> targets_;
};

// A fake primary, its targets and a probe over them, reporting to a ReportSink.
// Every polling test runs twice: targets polled by a thread each, and by the event loop.
bool g_event_loop = false;

struct Rig {
  explicit Rig(std::map<std::string, FakeTarget> targets, Duration timeout = milliseconds(2000),
               const std::function<void(ProbeConfig&)>& adjust = {})
      : backend(primary, targets) {
    backend.event_loop = g_event_loop;
    config.name = "fake";
    config.interval = milliseconds(20);
    config.poll_interval = milliseconds(1);
    config.timeout = timeout;
    for (const auto& [name, t] : targets) config.targets.push_back({name, {}, std::nullopt});
    if (adjust) adjust(config);
    probe = std::make_unique<ReplicationProbe>(config, backend, report, clock);
  }
  std::vector<ProbeSummary> run_once(RunOnceLimits limits) {
    probe->run_once(limits, std::stop_token());
    return report.summarize();
  }

  FakePrimary primary;
  FakeBackend backend;
  ProbeConfig config;
  ReportSink report;
  SteadyClock clock;
  std::unique_ptr<ReplicationProbe> probe;
};

const TargetSummary& target(const std::vector<ProbeSummary>& s, const std::string& name) {
  for (const auto& t : s.at(0).targets) {
    if (t.name == name) return t;
  }
  throw std::runtime_error("no target " + name);
}

class Polling : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { g_event_loop = GetParam(); }
  void TearDown() override { g_event_loop = false; }
};
INSTANTIATE_TEST_SUITE_P(ReplicationProbe, Polling, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "EventLoop" : "ThreadPerTarget"; });

TEST_P(Polling, MeasuresEachTargetsLag) {
  Rig rig({{"fast", {milliseconds(0)}}, {"slow", {milliseconds(30)}}});
  const auto s = rig.run_once({5, Duration(0)});
  EXPECT_EQ(s[0].writes_ok, 5);
  EXPECT_EQ(target(s, "fast").samples, 5);
  EXPECT_EQ(target(s, "slow").samples, 5);
  // A canary cannot be seen before it is visible: the lag is bounded below by the replica's delay.
  EXPECT_GE(target(s, "slow").p50, 0.030);
  EXPECT_LT(target(s, "fast").p50, target(s, "slow").p50);
  EXPECT_EQ(report_exit_code(s), 0);
}

// Between canaries a reader idles (here 10 s, longer than the whole run): each write wakes it,
// it polls every poll_interval until the canary shows, and the lag keeps its resolution.
TEST_P(Polling, PollsFastOnlyWhileACanaryIsOutstanding) {
  Rig rig({{"t", {milliseconds(10)}}}, milliseconds(2000), [](ProbeConfig& c) {
    c.interval = milliseconds(100);
    c.idle_poll_interval = std::chrono::seconds(10);
  });
  const auto s = rig.run_once({10, Duration(0)});
  const TargetSummary& t = target(s, "t");
  ASSERT_EQ(t.samples, 10);
  const double per_canary = static_cast<double>(t.polls) / s[0].writes_ok;
  // Polling all along would cost about 100 polls per canary; a canary 10 ms away costs about 10.
  EXPECT_GE(per_canary, 5) << "it polls fast while the canary is outstanding";
  EXPECT_LE(per_canary, 40) << "it idles once the canary is seen";
  EXPECT_GE(t.p50, 0.010);
  EXPECT_LT(t.p50, 0.030);
  EXPECT_LT(t.resolution, 0.010);
}

// wait: server. The target answers the moment it applies each canary: the lag is exact to within
// the fake's round trip, with no polls beyond the idle ones.
TEST(ReplicationProbe, ServerSideWaitsResolveWithoutPolling) {
  Rig rig({{"t", {milliseconds(30)}}}, milliseconds(2000), [](ProbeConfig& c) {
    c.interval = milliseconds(100);
    c.wait = WaitMode::server;
  });
  const auto s = rig.run_once({5, Duration(0)});
  const TargetSummary& t = target(s, "t");
  ASSERT_EQ(t.samples, 5);
  EXPECT_GE(t.p50, 0.030);
  EXPECT_LT(t.p50, 0.035);
  EXPECT_LT(t.resolution, 0.001) << "one round trip of the waiting connection";
  EXPECT_LE(t.polls, 3) << "only the idle polls";
}

// Without the canary's position (the position query failed) the target is polled for it instead.
TEST(ReplicationProbe, ServerSideWaitsFallBackToPollsWithoutAPosition) {
  Rig rig({{"t", {milliseconds(30)}}}, milliseconds(2000), [](ProbeConfig& c) {
    c.interval = milliseconds(100);
    c.wait = WaitMode::server;
  });
  rig.primary.knows_canary_positions = false;
  const auto s = rig.run_once({5, Duration(0)});
  const TargetSummary& t = target(s, "t");
  ASSERT_EQ(t.samples, 5);
  EXPECT_GE(t.p50, 0.030);
  EXPECT_LT(t.p50, 0.045);
  EXPECT_GE(t.polls, 5 * 10) << "polled at poll_interval while each canary was outstanding";
}

TEST_P(Polling, ReceivedIsTimedApartFromVisibleWhereTheTargetReportsIt) {
  Rig rig({{"delayed", {milliseconds(40), Behaviour::healthy, milliseconds(0)}},
           {"cache", {milliseconds(10)}}});
  const auto s = rig.run_once({5, Duration(0)});
  const TargetSummary& delayed = target(s, "delayed");
  EXPECT_EQ(delayed.samples, 5);
  EXPECT_EQ(delayed.received_samples, 5);
  EXPECT_GE(delayed.p50, 0.040);
  EXPECT_LT(delayed.received_p50, 0.020) << "received at once, applied 40 ms later";
  EXPECT_EQ(target(s, "cache").received_samples, 0) << "no received position: no figure";
}

TEST_P(Polling, ReceivedCompletesWhileNothingIsApplied) {
  Rig rig({{"paused", {std::chrono::hours(1), Behaviour::healthy, milliseconds(0)}},
           {"cut", {std::chrono::hours(1), Behaviour::healthy, std::chrono::hours(1)}}},
          milliseconds(300));
  const auto s = rig.run_once({5, Duration(0)});
  EXPECT_EQ(target(s, "paused").samples, 0);
  EXPECT_EQ(target(s, "paused").timeouts, 5);
  EXPECT_EQ(target(s, "paused").received_samples, 5);
  EXPECT_EQ(target(s, "cut").received_samples, 0);
  EXPECT_EQ(target(s, "cut").timeouts, 5);
}

// Without the canaries' positions only the row can show that a canary was received.
TEST_P(Polling, ReceivedFallsBackToTheRowWithoutCanaryPositions) {
  Rig rig({{"delayed", {milliseconds(30), Behaviour::healthy, milliseconds(0)}}});
  rig.primary.knows_canary_positions = false;
  const auto s = rig.run_once({5, Duration(0)});
  const TargetSummary& delayed = target(s, "delayed");
  EXPECT_EQ(delayed.received_samples, 5);
  EXPECT_GE(delayed.received_p50, 0.030) << "no earlier than the row shows it";
}

TEST_P(Polling, FailingTargetCountsErrorsAndOthersAreMeasured) {
  Rig rig({{"ok", {milliseconds(0)}}, {"down", {Duration(0), Behaviour::failing}}}, milliseconds(200));
  const auto s = rig.run_once({5, Duration(0)});
  EXPECT_EQ(target(s, "ok").samples, 5);
  EXPECT_TRUE(target(s, "ok").reachable);
  EXPECT_GT(target(s, "down").errors, 0);
  EXPECT_FALSE(target(s, "down").reachable);
  EXPECT_EQ(target(s, "down").timeouts, 5);
  EXPECT_EQ(target(s, "down").last_error, "connection refused");
  EXPECT_EQ(report_exit_code(s), 1);
}

TEST_P(Polling, BlockedTargetDoesNotDelayTheWriterOrOtherTargets) {
  Rig rig({{"ok", {milliseconds(0)}}, {"stuck", {Duration(0), Behaviour::blocking}}}, milliseconds(300));
  const auto s = rig.run_once({10, Duration(0)});
  EXPECT_EQ(s[0].writes_ok, 10);
  EXPECT_EQ(target(s, "ok").samples, 10);
  // Had the healthy target waited for the stuck one, its lags would include a 1.5 s poll.
  EXPECT_LT(target(s, "ok").max, 1.0);
  EXPECT_EQ(target(s, "stuck").samples, 0);
  EXPECT_EQ(target(s, "stuck").timeouts, 10);
}

TEST_P(Polling, StopEndsRunEvenWithABlockedTarget) {
  Rig rig({{"stuck", {Duration(0), Behaviour::blocking}}});
  std::stop_source stop;
  std::jthread runner([&] { rig.probe->run(stop.get_token()); });
  sleep_for(std::stop_token(), milliseconds(100));
  stop.request_stop();
  runner.join();  // would hang here if a loop ignored the stop
  EXPECT_GT(rig.report.summarize()[0].writes_ok, 0);
}

// A series' value in /metrics' text; -1 when the series is absent.
double series_value(const std::string& text, const std::string& series) {
  const auto at = text.find(series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 1));
}

// Discovery changes the target set of a running probe: a target added is polled at once, a target
// removed stops (also one blocked in a poll) and its series leave, and the target that stays keeps
// its series and counts on.
TEST_P(Polling, TargetsAddedAndRemovedWhileItRunsStartStopAndLeaveTheOthersAlone) {
  FakePrimary primary;
  FakeBackend backend(primary, {{"a", {milliseconds(0)}}, {"b", {milliseconds(5)}},
                                {"stuck", {Duration(0), Behaviour::blocking}}});
  backend.event_loop = GetParam();
  ProbeConfig config;
  config.name = "fake";
  config.interval = milliseconds(20);
  config.poll_interval = milliseconds(1);
  config.timeout = milliseconds(500);
  config.targets.push_back({"a", {}, std::nullopt});
  PrometheusSink sink;
  SteadyClock clock;
  ReplicationProbe probe(config, backend, sink, clock);
  std::stop_source stop;
  std::jthread runner([&] { probe.run(stop.get_token()); });
  auto count = [&](const std::string& target) {
    return series_value(sink.render(), "ghostwatch_visibility_lag_seconds_count{probe=\"fake\",target=\"" + target + "\"}");
  };
  auto eventually = [](const std::function<bool()>& condition) {
    for (int i = 0; i < 400 && !condition(); ++i) sleep_for(std::stop_token(), milliseconds(5));
    return condition();
  };
  ASSERT_TRUE(eventually([&] { return count("a") >= 3; }));
  ASSERT_TRUE(probe.add_target({"b", {}, std::nullopt}, TargetOrigin{"file", ""}));
  ASSERT_TRUE(probe.add_target({"stuck", {}, std::nullopt}, TargetOrigin{"file", ""}));
  EXPECT_FALSE(probe.add_target({"a", {}, std::nullopt}, TargetOrigin{"file", ""})) << "a name already there";
  ASSERT_TRUE(eventually([&] { return count("b") >= 3; })) << sink.render();
  EXPECT_EQ(probe.target_names(), (std::vector<std::string>{"a", "b", "stuck"}));

  const double b_before = count("b");
  const MonoTime removing = std::chrono::steady_clock::now();
  EXPECT_TRUE(probe.remove_target("stuck"));
  EXPECT_LT(std::chrono::steady_clock::now() - removing, milliseconds(1000)) << "a blocked poll does not hold it";
  EXPECT_TRUE(probe.remove_target("a"));
  EXPECT_FALSE(probe.remove_target("a"));
  ASSERT_TRUE(eventually([&] { return sink.render().find("target=\"a\"") == std::string::npos; })) << sink.render();
  ASSERT_TRUE(eventually([&] { return sink.render().find("target=\"stuck\"") == std::string::npos; }));
  ASSERT_TRUE(eventually([&] { return count("b") >= b_before + 5; })) << "the target that stays counts on";
  EXPECT_EQ(probe.target_names(), (std::vector<std::string>{"b"}));
  stop.request_stop();
  runner.join();
  EXPECT_GE(count("b"), b_before + 5) << "its series survived the others' removal";
}

TEST_P(Polling, DurationLimitStopsWriting) {
  Rig rig({{"ok", {milliseconds(0)}}});
  const auto s = rig.run_once({0, milliseconds(200)});
  // 200 ms at one canary per 20 ms: about 10, never unbounded.
  EXPECT_GE(s[0].writes_ok, 2);
  EXPECT_LE(s[0].writes_ok, 11);
  EXPECT_EQ(target(s, "ok").samples, s[0].writes_ok);
}

}  // namespace
}  // namespace ghostwatch
