// Fifo: a first-in first-out queue in a ring over one vector that allocates nothing until its
// first push. A thousand targets each keep two of these (visible and received) for their
// outstanding canaries, mostly empty or holding a few: std::deque would cost each its first
// 576-byte block up front, and a vector popped from the front (erasing once half was popped)
// grew to 32 entries on a replica that always has a few canaries in flight.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace ghostwatch {

template <class T>
class Fifo {
 public:
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  // Slots held: a power of two, at least the most entries held since the queue was last empty
  // with more than kKept slots.
  std::size_t capacity() const { return items_.size(); }
  const T& front() const { return items_[head_]; }
  const T& operator[](std::size_t i) const { return items_[(head_ + i) & (items_.size() - 1)]; }

  void push_back(const T& item) {
    if (size_ == items_.size()) grow();
    items_[(head_ + size_) & (items_.size() - 1)] = item;
    ++size_;
  }
  void pop_front() {
    head_ = (head_ + 1) & (items_.size() - 1);
    if (--size_ > 0) return;
    head_ = 0;
    // Emptied after an outage that queued many: hand the slots back.
    if (items_.size() > kKept) std::vector<T>().swap(items_);
  }

 private:
  static constexpr std::size_t kKept = 8;
  void grow() {
    std::vector<T> bigger(std::max<std::size_t>(2, items_.size() * 2));
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = (*this)[i];
    items_.swap(bigger);
    head_ = 0;
  }
  std::vector<T> items_;
  std::size_t head_ = 0, size_ = 0;
};

}  // namespace ghostwatch
