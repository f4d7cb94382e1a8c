#include "agent/signals.h"

#include <signal.h>

#include <ctime>

#include "common/log.h"

namespace ghostwatch {

SignalStop::SignalStop(std::stop_source source, std::function<void()> on_hangup)
    : source_(source), on_hangup_(std::move(on_hangup)) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (on_hangup_) sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  waiter_ = std::jthread([this, set](std::stop_token self) {
    const timespec slice{0, 100'000'000};  // so that destruction is noticed promptly
    while (!self.stop_requested()) {
      const int sig = sigtimedwait(&set, nullptr, &slice);
      if (sig == SIGINT || sig == SIGTERM) {
        log::info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
        source_.request_stop();
      } else if (sig == SIGHUP) {
        on_hangup_();
      }
    }
  });
}

SignalStop::~SignalStop() {
  waiter_.request_stop();
  waiter_.join();
}

}  // namespace ghostwatch
