#include "probes/visibility_tracker.h"

#include <algorithm>

namespace ghostwatch {

VisibilityTracker::VisibilityTracker(Duration timeout, std::size_t max_outstanding)
    : timeout_(timeout), max_outstanding_(std::max<std::size_t>(1, max_outstanding)) {}

std::optional<VisibilitySample> VisibilityTracker::acked(int64_t seq, MonoTime t_ack, Duration ack_window) {
  std::lock_guard lock(mu_);
  if (max_seen_ && seq <= *max_seen_) return VisibilitySample{seq, Duration(0), Duration(0)};
  if (entries_.size() >= max_outstanding_) {
    if (!dropped_oldest_ack_) dropped_oldest_ack_ = entries_.front().t_ack;
    dropped_upto_seq_ = entries_.front().seq;
    if (timed_out_ > 0) --timed_out_;
    entries_.pop_front();
  }
  entries_.push_back({seq, t_ack, ack_window});
  return std::nullopt;
}

std::vector<VisibilitySample> VisibilityTracker::polled(std::optional<int64_t> seen, MonoTime sent,
                                                        MonoTime recv) {
  std::lock_guard lock(mu_);
  return polled_locked(seen, sent, recv);
}

std::vector<VisibilitySample> VisibilityTracker::polled_all_acked_before(MonoTime sent, MonoTime recv) {
  std::lock_guard lock(mu_);
  std::optional<int64_t> seen;
  for (std::size_t i = 0; i < entries_.size() && entries_[i].t_ack <= sent; ++i) seen = entries_[i].seq;
  if (!seen) seen = max_seen_;  // nothing outstanding: keep what was known
  return polled_locked(seen, sent, recv);
}

std::vector<VisibilitySample> VisibilityTracker::polled_locked(std::optional<int64_t> seen, MonoTime sent,
                                                               MonoTime recv) {
  std::vector<VisibilitySample> samples;
  const std::optional<MonoTime> previous_sent = last_poll_sent_;
  last_poll_sent_ = sent;
  if (!seen) return samples;
  if (!max_seen_ || *seen > *max_seen_) max_seen_ = seen;
  for (std::size_t i = timed_out_; i < entries_.size() && entries_[i].seq <= *seen; ++i) {
    const Entry& e = entries_[i];
    const Duration lag = std::max(Duration(0), recv - e.t_ack);
    // The least the lag can be: from the latest commit time to the previous poll, which missed it.
    const Duration least =
        previous_sent ? std::max(Duration(0), *previous_sent - (e.t_ack + e.ack_window)) : Duration(0);
    samples.push_back({e.seq, lag, std::clamp(lag - least, Duration(0), lag)});
  }
  forget_seen_locked(*seen);
  return samples;
}

void VisibilityTracker::forget_seen_locked(int64_t seen) {
  while (!entries_.empty() && entries_.front().seq <= seen) {
    if (timed_out_ > 0) --timed_out_;
    entries_.pop_front();
  }
  if (dropped_oldest_ack_ && seen >= dropped_upto_seq_) dropped_oldest_ack_.reset();
}

std::vector<VisibilitySample> VisibilityTracker::waited(int64_t seq, std::optional<MonoTime> missed_at, MonoTime recv) {
  std::lock_guard lock(mu_);
  if (missed_at) not_seen_at_locked(*missed_at);
  // The answer itself is the evidence: nothing later than its arrival bounds the next canary.
  return polled_locked(seq, recv, recv);
}

void VisibilityTracker::not_seen_at(MonoTime at) {
  std::lock_guard lock(mu_);
  not_seen_at_locked(at);
}

void VisibilityTracker::not_seen_at_locked(MonoTime at) {
  if (!last_poll_sent_ || at > *last_poll_sent_) last_poll_sent_ = at;
}

std::optional<int64_t> VisibilityTracker::oldest_outstanding() const {
  std::lock_guard lock(mu_);
  if (timed_out_ >= entries_.size()) return std::nullopt;
  return entries_[timed_out_].seq;
}

std::optional<VisibilityTracker::Outstanding> VisibilityTracker::oldest_outstanding_entry() const {
  std::lock_guard lock(mu_);
  if (timed_out_ >= entries_.size()) return std::nullopt;
  return Outstanding{entries_[timed_out_].seq, entries_[timed_out_].t_ack};
}

int VisibilityTracker::expire(MonoTime now) {
  std::lock_guard lock(mu_);
  int expired = 0;
  while (timed_out_ < entries_.size() && now - entries_[timed_out_].t_ack > timeout_) {
    ++timed_out_;
    ++expired;
  }
  return expired;
}

Duration VisibilityTracker::pending(MonoTime now) const {
  std::lock_guard lock(mu_);
  std::optional<MonoTime> oldest = dropped_oldest_ack_;
  if (!entries_.empty() && (!oldest || entries_.front().t_ack < *oldest)) oldest = entries_.front().t_ack;
  if (!oldest) return Duration(0);
  return std::max(Duration(0), now - *oldest);
}

std::size_t VisibilityTracker::outstanding() const {
  std::lock_guard lock(mu_);
  return entries_.size() - timed_out_;
}

}  // namespace ghostwatch
