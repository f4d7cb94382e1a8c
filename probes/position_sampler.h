// mode: position. Instead of writing a canary, the "writer" samples the primary's position, at
// every poll_interval; a sample that saw a commit since the previous one is a canary (its seq
// counts them, its position is the sample), at most one per canary interval. The first sample is
// only the baseline, and one that saw no commit is no canary: an idle primary yields no canaries,
// so no pending and no lag, never the false lag of now() - pg_last_xact_replay_timestamp().
//
// The newest commit in a canary's position happened after the previous sample was sent and
// before this one answered: the probe acks the canary at the previous sample's send time, with
// that window's width, so that the lag is never below the truth and its resolution says how far
// above it may be (VisibilityTracker). Sampling at poll_interval keeps that window small.
#pragma once

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>

#include "probes/canary_backend.h"

namespace ghostwatch {

// The error code of a sample that is no canary (the first, one without a commit, or one that
// came before the canary interval had passed).
inline constexpr const char* kPositionUnchanged = "ghostwatch-position-unchanged";

// One look at the primary.
struct PrimarySample {
  Position position;
  // Whether a transaction completed since the previous look, where the position alone cannot
  // tell (PostgreSQL's WAL grows without commits too); nullopt where the position moves at
  // commits only (a GTID position).
  std::optional<bool> committed;
};

class PositionSampler final : public CanaryWriter {
 public:
  // Looks at the primary; nullopt when it has no position (binary log or GTIDs off).
  using Sample = std::function<Result<std::optional<PrimarySample>>(std::stop_token)>;
  // `samples_per_canary`: after a canary, so many samples go by before a commit seen is the
  // next canary (the canary interval over the sample interval).
  explicit PositionSampler(Sample sample, int samples_per_canary = 1)
      : sample_(std::move(sample)), samples_per_canary_(std::max(1, samples_per_canary)),
        since_canary_(samples_per_canary_) {}

  Result<int64_t> write(std::stop_token stop) override {
    auto sampled = sample_(stop);
    if (!sampled) return sampled.error();
    if (!sampled.value()) return Error{"the primary reports no position (is the binary log or GTID mode off?)"};
    const PrimarySample& now = *sampled.value();
    const bool baseline = !last_;
    const bool committed = !baseline && now.committed.value_or(now.position != *last_);
    last_ = now.position;
    ++since_canary_;
    if (baseline) return Error{"first position: the baseline", kPositionUnchanged};
    if (!committed) return Error{"no commit since the last sample", kPositionUnchanged};
    if (since_canary_ < samples_per_canary_) return Error{"a commit before the canary interval passed", kPositionUnchanged};
    since_canary_ = 0;
    canary_ = now.position;
    return ++seq_;
  }
  Result<std::optional<Position>> position(std::stop_token) override { return canary_; }
  std::optional<Position> canary_position() const override { return canary_; }

 private:
  Sample sample_;
  const int samples_per_canary_;
  int since_canary_;
  std::optional<Position> last_;    // the last sample's
  std::optional<Position> canary_;  // the last canary's
  int64_t seq_ = 0;
};

// How often mode: position samples the primary: every poll_interval, or every interval if that
// is shorter.
inline Duration position_sample_interval(const ProbeConfig& probe) {
  return std::min(probe.poll_interval, probe.interval);
}
inline int samples_per_canary(const ProbeConfig& probe) {
  const Duration every = position_sample_interval(probe);
  return every > Duration(0) ? static_cast<int>(probe.interval / every) : 1;
}

}  // namespace ghostwatch
