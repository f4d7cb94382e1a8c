// ReloadQueue: reload requests from the signal thread to the agent's reload worker. Requests
// that arrive while one is pending or running merge into one more reload, so a burst of SIGHUPs
// costs at most two reloads and never runs two at once.
#pragma once

#include <condition_variable>
#include <mutex>
#include <stop_token>

namespace ghostwatch {

class ReloadQueue {
 public:
  void post() {
    {
      std::lock_guard lock(mu_);
      pending_ = true;
    }
    cv_.notify_one();
  }
  // Waits for a request and takes it; false when `stop` came first.
  bool take(std::stop_token stop) {
    std::unique_lock lock(mu_);
    if (!cv_.wait(lock, stop, [this] { return pending_; })) return false;
    pending_ = false;
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool pending_ = false;
};

}  // namespace ghostwatch
