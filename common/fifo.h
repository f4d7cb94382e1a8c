// Fifo: a first-in first-out queue over one vector that allocates nothing until its first push.
// A thousand targets each keep one of these for their outstanding canaries, mostly empty or
// holding one; std::deque would cost each of them its first 576-byte block up front.
#pragma once

#include <cstddef>
#include <vector>

namespace ghostwatch {

template <class T>
class Fifo {
 public:
  bool empty() const { return head_ == items_.size(); }
  std::size_t size() const { return items_.size() - head_; }
  const T& front() const { return items_[head_]; }
  const T& operator[](std::size_t i) const { return items_[head_ + i]; }
  auto begin() const { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() const { return items_.end(); }

  void push_back(const T& item) { items_.push_back(item); }
  // Amortised O(1): the popped slots are reclaimed once they are half of the vector.
  void pop_front() {
    if (++head_ == items_.size()) {
      items_.clear();
      head_ = 0;
    } else if (head_ >= kCompactAfter && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

 private:
  static constexpr std::size_t kCompactAfter = 16;
  std::vector<T> items_;
  std::size_t head_ = 0;
};

}  // namespace ghostwatch
