#include "common/interruptible.h"

#include <condition_variable>
#include <mutex>

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

}  // namespace ghostwatch
