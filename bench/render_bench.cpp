// Render bench: what one /metrics scrape costs the agent at N targets, without servers.
//
// Method: a PrometheusSink with one probe of N targets, each fed as a busy replica is (40 lag
// and received samples spread over the buckets, polls, a pending age, a position and a reported
// lag, a role), so that every series a real target exports exists. Then, R times each,
// alternating so that both see the same machine:
//   - the render /metrics answers (PrometheusSink::render), its thread CPU time and size;
//   - the render compressed as a scraper asking for gzip gets it (gzip_body), its added CPU and
//     size.
// The medians are printed; the ratios between the rows carry over to other machines, not the
// absolute figures.
//
//   build/bench/render_bench [N=1000] [R=7]
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "exporters/http_compression.h"
#include "exporters/prometheus_sink.h"

namespace {

double thread_cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void feed_like_a_busy_replica(ghostwatch::TargetSink& t, int i) {
  for (int k = 0; k < 40; ++k) {
    const auto lag = std::chrono::microseconds(200 + (k * 7919 + i * 104729) % 400000);
    t.visible({k, lag, std::chrono::microseconds(1100)});
    t.received({k, lag / 3, std::chrono::microseconds(1100)});
    t.polled(true, "");
  }
  t.pending(std::chrono::milliseconds(i % 7));
  t.position_lag(ghostwatch::PositionUnit::bytes, 1234.0 + i);
  t.reported_lag(0.0123 * (i % 5));
  t.role(false);
}

}  // namespace

int main(int argc, char** argv) {
  const int targets = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 7;
  if (targets < 1 || rounds < 1) {
    std::fprintf(stderr, "usage: render_bench [TARGETS >= 1] [ROUNDS >= 1]\n");
    return 2;
  }
  ghostwatch::PrometheusSink sink;
  auto probe = sink.probe("pg", "postgres");
  std::vector<std::shared_ptr<ghostwatch::TargetSink>> handles;
  for (int i = 0; i < targets; ++i) {
    handles.push_back(probe->target("replica-" + std::to_string(i)));
    feed_like_a_busy_replica(*handles.back(), i);
  }
  std::vector<double> render_ms, gzip_ms;
  std::size_t size = 0, gzip_size = 0;
  for (int r = 0; r < rounds; ++r) {
    double t0 = thread_cpu_ms();
    const std::string text = sink.render();
    render_ms.push_back(thread_cpu_ms() - t0);
    size = text.size();

    t0 = thread_cpu_ms();
    const std::string gz = ghostwatch::gzip_body(text);
    gzip_ms.push_back(thread_cpu_ms() - t0);
    gzip_size = gz.size();
  }
  std::printf("%d targets, %d rounds, medians of thread CPU time\n", targets, rounds);
  std::printf("  render (/metrics)                 %8.1f ms  %8zu bytes\n", median(render_ms), size);
  std::printf("  gzip of the render (libdeflate 1) %8.1f ms  %8zu bytes (%.1f%% of the text; render + gzip %.1f ms)\n",
              median(gzip_ms), gzip_size, 100.0 * static_cast<double>(gzip_size) / static_cast<double>(size),
              median(render_ms) + median(gzip_ms));
  return 0;
}
