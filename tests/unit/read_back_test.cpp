// The read-your-writes machinery without servers: the scheduler against fake read paths, the
// report's ratios and recommended window, the Wilson interval, HTTP seq extraction.
#include "probes/read_back.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "common/interruptible.h"
#include "common/wilson.h"
#include "exporters/report.h"
#include "probes/read_paths.h"

namespace ghostwatch {
namespace {

using std::chrono::milliseconds;

// A path that shows writes `lag` after they happened, records when it was asked, and can fail
// or block.
class FakePath final : public ReadPath {
 public:
  FakePath(Duration lag, bool fail = false, Duration block = Duration(0)) : lag_(lag), fail_(fail), block_(block) {}
  void written(int64_t seq) {
    std::lock_guard lock(mu_);
    writes_.emplace_back(seq, std::chrono::steady_clock::now());
  }
  Result<std::optional<int64_t>> read(int64_t, std::stop_token stop) override {
    ++*reads;
    if (block_ > Duration(0)) sleep_for(stop, block_);
    if (fail_) return Error{"connection refused"};
    std::lock_guard lock(mu_);
    std::optional<int64_t> seen;
    for (auto& [seq, at] : writes_) {
      if (at + lag_ <= std::chrono::steady_clock::now()) seen = seq;
    }
    return seen;
  }
  // Shared, so that a test can count reads after the scheduler has destroyed the path.
  std::shared_ptr<std::atomic<int>> reads = std::make_shared<std::atomic<int>>(0);

 private:
  Duration lag_;
  bool fail_;
  Duration block_;
  std::mutex mu_;
  std::vector<std::pair<int64_t, MonoTime>> writes_;
};

ProbeConfig config_with(std::vector<std::string> paths, std::vector<int> delays_ms, int max_concurrent = 8) {
  ProbeConfig c;
  c.name = "p";
  for (auto& p : paths) {
    ReadPathConfig r;
    r.name = p;
    r.max_concurrent = max_concurrent;
    c.read_paths.push_back(r);
  }
  for (int ms : delays_ms) c.read_delays.push_back({milliseconds(ms), std::to_string(ms) + "ms"});
  return c;
}

// Runs a ReadBack over `paths` (in config order), feeds it `n` canaries `gap` apart, each
// acked `acked_ago` before it is fed (after `before_ack(seq)`), waits until it is idle, and
// returns the probe's summary.
ProbeSummary run_paths(const ProbeConfig& config, std::vector<std::unique_ptr<ReadPath>> paths, int n, Duration gap,
                       Duration acked_ago, const std::function<void(int64_t)>& before_ack = {}) {
  ReportSink report({{config.name, ReportProbeOptions{.stale_target = 0.001}}});
  auto probe_sink = report.probe(config.name, "fake");
  ReadBack rb(config, std::move(paths), *probe_sink);
  std::stop_source stop;
  std::jthread runner([&] { rb.run(stop.get_token()); });
  for (int seq = 1; seq <= n; ++seq) {
    if (before_ack) before_ack(seq);
    rb.acked(seq, std::chrono::steady_clock::now() - acked_ago);
    sleep_for(std::stop_token(), gap);
  }
  for (int i = 0; i < 500 && !rb.idle(); ++i) sleep_for(std::stop_token(), milliseconds(10));
  EXPECT_TRUE(rb.idle());
  stop.request_stop();
  runner.join();
  return report.summarize().at(0);
}

// Writes `n` canaries 30 ms apart to every fake path, acked as they are written.
ProbeSummary run_read_back(const ProbeConfig& config, std::vector<std::unique_ptr<FakePath>> fakes, int n) {
  std::vector<FakePath*> raw;
  std::vector<std::unique_ptr<ReadPath>> paths;
  for (auto& f : fakes) {
    raw.push_back(f.get());
    paths.push_back(std::move(f));
  }
  return run_paths(config, std::move(paths), n, milliseconds(30), Duration(0), [&raw](int64_t seq) {
    for (FakePath* p : raw) p->written(seq);
  });
}

TEST(ReadBack, StaleUntilThePathCatchesUpThenFresh) {
  // Far apart (0.5 s lag, reads at 0 and 1 s) so that a busy machine cannot blur the shape.
  std::vector<std::unique_ptr<FakePath>> fakes;
  fakes.push_back(std::make_unique<FakePath>(milliseconds(500)));
  fakes.push_back(std::make_unique<FakePath>(Duration(0)));
  const ProbeSummary s = run_read_back(config_with({"lagging", "instant"}, {0, 1000}), std::move(fakes), 10);
  ASSERT_EQ(s.read_paths.size(), 2u);
  const ReadPathSummary& lag = s.read_paths[0];
  EXPECT_EQ(lag.delays[0].reads, 10);
  EXPECT_EQ(lag.delays[0].stale, 10);  // read at once, 0.5 s before the write shows
  EXPECT_EQ(lag.delays[1].stale, 0);   // read 1 s later
  EXPECT_EQ(lag.recommended, "1000ms");
  EXPECT_EQ(s.read_paths[1].delays[0].stale, 0);
  EXPECT_EQ(s.read_paths[1].recommended, "0ms");
  EXPECT_GE(lag.offset_p50, 0.0);
  EXPECT_LT(lag.offset_max, 0.5);  // a sanity bound, not a timing assertion
}

TEST(ReadBack, ErrorsAreNotStaleAndASaturatedPathSkipsInsteadOfPilingUp) {
  std::vector<std::unique_ptr<FakePath>> fakes;
  fakes.push_back(std::make_unique<FakePath>(Duration(0), /*fail=*/true));
  fakes.push_back(std::make_unique<FakePath>(Duration(0), false, milliseconds(200)));
  const auto slow_reads = fakes[1]->reads;
  const ProbeSummary s = run_read_back(config_with({"down", "slow"}, {0}, /*max_concurrent=*/1), std::move(fakes), 10);
  EXPECT_EQ(s.read_paths[0].delays[0].errors, 10);
  EXPECT_EQ(s.read_paths[0].delays[0].stale, 0);
  EXPECT_FALSE(s.read_paths[0].recommended.has_value());  // nothing answered: no recommendation
  EXPECT_FALSE(s.read_paths[0].answered);
  EXPECT_EQ(s.read_paths[0].last_error, "connection refused");
  // One read in flight and one waiting at most: 10 canaries 30 ms apart against 200 ms reads.
  const DelaySummary& slow_counts = s.read_paths[1].delays[0];
  EXPECT_GT(slow_counts.skipped, 0);
  EXPECT_EQ(slow_counts.reads + slow_counts.skipped, 10);
  EXPECT_EQ(slow_reads->load(), slow_counts.reads);
}

TEST(ReadBack, StopEndsRunWithReadsStillPlanned) {
  const ProbeConfig config = config_with({"p"}, {60000});
  std::vector<std::unique_ptr<ReadPath>> paths;
  paths.push_back(std::make_unique<FakePath>(Duration(0)));
  ReportSink report;
  auto probe_sink = report.probe("p", "fake");
  ReadBack rb(config, std::move(paths), *probe_sink);
  std::stop_source stop;
  std::jthread runner([&] { rb.run(stop.get_token()); });
  rb.acked(1, std::chrono::steady_clock::now());
  EXPECT_FALSE(rb.idle());
  stop.request_stop();
  runner.join();  // would hang if the timer ignored the stop
}

// A session path whose store shows a write `lag` after it, except to the session that wrote it
// when `sticky` (a middleware that keeps a writer's session on the primary). Counts the sessions
// it opens.
class FakeSessionPath final : public ReadPath {
 public:
  FakeSessionPath(Duration lag, bool sticky, bool keep, bool fail_writes = false)
      : lag_(lag), sticky_(sticky), keep_(keep), fail_writes_(fail_writes) {}
  Result<std::optional<int64_t>> read(int64_t, std::stop_token) override { return Error{"not a plain path"}; }
  bool keeps_sessions() const override { return keep_; }
  std::unique_ptr<CanarySession> open_session() override {
    ++*opened;
    return std::make_unique<Session>(*this);
  }
  std::shared_ptr<std::atomic<int>> opened = std::make_shared<std::atomic<int>>(0);

 private:
  struct Session final : CanarySession {
    explicit Session(FakeSessionPath& p) : p(p) {}
    Status open(std::stop_token) override { return ok_status(); }
    Result<int64_t> write(std::stop_token) override {
      if (p.fail_writes_) return Error{"read-only transaction"};
      std::lock_guard lock(p.mu_);
      own = ++p.seq_;
      p.writes_.emplace_back(own, std::chrono::steady_clock::now());
      return own;
    }
    Result<std::optional<int64_t>> read(std::stop_token) override {
      std::lock_guard lock(p.mu_);
      std::optional<int64_t> seen;
      for (auto& [seq, at] : p.writes_) {
        if (at + p.lag_ <= std::chrono::steady_clock::now() || (p.sticky_ && seq == own)) seen = std::max(seen.value_or(0), seq);
      }
      return seen;
    }
    FakeSessionPath& p;
    int64_t own = 0;
  };
  Duration lag_;
  bool sticky_, keep_, fail_writes_;
  std::mutex mu_;
  int64_t seq_ = 0;
  std::vector<std::pair<int64_t, MonoTime>> writes_;
};

// Each canary acked a whole second before it is fed: a session path that counted its delays
// from the canary's ack would read everything at once, and see it all stale.
ProbeSummary run_sessions(const ProbeConfig& config, std::unique_ptr<ReadPath> path, int n) {
  std::vector<std::unique_ptr<ReadPath>> paths;
  paths.push_back(std::move(path));
  return run_paths(config, std::move(paths), n, milliseconds(50), std::chrono::seconds(1));
}

ProbeConfig session_config(int max_concurrent) {
  ProbeConfig c = config_with({"session"}, {0, 400}, max_concurrent);
  c.read_paths[0].session = true;
  return c;
}

TEST(ReadBack, ASessionPathReadsItsOwnWriteAtEachDelayAfterItsOwnAck) {
  auto path = std::make_unique<FakeSessionPath>(milliseconds(200), /*sticky=*/false, /*keep=*/false);
  const auto opened = path->opened;
  const ProbeSummary s = run_sessions(session_config(8), std::move(path), 6);
  const ReadPathSummary& r = s.read_paths.at(0);
  EXPECT_TRUE(r.session);
  EXPECT_EQ(r.writes_ok, 6);
  EXPECT_EQ(r.write_errors, 0);
  EXPECT_EQ(r.delays[0].reads, 6);
  EXPECT_EQ(r.delays[0].stale, 6);  // at once: 0.2 s before its write shows
  EXPECT_EQ(r.delays[1].reads, 6);
  EXPECT_EQ(r.delays[1].stale, 0);  // 0.4 s after the session's own ack, not the canary's
  EXPECT_EQ(opened->load(), 6);     // per_read: a new session every cycle
  EXPECT_EQ(s.writes_ok, 0);        // the probe's canary count is the probe's own
}

TEST(ReadBack, ASessionKeptOnThePrimaryByTheMiddlewareReadsNoGhost) {
  auto path = std::make_unique<FakeSessionPath>(milliseconds(200), /*sticky=*/true, /*keep=*/true);
  const auto opened = path->opened;
  const ProbeSummary s = run_sessions(session_config(2), std::move(path), 6);
  const DelaySummary& at_once = s.read_paths.at(0).delays[0];
  EXPECT_GT(at_once.reads, 0);
  EXPECT_EQ(at_once.stale, 0);
  // Two sessions, each busy 0.4 s a cycle, against a cycle every 50 ms: whole cycles skip.
  EXPECT_EQ(at_once.reads + at_once.skipped, 6);
  EXPECT_EQ(s.read_paths.at(0).delays[1].skipped, at_once.skipped);
  EXPECT_LE(opened->load(), 2);  // pool: each worker keeps its session
}

TEST(ReadBack, ASessionWhoseWriteFailsCountsErrorsNotStaleReads) {
  auto path = std::make_unique<FakeSessionPath>(Duration(0), false, false, /*fail_writes=*/true);
  const ProbeSummary s = run_sessions(session_config(8), std::move(path), 3);
  const ReadPathSummary& r = s.read_paths.at(0);
  EXPECT_EQ(r.write_errors, 3);
  EXPECT_EQ(r.delays[0].errors, 3);
  EXPECT_EQ(r.delays[0].stale, 0);
  EXPECT_NE(r.last_error.find("read-only transaction"), std::string::npos);
}

TEST(Wilson, KnownIntervals) {
  auto [lo, hi] = wilson_interval(0, 0);
  EXPECT_EQ(lo, 0.0);
  EXPECT_EQ(hi, 1.0);
  std::tie(lo, hi) = wilson_interval(50, 100);
  EXPECT_NEAR(lo, 0.4038, 1e-4);
  EXPECT_NEAR(hi, 0.5962, 1e-4);
  std::tie(lo, hi) = wilson_interval(0, 200);  // no stale read in 200 still allows ~1.9%
  EXPECT_EQ(lo, 0.0);
  EXPECT_EQ(wilson_interval(7, 7).second, 1.0);
  EXPECT_NEAR(hi, 0.01884, 1e-4);
}

TEST(ReportRecommendation, NeedsEveryLongerDelayToMeetTheTarget) {
  ReportSink report({{"p", ReportProbeOptions{.stale_target = 0.05}}});
  auto probe = report.probe("p", "fake");
  auto path = probe->read_path("lb", {"0ms", "10ms", "50ms", "100ms"});
  auto reads = [&](std::size_t d, int fresh, int stale) {
    for (int i = 0; i < fresh; ++i) path->read(d, ReadOutcome::fresh, Duration(0), "");
    for (int i = 0; i < stale; ++i) path->read(d, ReadOutcome::stale, Duration(0), "");
  };
  reads(0, 50, 50);
  reads(1, 99, 1);   // 1% <= 5%, but 50ms is worse again
  reads(2, 90, 10);
  reads(3, 100, 0);
  const auto s = report.summarize().at(0).read_paths.at(0);
  EXPECT_EQ(s.recommended, "100ms");
  EXPECT_DOUBLE_EQ(s.delays[0].stale_ratio, 0.5);
  const auto json = report_json(report.summarize());
  EXPECT_EQ(json["probes"][0]["read_paths"][0]["recommended_window"], "100ms");
  EXPECT_EQ(json["probes"][0]["read_paths"][0]["delays"][2]["stale"], 10);
}

TEST(HttpReadPath, ExpandsTheUrlTemplate) {
  EXPECT_EQ(expand_url("http://app/canary/{agent}/{probe}?after={seq}", "web 1", "pg", 42),
            "http://app/canary/web%201/pg?after=42");
}

TEST(HttpReadPath, ExtractsTheSeqByPointerOrRegex) {
  ReadPathConfig json_path;
  json_path.seq_pointer = "/canary/seq";
  EXPECT_EQ(extract_seq(R"({"canary":{"seq":17}})", json_path).value(), 17);
  EXPECT_EQ(extract_seq(R"({"canary":{"seq":"18"}})", json_path).value(), 18);
  EXPECT_NE(extract_seq(R"({"canary":{}})", json_path).error().message.find("no value at /canary/seq"), std::string::npos);
  EXPECT_NE(extract_seq("<html>", json_path).error().message.find("not JSON"), std::string::npos);
  EXPECT_FALSE(extract_seq(R"({"canary":{"seq":1.5}})", json_path).ok());
  ReadPathConfig regex_path;
  regex_path.seq_regex = "seq=([0-9]+)";
  EXPECT_EQ(extract_seq("ok seq=99 done", regex_path).value(), 99);
  EXPECT_FALSE(extract_seq("nothing here", regex_path).ok());
}

}  // namespace
}  // namespace ghostwatch
