#include "probes/poll_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <stop_token>
#include <system_error>

namespace ghostwatch {
namespace {

constexpr uint64_t kWakeKey = ~uint64_t{0};
constexpr int kMaxEvents = 256;

int check(int rc, const char* what) {
  if (rc < 0) throw std::system_error(errno, std::generic_category(), what);
  return rc;
}

}  // namespace

PollLoop::PollLoop(Duration slack) : slack_(slack) {
  epoll_fd_ = check(epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    close(epoll_fd_);
    check(-1, "eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeKey;
  check(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev), "epoll_ctl");
}

PollLoop::~PollLoop() {
  close(wake_fd_);
  close(epoll_fd_);
}

std::size_t PollLoop::add(LoopTask& task, MonoTime first) {
  entries_.push_back(Entry{&task});
  const std::size_t id = entries_.size() - 1;
  set_timer(id, first);
  return id;
}

void PollLoop::remove(std::size_t id) {
  Entry& e = entries_[id];
  watch(e, id, -1, 0);
  set_timer(id, std::nullopt);
  e.task = nullptr;
}

void PollLoop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(woken_mu_);
    posted_.push_back(std::move(fn));
  }
  signal();
}

void PollLoop::wake(std::size_t id) {
  {
    std::lock_guard lock(woken_mu_);
    woken_.push_back(id);
  }
  signal();
}

void PollLoop::wake(const std::vector<std::size_t>& ids) {
  if (ids.empty()) return;
  {
    std::lock_guard lock(woken_mu_);
    woken_.insert(woken_.end(), ids.begin(), ids.end());
  }
  signal();
}

void PollLoop::signal() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = write(wake_fd_, &one, sizeof one);  // EAGAIN: already signalled
}

void PollLoop::run(std::stop_token stop) {
  std::stop_callback on_stop(stop, [this] { signal(); });
  epoll_event events[kMaxEvents];
  bool have_pwait2 = true;
  while (!stop.stop_requested()) {
    run_due_timers();
    const int ns = wait_timeout_ns();
    int n;
    if (have_pwait2) {
      timespec ts{ns / 1000000000, ns % 1000000000};
      n = epoll_pwait2(epoll_fd_, events, kMaxEvents, ns < 0 ? nullptr : &ts, nullptr);
      if (n < 0 && errno == ENOSYS) {  // kernels before 5.11: millisecond timeouts
        have_pwait2 = false;
        continue;
      }
    } else {
      n = epoll_wait(epoll_fd_, events, kMaxEvents, ns < 0 ? -1 : (ns + 999999) / 1000000);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "epoll_wait");
    }
    for (int i = 0; i < n && !stop.stop_requested(); ++i) {
      if (events[i].data.u64 == kWakeKey) {
        uint64_t count;
        [[maybe_unused]] const ssize_t r = read(wake_fd_, &count, sizeof count);
        run_woken();
        continue;
      }
      const std::size_t id = events[i].data.u64;
      // A step earlier in this batch may have moved the task off this socket.
      if (entries_[id].fd < 0) continue;
      const uint32_t got = events[i].events;
      dispatch(id, Wakeup::io, (got & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0, (got & (EPOLLOUT | EPOLLERR)) != 0);
    }
  }
}

// Nanoseconds until the earliest timer plus the slack (0 when one is due), or -1 when there is
// none. Sleeping past the earliest timer by the slack lets the timers due in between run in the
// same wake-up: a thousand targets polled every 100 ms wake the loop ~1000 times a second
// instead of 10,000, and their polls leave in bursts, which costs the kernel less per poll than
// waking a sleeping server for each one alone (bench/README.md, poll_cost).
int PollLoop::wait_timeout_ns() const {
  if (timers_.empty()) return -1;
  const auto left = entries_[timers_.front()].timer_at + slack_ - steady_now();
  if (left <= Duration(0)) return 0;
  // At most a second at a time, so that the int cannot overflow.
  return static_cast<int>(std::min<Duration>(left, std::chrono::seconds(1)).count());
}

// Only once the earliest timer has waited its slack, also when I/O woke the loop before: then
// every timer due by now runs.
void PollLoop::run_due_timers() {
  const MonoTime now = steady_now();
  if (timers_.empty() || entries_[timers_.front()].timer_at + slack_ > now) return;
  while (!timers_.empty() && entries_[timers_.front()].timer_at <= now) {
    const std::size_t id = timers_.front();
    set_timer(id, std::nullopt);
    dispatch(id, Wakeup::timer, false, false);
  }
}

void PollLoop::set_timer(std::size_t id, std::optional<MonoTime> at) {
  Entry& e = entries_[id];
  if (!at) {
    if (e.heap_at == kNotQueued) return;
    const std::size_t i = e.heap_at;
    e.heap_at = kNotQueued;
    const std::size_t last = timers_.back();
    timers_.pop_back();
    if (i == timers_.size()) return;  // it was the last one
    place(i, last);
    sift_up(i);
    sift_down(entries_[last].heap_at);
    return;
  }
  if (e.heap_at != kNotQueued && e.timer_at == *at) return;
  e.timer_at = *at;
  if (e.heap_at == kNotQueued) {
    timers_.push_back(id);
    e.heap_at = timers_.size() - 1;
  }
  sift_up(e.heap_at);
  sift_down(e.heap_at);
}

void PollLoop::place(std::size_t i, std::size_t id) {
  timers_[i] = id;
  entries_[id].heap_at = i;
}

void PollLoop::sift_up(std::size_t i) {
  while (i > 0 && earlier(i, (i - 1) / 2)) {
    const std::size_t parent = (i - 1) / 2, id = timers_[i];
    place(i, timers_[parent]);
    place(parent, id);
    i = parent;
  }
}

void PollLoop::sift_down(std::size_t i) {
  while (true) {
    std::size_t least = i;
    for (std::size_t child : {2 * i + 1, 2 * i + 2}) {
      if (child < timers_.size() && earlier(child, least)) least = child;
    }
    if (least == i) return;
    const std::size_t id = timers_[i];
    place(i, timers_[least]);
    place(least, id);
    i = least;
  }
}

void PollLoop::run_woken() {
  {
    std::lock_guard lock(woken_mu_);
    woken_now_.swap(woken_);
    posted_now_.swap(posted_);
  }
  for (auto& fn : posted_now_) fn();
  posted_now_.clear();
  for (std::size_t id : woken_now_) dispatch(id, Wakeup::woken, false, false);
  woken_now_.clear();
}

void PollLoop::dispatch(std::size_t id, Wakeup why, bool readable, bool writable) {
  if (entries_[id].task == nullptr) return;  // removed
  apply(id, entries_[id].task->step(why, readable, writable));
}

void PollLoop::apply(std::size_t id, const Await& a) {
  Entry& e = entries_[id];
  const uint32_t events = (a.read ? EPOLLIN : 0u) | (a.write ? EPOLLOUT : 0u);
  watch(e, id, a.fd, a.fd >= 0 ? events : 0);
  set_timer(id, a.until);
}

// Registers the task's socket with epoll. A socket the task closed has left epoll with it, and
// a new connection may reuse its number: MOD falls back to ADD and ADD to MOD.
void PollLoop::watch(Entry& e, std::size_t id, int fd, uint32_t events) {
  if (e.fd >= 0 && (fd != e.fd || events == 0)) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, e.fd, nullptr);  // ENOENT/EBADF: already gone with its socket
    e.fd = -1;
    e.events = 0;
  }
  if (fd < 0 || events == 0) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  if (e.fd == fd) {
    if (e.events == events) return;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT) {
      check(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl");
    }
  } else if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    if (errno != EEXIST) check(-1, "epoll_ctl");
    check(epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev), "epoll_ctl");
  }
  e.fd = fd;
  e.events = events;
}

}  // namespace ghostwatch
