// Sleeps that end early when a stop is requested, so every probe loop stops promptly.
#pragma once

#include <condition_variable>
#include <mutex>
#include <stop_token>

#include "common/clock.h"

namespace ghostwatch {

// Sleeps until `deadline` on the steady clock. Returns false when stopped before the deadline.
bool sleep_until(std::stop_token stop, MonoTime deadline);
bool sleep_for(std::stop_token stop, Duration d);

// A sleep another thread can cut short: a reader idles until the next canary is written.
class Alarm {
 public:
  // The current wait, or the next one if none is under way, returns at once.
  void ring();
  // Forgets a ring that no wait has consumed yet.
  void clear();
  // Until `deadline` or a ring. Returns false when stopped.
  bool wait_until(std::stop_token stop, MonoTime deadline);

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool rung_ = false;
};

}  // namespace ghostwatch
