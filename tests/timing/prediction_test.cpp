// Predictive polling against the sandbox's delayed replica (pg-replica-2, recovery_min_apply_delay
// 200 ms), side by side in one agent: probe "fixed" (prediction: off) and probe "predicted"
// watch the same replica at 1 ms polling. Every sample is read from /metrics as it comes (the
// histogram's sum and count step by one sample; the resolution gauge is that sample's window),
// and so are the polls between samples. Label timing: release stage only.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <thread>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;

// The bounds on time are the release build's: this suite runs in the release stage only (under
// the sanitizers every integration test exercises the same schedule, prediction being on).
constexpr double kSlack = 1;

struct Sample {
  double lag = 0, resolution = 0;
  double polls = 0;  // polls of its target since the previous sample
};

std::string probe_yaml(const std::string& name, bool prediction) {
  return "  - name: " + name + R"(
    kind: postgres
    primary: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
    interval: 500ms
    poll_interval: 1ms
    timeout: 10s
    prediction: )" + (prediction ? "on" : "off") + R"(
    targets:
      - name: replica-2
        dsn: "${GW_PG_REPLICA2_DSN} password=${GW_PG_PASSWORD}"
)";
}

// Watches the agent's /metrics every 20 ms and turns each step of a probe's lag count into one
// sample (canaries are 500 ms apart: a step is one canary).
class SampleLog {
 public:
  explicit SampleLog(const Agent& agent) : agent_(agent) {}

  void watch_for(std::chrono::milliseconds how_long) {
    const auto end = std::chrono::steady_clock::now() + how_long;
    while (std::chrono::steady_clock::now() < end) {
      const std::string metrics = agent_.metrics();
      for (const char* probe : {"fixed", "predicted"}) take(metrics, probe);
      std::this_thread::sleep_for(20ms);
    }
  }
  const std::vector<Sample>& of(const std::string& probe) { return samples_[probe]; }

 private:
  struct Last {
    double count = -1, sum = 0, polls = 0;
  };
  void take(const std::string& metrics, const std::string& probe) {
    const auto count = metric_value(metrics, series("ghostwatch_visibility_lag_seconds_count", probe, "replica-2"));
    const auto sum = metric_value(metrics, series("ghostwatch_visibility_lag_seconds_sum", probe, "replica-2"));
    const auto resolution = metric_value(metrics, series("ghostwatch_visibility_resolution_seconds", probe, "replica-2"));
    const auto polls = metric_value(metrics, series("ghostwatch_polls_total", probe, "replica-2"));
    if (!count || !sum || !polls) return;
    Last& last = last_[probe];
    if (last.count >= 0 && *count == last.count + 1 && resolution) {
      samples_[probe].push_back({*sum - last.sum, *resolution, *polls - last.polls});
    }
    if (*count != last.count) last = {*count, *sum, *polls};
  }
  const Agent& agent_;
  std::map<std::string, Last> last_;
  std::map<std::string, std::vector<Sample>> samples_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? -1 : v[v.size() / 2];
}

struct Summary {
  double polls_per_canary, p50_lag, p50_resolution;
  std::size_t samples;
};

// The samples after the first `skip` (the predictor needs a few).
Summary summarize(const std::vector<Sample>& all, std::size_t skip) {
  std::vector<double> lags, resolutions;
  double polls = 0;
  for (std::size_t i = skip; i < all.size(); ++i) {
    lags.push_back(all[i].lag);
    resolutions.push_back(all[i].resolution);
    polls += all[i].polls;
  }
  const double n = static_cast<double>(lags.size());
  return {n > 0 ? polls / n : -1, median(lags), median(resolutions), lags.size()};
}

std::string describe(const std::string& name, const Summary& s) {
  return name + " " + fixed(s.polls_per_canary, 1) + " polls per canary, p50 lag " + ms(s.p50_lag) +
         ", p50 resolution " + ms(s.p50_resolution);
}

std::string describe(const std::vector<Sample>& samples, std::size_t from, std::size_t n) {
  std::string out;
  for (std::size_t i = from; i < std::min(samples.size(), from + n); ++i) {
    out += (out.empty() ? "" : "; ") + ms(samples[i].lag) + " (window " + ms(samples[i].resolution) + ", " +
           fixed(samples[i].polls, 0) + " polls)";
  }
  return out;
}

// Restores the sandbox's 200 ms apply delay however the test ends.
struct ApplyDelay {
  explicit ApplyDelay(int ms) { set(ms); }
  ~ApplyDelay() { set(200); }
  static void set(int ms) {
    const auto r = run_sandbox({"set-delay", "pg-replica-2", std::to_string(ms)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
};

using Prediction = SandboxTest;

TEST_F(Prediction, SideBySideOnAReplica200msBehind) {
  ASSERT_EQ(require_env("GW_PG_DELAY_MS"), "200");
  const std::string config =
      write_temp_file(agent_yaml() + probe_yaml("fixed", false) + probe_yaml("predicted", true), ".yaml");
  Agent agent(config, free_port());
  ASSERT_TRUE(agent.alive()) << agent.log();
  SampleLog log(agent);
  log.watch_for(25s);
  const Summary fixed_polls = summarize(log.of("fixed"), 6), predicted = summarize(log.of("predicted"), 6);
  record_figure("prediction, replica 200 ms behind, poll_interval 1ms, " + std::to_string(predicted.samples) +
                " canaries each: " + describe("fixed", fixed_polls) + "; " + describe("predicted", predicted));
  ASSERT_GE(predicted.samples, 30u) << agent.log();
  ASSERT_GE(fixed_polls.samples, 30u);
  EXPECT_LE(predicted.polls_per_canary, 20);
  EXPECT_GE(fixed_polls.polls_per_canary, 100) << "the fixed schedule polls from the ack";
  EXPECT_LE(predicted.p50_resolution, 0.002 * kSlack);
  EXPECT_NEAR(predicted.p50_lag, fixed_polls.p50_lag, 0.002 * kSlack);
  EXPECT_GE(predicted.p50_lag, kLeastApplyDelayLag);
  std::remove(config.c_str());
}

// The lag drops from 200 ms to 0, then rises to 500 ms: the predictor follows within a few
// canaries, and meanwhile the wide windows are reported as they are.
TEST_F(Prediction, FollowsADropAndARiseOfTheLag) {
  const std::string config = write_temp_file(agent_yaml() + probe_yaml("predicted", true), ".yaml");
  Agent agent(config, free_port());
  ASSERT_TRUE(agent.alive()) << agent.log();
  SampleLog log(agent);
  log.watch_for(6s);
  const std::size_t before_drop = log.of("predicted").size();
  ASSERT_GE(before_drop, 8u) << agent.log();
  ApplyDelay delay(0);
  log.watch_for(6s);
  const std::size_t before_rise = log.of("predicted").size();
  ApplyDelay::set(500);
  log.watch_for(10s);
  const auto& s = log.of("predicted");
  record_figure("prediction, lag 200 -> 0 ms, the samples after the drop: " + describe(s, before_drop, 6));
  record_figure("prediction, lag 0 -> 500 ms, the samples after the rise: " + describe(s, before_rise, 8));

  // The drop: a canary that arrived during the wait is caught by its first poll, and its window
  // says how wide that was; from the next on, the windows are fine again.
  ASSERT_GE(s.size(), before_rise + 10);
  bool wide_window_shown = false;
  for (std::size_t i = before_drop; i < std::min(before_drop + 2, before_rise); ++i) {
    wide_window_shown = wide_window_shown || s[i].resolution > 0.050;
  }
  EXPECT_TRUE(wide_window_shown) << describe(s, before_drop, 4);
  std::size_t fine_again = before_rise;
  for (std::size_t i = before_drop; i < before_rise; ++i) {
    if (s[i].lag < 0.050 && s[i].resolution <= 0.002 * kSlack) {
      fine_again = i;
      break;
    }
  }
  EXPECT_LE(fine_again - before_drop, 3u) << describe(s, before_drop, 8);
  // The rise: the lag is measured finely from the first 500 ms canary on (polled from the ack),
  // and after a few the polls per canary come down again.
  std::size_t first_slow = s.size();
  for (std::size_t i = before_rise; i < s.size(); ++i) {
    if (s[i].lag > 0.4) {
      first_slow = i;
      break;
    }
  }
  // A prediction that ran late would show as a window of tens of milliseconds; a single poll
  // held up a few milliseconds by a busy machine is not that, so each window is bounded loosely
  // and their median tightly.
  ASSERT_LT(first_slow + 8, s.size()) << describe(s, before_rise, 12);
  std::vector<double> windows;
  for (std::size_t i = first_slow; i < first_slow + 8; ++i) {
    EXPECT_LE(s[i].resolution, 0.020) << "sample " << i << ": " << describe(s, i, 1);
    windows.push_back(s[i].resolution);
  }
  EXPECT_LE(median(windows), 0.002 * kSlack) << describe(s, first_slow, 8);
  EXPECT_GE(s[first_slow].polls, 300) << "before the predictor follows, polled from the ack";
  EXPECT_LE(s[first_slow + 6].polls, 60) << describe(s, first_slow, 8);
  std::remove(config.c_str());
}

}  // namespace
}  // namespace ghostwatch::testing
