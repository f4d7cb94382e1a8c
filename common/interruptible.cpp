#include "common/interruptible.h"

namespace ghostwatch {

bool sleep_until(std::stop_token stop, MonoTime deadline) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait_until(lock, stop, deadline, [] { return false; });
  return !stop.stop_requested();
}

bool sleep_for(std::stop_token stop, Duration d) {
  return sleep_until(stop, std::chrono::steady_clock::now() + d);
}

void Alarm::ring() {
  {
    std::lock_guard lock(mu_);
    rung_ = true;
  }
  cv_.notify_all();
}

void Alarm::clear() {
  std::lock_guard lock(mu_);
  rung_ = false;
}

bool Alarm::wait_until(std::stop_token stop, MonoTime deadline) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, stop, deadline, [this] { return rung_; });
  rung_ = false;
  return !stop.stop_requested();
}

}  // namespace ghostwatch
