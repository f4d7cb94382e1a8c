// How precisely the read-your-writes scheduler issues reads at ack + delay.
//
// Method: the real ReadBack scheduler with in-memory read paths that answer at once, so that
// only the scheduler is measured (timer wake-up, hand-off to a worker). Canaries are "acked"
// every 10 ms for the run's duration; each is read back through every path at every delay; the
// offset of each read (issue time - planned time) goes to the report sink, whose percentiles
// are printed. Run it on an otherwise idle machine and compare runs made on the same machine:
//
//   build/bench/read_schedule_bench [seconds=5] [paths=3]
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "common/interruptible.h"
#include "exporters/report.h"
#include "probes/read_back.h"

namespace {

class InstantPath final : public ghostwatch::ReadPath {
 public:
  ghostwatch::Result<std::optional<int64_t>> read(int64_t written, std::stop_token) override {
    return std::optional<int64_t>(written);
  }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace ghostwatch;
  using std::chrono::milliseconds;
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
  const int path_count = argc > 2 ? std::atoi(argv[2]) : 3;
  ProbeConfig config;
  config.name = "bench";
  std::vector<std::unique_ptr<ReadPath>> paths;
  for (int i = 0; i < path_count; ++i) {
    ReadPathConfig r;
    r.name = "path-" + std::to_string(i);
    config.read_paths.push_back(r);
    paths.push_back(std::make_unique<InstantPath>());
  }
  for (int ms : {0, 10, 50, 100, 250}) config.read_delays.push_back({milliseconds(ms), std::to_string(ms) + "ms"});
  ReportSink report;
  auto sink = report.probe("bench", "none");
  ReadBack read_back(config, std::move(paths), *sink);
  std::stop_source stop;
  std::jthread runner([&] { read_back.run(stop.get_token()); });
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  int64_t seq = 0;
  for (auto next = std::chrono::steady_clock::now(); next < end; next += milliseconds(10)) {
    sleep_until(std::stop_token(), next);
    read_back.acked(++seq, std::chrono::steady_clock::now());
  }
  while (!read_back.idle()) sleep_for(std::stop_token(), milliseconds(10));
  stop.request_stop();
  runner.join();
  const std::vector<ProbeSummary> summary = report.summarize();
  for (const ReadPathSummary& p : summary.at(0).read_paths) {
    long reads = 0;
    for (const DelaySummary& d : p.delays) reads += d.reads;
    std::printf("%s: %ld reads, issued late by p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", p.name.c_str(), reads,
                p.offset_p50 * 1e3, p.offset_p99 * 1e3, p.offset_max * 1e3);
  }
  return 0;
}
