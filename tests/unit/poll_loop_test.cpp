// The event loop's contract: timers in order, sockets when ready, wakes from other threads,
// sockets closed and their numbers reused, and a prompt stop.
#include "probes/poll_loop.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ghostwatch {
namespace {

using namespace std::chrono_literals;

MonoTime now() { return std::chrono::steady_clock::now(); }

// A task whose steps are a function of the wake-up.
struct Task final : LoopTask {
  std::function<Await(Wakeup, bool, bool)> on_step;
  Await step(Wakeup why, bool readable, bool writable) override { return on_step(why, readable, writable); }
};

// Runs the loop on a thread of its own for as long as the object lives.
struct Running {
  explicit Running(PollLoop& loop) : thread([&loop](std::stop_token stop) { loop.run(stop); }) {}
  std::jthread thread;
};

bool eventually(const std::function<bool()>& condition, Duration limit = 2s) {
  const MonoTime end = now() + limit;
  while (now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return condition();
}

TEST(PollLoop, RunsEachTasksTimersInTheirOrder) {
  PollLoop loop;
  std::mutex mu;
  std::vector<std::string> order;
  Task early, late;
  int early_runs = 0;
  early.on_step = [&](Wakeup why, bool, bool) {
    EXPECT_EQ(why, Wakeup::timer);
    std::lock_guard lock(mu);
    order.push_back("early");
    // Three runs 5 ms apart, then idle for good.
    return ++early_runs < 3 ? Await{-1, false, false, now() + 5ms} : Await{};
  };
  late.on_step = [&](Wakeup, bool, bool) {
    std::lock_guard lock(mu);
    order.push_back("late");
    return Await{};
  };
  const MonoTime start = now();
  loop.add(late, start + 40ms);
  loop.add(early, start);
  Running running(loop);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return order.size() == 4;
  }));
  EXPECT_EQ(order, (std::vector<std::string>{"early", "early", "early", "late"}));
  EXPECT_GE(now() - start, 40ms);
}

TEST(PollLoop, RunsATaskWhenItsSocketIsReadyAndAtItsDeadlineOtherwise) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  PollLoop loop;
  std::atomic<int> readable{0}, timeouts{0};
  Task reader;
  reader.on_step = [&](Wakeup why, bool is_readable, bool) {
    if (why == Wakeup::io && is_readable) {
      char c;
      EXPECT_EQ(read(fds[0], &c, 1), 1);
      ++readable;
    }
    if (why == Wakeup::timer && readable > 0) ++timeouts;
    // Wait for the next byte for at most 50 ms.
    return Await{fds[0], true, false, now() + 50ms};
  };
  loop.add(reader, now());
  Running running(loop);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  ASSERT_TRUE(eventually([&] { return readable == 1; }));
  EXPECT_EQ(timeouts, 0) << "the byte came before the deadline";
  ASSERT_TRUE(eventually([&] { return timeouts >= 1; })) << "no byte: the deadline runs it";
  ASSERT_EQ(write(fds[1], "y", 1), 1);
  ASSERT_TRUE(eventually([&] { return readable == 2; }));
  close(fds[0]);
  close(fds[1]);
}

TEST(PollLoop, AWakeFromAnotherThreadRunsAnIdleTask) {
  PollLoop loop;
  std::atomic<int> woken{0};
  Task idle;
  idle.on_step = [&](Wakeup why, bool, bool) {
    if (why == Wakeup::woken) ++woken;
    return Await{};  // nothing to wait for: runs again only when woken
  };
  const std::size_t id = loop.add(idle, now());
  Running running(loop);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(woken, 0);
  loop.wake(id);
  ASSERT_TRUE(eventually([&] { return woken == 1; }));
  loop.wake(id);
  loop.wake(id);
  ASSERT_TRUE(eventually([&] { return woken == 3; }));
}

TEST(PollLoop, TasksAddedAndRemovedWhileItRunsStartAndStopThere) {
  PollLoop loop;
  Running running(loop);
  std::atomic<int> ticks{0};
  std::atomic<bool> on_loop_thread{true};
  const std::thread::id test_thread = std::this_thread::get_id();
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  auto task = std::make_unique<Task>();
  task->on_step = [&](Wakeup, bool, bool) {
    if (std::this_thread::get_id() == test_thread) on_loop_thread = false;
    ++ticks;
    return Await{fds[0], true, false, now() + 1ms};  // its socket watched, and a timer
  };
  std::atomic<std::size_t> id{0};
  std::atomic<bool> added{false};
  loop.post([&] {
    id = loop.add(*task, now());
    added = true;
  });
  ASSERT_TRUE(eventually([&] { return ticks > 5; }));
  EXPECT_TRUE(on_loop_thread);
  std::atomic<bool> removed{false};
  loop.post([&] {
    loop.remove(id);
    removed = true;
  });
  ASSERT_TRUE(eventually([&] { return removed.load(); }));
  const int after = ticks;
  ASSERT_EQ(write(fds[1], "x", 1), 1);  // its socket readable, its timer due, and a late wake
  loop.wake(id);
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(ticks, after) << "a removed task never runs again";
  task.reset();
  close(fds[0]);
  close(fds[1]);
}

TEST(PollLoop, ManyTasksWokenAtOnceRunOnceEach) {
  PollLoop loop;
  std::vector<Task> tasks(50);
  std::vector<std::atomic<int>> woken(tasks.size());
  std::vector<std::size_t> ids;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    tasks[i].on_step = [&woken, i](Wakeup why, bool, bool) {
      if (why == Wakeup::woken) ++woken[i];
      return Await{};
    };
    ids.push_back(loop.add(tasks[i], now()));
  }
  Running running(loop);
  std::vector<std::size_t> odd;
  for (std::size_t i = 1; i < ids.size(); i += 2) odd.push_back(ids[i]);
  loop.wake(odd);
  loop.wake(std::vector<std::size_t>{});  // nothing to wake: no harm
  ASSERT_TRUE(eventually([&] { return woken[ids.size() - 1] == 1; }));
  std::this_thread::sleep_for(20ms);
  for (std::size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(woken[i], i % 2) << "task " << i;
}

// Timers due within the slack of the earliest run together, none before it is due: with a 30 ms
// slack, a timer due at 10 ms waits until ~40 ms and takes the one due at 25 ms along.
TEST(PollLoop, TimersWithinTheSlackRunTogetherAndNeverEarly) {
  for (const Duration slack : {Duration(0), Duration(30ms)}) {
    PollLoop loop(slack);
    std::mutex mu;
    MonoTime first_ran{}, second_ran{};
    Task first, second;
    first.on_step = [&](Wakeup, bool, bool) {
      std::lock_guard lock(mu);
      first_ran = now();
      return Await{};
    };
    second.on_step = [&](Wakeup, bool, bool) {
      std::lock_guard lock(mu);
      second_ran = now();
      return Await{};
    };
    const MonoTime start = now();
    loop.add(first, start + 10ms);
    loop.add(second, start + 25ms);
    Running running(loop);
    ASSERT_TRUE(eventually([&] {
      std::lock_guard lock(mu);
      return second_ran != MonoTime{};
    }));
    std::lock_guard lock(mu);
    EXPECT_GE(first_ran - start, 10ms + slack);
    EXPECT_GE(second_ran - start, 25ms);
    if (slack > Duration(0)) {
      EXPECT_LT(second_ran - first_ran, 5ms) << "the second timer ran in a wake-up of its own";
    }
  }
}

// A task that closes its socket and opens another one, which may get the same number.
TEST(PollLoop, ASocketClosedAndItsNumberReusedIsWatchedAgain) {
  PollLoop loop;
  int fds[2] = {-1, -1};
  std::atomic<int> bytes{0};
  std::atomic<bool> ready{false};
  Task task;
  task.on_step = [&](Wakeup why, bool is_readable, bool) {
    if (why == Wakeup::io && is_readable) {
      char c;
      if (read(fds[0], &c, 1) == 1) ++bytes;
      // Close and reopen: the step after a close returns no socket, as the contract asks.
      close(fds[0]);
      close(fds[1]);
      fds[0] = fds[1] = -1;
      return Await{-1, false, false, now() + 1ms};
    }
    if (fds[0] < 0) {
      EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
      ready = true;
    }
    return Await{fds[0], true, false, std::nullopt};
  };
  loop.add(task, now());
  Running running(loop);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(eventually([&] { return ready.load(); }));
    ready = false;
    ASSERT_EQ(write(fds[1], "z", 1), 1);
    ASSERT_TRUE(eventually([&] { return bytes == i; })) << "byte " << i;
  }
}

// Many tasks rescheduling themselves at scattered times: each runs at or after its time, and the
// runs come in the order of their times (a timer moved in place must keep the heap in order).
TEST(PollLoop, ManyReschedulingTimersRunInTimeOrder) {
  PollLoop loop;
  constexpr int kTasks = 200, kRuns = 5;
  std::vector<Task> tasks(kTasks);
  std::vector<MonoTime> due(kTasks);
  std::mutex mu;
  std::vector<MonoTime> fired_due;
  std::atomic<int> late{0}, runs{0};
  const MonoTime start = now();
  for (int i = 0; i < kTasks; ++i) {
    due[i] = start + std::chrono::microseconds((i * 7919) % 30000);
    tasks[i].on_step = [&, i, count = 0](Wakeup, bool, bool) mutable {
      if (now() < due[i]) ++late;  // early, in fact: it ran before its time
      {
        std::lock_guard lock(mu);
        fired_due.push_back(due[i]);
      }
      ++runs;
      if (++count == kRuns) return Await{};
      due[i] += std::chrono::microseconds(1000 + (i * 104729 + count * 31) % 20000);
      return Await{-1, false, false, due[i]};
    };
    loop.add(tasks[i], due[i]);
  }
  Running running(loop);
  ASSERT_TRUE(eventually([&] { return runs == kTasks * kRuns; }, 5s)) << runs;
  EXPECT_EQ(late, 0);
  std::lock_guard lock(mu);
  EXPECT_TRUE(std::is_sorted(fired_due.begin(), fired_due.end()));
}

TEST(PollLoop, StopEndsRunAtOnce) {
  PollLoop loop;
  Task sleeper;
  sleeper.on_step = [](Wakeup, bool, bool) { return Await{-1, false, false, now() + 1h}; };
  loop.add(sleeper, now());
  std::stop_source stop;
  std::jthread thread([&] { loop.run(stop.get_token()); });
  std::this_thread::sleep_for(20ms);
  const MonoTime asked = now();
  stop.request_stop();
  thread.join();
  EXPECT_LT(now() - asked, 500ms);
}

}  // namespace
}  // namespace ghostwatch
