// SignalStop: turns SIGINT/SIGTERM into a stop request. Construct it before any other thread
// starts, so that the signals are blocked everywhere and only its own thread receives them.
#pragma once

#include <stop_token>
#include <thread>

namespace ghostwatch {

class SignalStop {
 public:
  explicit SignalStop(std::stop_source source);
  ~SignalStop();
  SignalStop(const SignalStop&) = delete;
  SignalStop& operator=(const SignalStop&) = delete;

 private:
  std::stop_source source_;
  std::jthread waiter_;
};

}  // namespace ghostwatch
