#include "probes/read_back.h"

#include <thread>

#include "common/interruptible.h"

namespace ghostwatch {

struct ReadBack::Path {
  std::string name;
  std::unique_ptr<ReadPath> reader;
  std::shared_ptr<ReadPathSink> sink;
  int workers = 1;
  std::mutex mu;
  std::condition_variable_any cv;
  std::deque<Task> queue;
  int busy = 0;
  bool session = false;  // a session path: one cycle task per canary
};

namespace {
// The delay index of a session path's cycle task: all the delays, on one session.
constexpr std::size_t kWholeCycle = static_cast<std::size_t>(-1);
}  // namespace

ReadBack::ReadBack(const ProbeConfig& config, std::vector<std::unique_ptr<ReadPath>> readers, ProbeSink& sink)
    : config_(config) {
  std::vector<std::string> labels;
  for (const ReadDelay& d : config.read_delays) labels.push_back(d.label);
  for (std::size_t i = 0; i < readers.size(); ++i) {
    const ReadPathConfig& c = config.read_paths.at(i);
    auto path = std::make_unique<Path>();
    path->name = c.name;
    path->reader = std::move(readers[i]);
    path->sink = sink.read_path(c.name, labels);
    path->workers = c.kind == ReadPathConfig::Kind::dsn && c.connection == ReadPathConfig::Connection::pool
                        ? c.pool_size
                        : c.max_concurrent;
    path->session = c.session;
    paths_.push_back(std::move(path));
  }
}

ReadBack::~ReadBack() = default;

void ReadBack::run(std::stop_token stop) {
  std::vector<std::jthread> threads;
  for (auto& path : paths_) {
    for (int i = 0; i < path->workers; ++i) {
      threads.emplace_back([this, &path, stop] { worker_loop(stop, *path); });
    }
  }
  timer_loop(stop);
}  // joins the workers

void ReadBack::acked(int64_t seq, MonoTime t_ack) {
  {
    std::lock_guard lock(mu_);
    for (std::size_t p = 0; p < paths_.size(); ++p) {
      if (paths_[p]->session) {
        timers_.push(Task{t_ack, p, kWholeCycle, seq});
        continue;
      }
      for (std::size_t d = 0; d < config_.read_delays.size(); ++d) {
        timers_.push(Task{t_ack + config_.read_delays[d].delay, p, d, seq});
      }
    }
  }
  timer_cv_.notify_one();
}

bool ReadBack::idle() const {
  std::lock_guard lock(mu_);
  if (!timers_.empty()) return false;
  for (const auto& path : paths_) {
    std::lock_guard plock(path->mu);
    if (!path->queue.empty() || path->busy > 0) return false;
  }
  return true;
}

void ReadBack::timer_loop(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    if (timers_.empty()) {
      timer_cv_.wait(lock, stop, [this] { return !timers_.empty(); });
      continue;
    }
    const MonoTime due = timers_.top().due;
    if (std::chrono::steady_clock::now() < due) {
      // Until the task is due, an earlier task arrives, or stop; then look again.
      timer_cv_.wait_until(lock, stop, due, [this, due] { return timers_.top().due < due; });
      continue;
    }
    const Task task = timers_.top();
    timers_.pop();
    lock.unlock();
    dispatch(task);
    lock.lock();
  }
}

// Hands the task to the path's workers, or skips it when the path is saturated: all workers
// busy and as many reads already waiting.
void ReadBack::dispatch(const Task& task) {
  Path& path = *paths_[task.path];
  {
    std::lock_guard lock(path.mu);
    if (path.queue.size() >= static_cast<std::size_t>(path.workers)) {
      if (task.delay != kWholeCycle) path.sink->skipped(task.delay);
      for (std::size_t d = 0; task.delay == kWholeCycle && d < config_.read_delays.size(); ++d) path.sink->skipped(d);
      return;
    }
    path.queue.push_back(task);
  }
  path.cv.notify_one();
}

void ReadBack::worker_loop(std::stop_token stop, Path& path) {
  std::unique_ptr<CanarySession> kept;  // a session path's pooled session, this worker's own
  while (true) {
    Task task;
    {
      std::unique_lock lock(path.mu);
      if (!path.cv.wait(lock, stop, [&path] { return !path.queue.empty(); })) return;
      task = path.queue.front();
      path.queue.pop_front();
      ++path.busy;
    }
    if (path.session) session_cycle(task, path, kept, stop);
    else perform(task, path, stop);
    std::lock_guard lock(path.mu);
    --path.busy;
  }
}

void ReadBack::perform(const Task& task, Path& path, std::stop_token stop) {
  const MonoTime start = std::chrono::steady_clock::now();
  path.sink->schedule_offset(start - task.due);
  Result<std::optional<int64_t>> seen = path.reader->read(task.seq, stop);
  const Duration latency = std::chrono::steady_clock::now() - start;
  if (stop.stop_requested()) return;
  record_read(path, task.delay, task.seq, seen, latency);
}

void ReadBack::record_read(Path& path, std::size_t delay, int64_t written, const Result<std::optional<int64_t>>& seen,
                           Duration latency) {
  if (!seen) {
    path.sink->read(delay, ReadOutcome::error, latency, seen.error().message);
    return;
  }
  const bool fresh = seen.value() && *seen.value() >= written;
  path.sink->read(delay, fresh ? ReadOutcome::fresh : ReadOutcome::stale, latency, "");
}

// The delays count from this session's own write's ack, not the probe's canary's: the task only
// paces the cycles. A failed write leaves nothing to read back: each delay counts an error, and
// the session is closed (the next cycle opens a new one).
void ReadBack::session_cycle(const Task& task, Path& path, std::unique_ptr<CanarySession>& kept, std::stop_token stop) {
  std::unique_ptr<CanarySession> session = kept ? std::move(kept) : path.reader->open_session();
  if (!session) {
    path.sink->written(false, Duration{0}, "this backend has no session read paths");
    return;
  }
  path.sink->schedule_offset(std::chrono::steady_clock::now() - task.due);
  const Status opened = session->open(stop);
  const MonoTime start = std::chrono::steady_clock::now();
  const Result<int64_t> seq = opened ? session->write(stop) : Result<int64_t>(opened.error());
  const MonoTime ack = std::chrono::steady_clock::now();
  if (stop.stop_requested()) return;
  path.sink->written(static_cast<bool>(seq), ack - start, seq ? "" : seq.error().message);
  if (!seq) {
    for (std::size_t d = 0; d < config_.read_delays.size(); ++d) {
      path.sink->read(d, ReadOutcome::error, Duration{0}, "the session's own write failed: " + seq.error().message);
    }
    return;
  }
  bool failed = false;
  for (std::size_t d = 0; d < config_.read_delays.size(); ++d) {
    const MonoTime due = ack + config_.read_delays[d].delay;
    sleep_until(stop, due);
    if (stop.stop_requested()) return;
    const MonoTime read_start = std::chrono::steady_clock::now();
    path.sink->schedule_offset(read_start - due);
    const Result<std::optional<int64_t>> seen = session->read(stop);
    if (stop.stop_requested()) return;
    record_read(path, d, seq.value(), seen, std::chrono::steady_clock::now() - read_start);
    failed = failed || !seen;
  }
  if (path.reader->keeps_sessions() && !failed) kept = std::move(session);
}

}  // namespace ghostwatch
