// ReadBack: the read-your-writes probe (DESIGN.md §3). For every acked canary it reads the
// canary back through every read path at every configured delay after the ack, and reports
// each read as fresh, stale or an error. The stale ratio per delay is the probability that a
// user reading that long after writing sees a ghost.
//
// One timer thread issues reads at their planned time (ack + delay) to each path's own workers;
// each path has at most max_concurrent reads in flight and a queue as long, so a slow path
// skips reads (counted) instead of piling up work, and never delays another path.
//
// A session path instead gets one task per acked canary, a cycle run by one worker on one
// session: write the path's own marker, then read it back at every delay after that write's ack.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <queue>
#include <stop_token>
#include <vector>

#include "common/clock.h"
#include "exporters/sink.h"
#include "probes/probe_config.h"
#include "probes/read_path.h"

namespace ghostwatch {

class ReadBack {
 public:
  // Plans and measures on the steady clock (acked() takes steady-clock times).
  ReadBack(const ProbeConfig& config, std::vector<std::unique_ptr<ReadPath>> paths, ProbeSink& sink);
  ~ReadBack();
  ReadBack(const ReadBack&) = delete;
  ReadBack& operator=(const ReadBack&) = delete;

  // Runs the timer and the workers until `stop`.
  void run(std::stop_token stop);
  // Schedules the read-backs of canary `seq`, acked at `t_ack` (a steady-clock time).
  void acked(int64_t seq, MonoTime t_ack);
  // Nothing scheduled, queued or in flight.
  bool idle() const;

 private:
  struct Task {
    MonoTime due;
    std::size_t path;
    std::size_t delay;
    int64_t seq;
    bool operator>(const Task& o) const { return due > o.due; }
  };
  struct Path;
  void timer_loop(std::stop_token stop);
  void dispatch(const Task& task);
  void worker_loop(std::stop_token stop, Path& path);
  void perform(const Task& task, Path& path, std::stop_token stop);
  void session_cycle(const Task& task, Path& path, std::unique_ptr<CanarySession>& kept, std::stop_token stop);
  void record_read(Path& path, std::size_t delay, int64_t written, const Result<std::optional<int64_t>>& seen,
                   Duration latency);

  const ProbeConfig config_;
  std::vector<std::unique_ptr<Path>> paths_;
  mutable std::mutex mu_;
  std::condition_variable_any timer_cv_;
  std::priority_queue<Task, std::vector<Task>, std::greater<>> timers_;
};

}  // namespace ghostwatch
