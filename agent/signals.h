// SignalStop: turns SIGINT/SIGTERM into a stop request and, when asked, SIGHUP into a call of
// `on_hangup` (which logs what it does: a config reload, or a stop when the terminal is gone). Construct it before any other thread starts, so that the
// signals are blocked everywhere and only its own thread receives them.
#pragma once

#include <functional>
#include <stop_token>
#include <thread>

namespace ghostwatch {

class SignalStop {
 public:
  // Without `on_hangup`, SIGHUP keeps its default action (it ends the process).
  explicit SignalStop(std::stop_source source, std::function<void()> on_hangup = {});
  ~SignalStop();
  SignalStop(const SignalStop&) = delete;
  SignalStop& operator=(const SignalStop&) = delete;

 private:
  std::stop_source source_;
  std::function<void()> on_hangup_;
  std::jthread waiter_;
};

}  // namespace ghostwatch
