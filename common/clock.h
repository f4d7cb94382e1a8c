// Clock: the agent's monotonic time source. Every lag ghostwatch reports is the difference of two
// readings of one Clock in one process, so clock skew between hosts plays no part. Probes take a
// Clock by reference so that lag, pending and timeout logic can be tested without sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>

namespace ghostwatch {

using Duration = std::chrono::nanoseconds;
using MonoTime = std::chrono::steady_clock::time_point;

inline double to_seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// The event loop's own deadlines and timers, which no test steers through a Clock.
inline MonoTime steady_now() { return std::chrono::steady_clock::now(); }

// "query timed out after 1000ms": how every backend words a deadline that passed.
inline std::string timed_out(std::string_view what, Duration timeout) {
  return std::string(what) + " timed out after " +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) + "ms";
}

class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  MonoTime now() const override { return std::chrono::steady_clock::now(); }
};

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  MonoTime now() const override { return MonoTime(Duration(ns_.load())); }
  void advance(Duration d) { ns_ += d.count(); }

 private:
  std::atomic<Duration::rep> ns_{1'000'000'000};
};

}  // namespace ghostwatch
