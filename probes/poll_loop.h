// PollLoop: one thread that runs many tasks' non-blocking steps, with epoll for their sockets and
// a timer heap for their schedules and deadlines, so that a thousand polled targets cost one
// thread instead of a thousand, and a slow or dead target holds only its own socket and timer.
// A task is a state machine: each step says what it waits for next (its socket, a time, or
// both), and the loop runs its next step when that comes, or when another thread wakes it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <vector>

#include "common/clock.h"

namespace ghostwatch {

// What a task waits for after a step. A step that waits for nothing is never run again unless
// woken. The socket is watched only until the next step: an idle task returns none (a socket
// that is not being read would otherwise wake the loop over and over), and a step that closed
// its socket must not return its number.
struct Await {
  int fd = -1;  // -1: no socket
  bool read = false, write = false;
  std::optional<MonoTime> until;  // steady clock: a schedule or a deadline
};

// Why a step runs.
enum class Wakeup { timer, io, woken };

class LoopTask {
 public:
  virtual ~LoopTask() = default;
  // `readable`/`writable` are set for Wakeup::io (an error or hang-up counts as readable, so
  // that the task's next read reports it).
  virtual Await step(Wakeup why, bool readable, bool writable) = 0;
};

class PollLoop {
 public:
  // Throws std::system_error when the kernel refuses an epoll or eventfd descriptor.
  // `slack`: how late a timer may run, so that timers due close together run in one wake-up
  // (see wait_timeout_ns).
  explicit PollLoop(Duration slack = Duration(0));
  ~PollLoop();
  PollLoop(const PollLoop&) = delete;
  PollLoop& operator=(const PollLoop&) = delete;

  // Adds a task, before run or on the loop's thread (see post); its first step runs at `first`
  // with Wakeup::timer. The task must outlive the loop's run or its remove().
  std::size_t add(LoopTask& task, MonoTime first);
  // On the loop's thread: the task leaves the loop (its socket unwatched, its timer and wakes
  // dropped) and may be destroyed. Its id is never given to another task, so that a late wake()
  // from another thread cannot step a stranger.
  void remove(std::size_t id);
  // From any thread: `fn` runs on the loop's thread, between steps (before run starts: at its
  // start), which is where tasks are added and removed while the loop runs. Functions posted
  // after the loop stopped never run.
  void post(std::function<void()> fn);
  // From any thread: the task's next step runs soon with Wakeup::woken.
  void wake(std::size_t id);
  // The same for many tasks, with one signal to the loop.
  void wake(const std::vector<std::size_t>& ids);
  // Runs steps until `stop` is requested.
  void run(std::stop_token stop);

 private:
  static constexpr std::size_t kNotQueued = ~std::size_t{0};
  struct Entry {
    LoopTask* task;
    int fd = -1;
    uint32_t events = 0;
    MonoTime timer_at{};
    std::size_t heap_at = kNotQueued;  // its place in timers_, or kNotQueued without a timer
  };
  void dispatch(std::size_t id, Wakeup why, bool readable, bool writable);
  void apply(std::size_t id, const Await& a);
  void watch(Entry& e, std::size_t id, int fd, uint32_t events);
  void run_due_timers();
  void run_woken();
  int wait_timeout_ns() const;
  // The timers: a binary min-heap of task ids by timer_at, each task at most once, so that a
  // rescheduled or cancelled timer is moved or removed in place instead of left behind.
  void set_timer(std::size_t id, std::optional<MonoTime> at);
  void sift_up(std::size_t i);
  void sift_down(std::size_t i);
  void place(std::size_t i, std::size_t id);
  bool earlier(std::size_t a, std::size_t b) const { return entries_[timers_[a]].timer_at < entries_[timers_[b]].timer_at; }

  Duration slack_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // an eventfd: wake() and stop write to it
  std::vector<Entry> entries_;
  std::vector<std::size_t> timers_;
  void signal();

  std::mutex woken_mu_;
  std::vector<std::size_t> woken_, woken_now_;
  std::vector<std::function<void()>> posted_, posted_now_;
};

}  // namespace ghostwatch
