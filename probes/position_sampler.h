// mode: position. Instead of writing a canary, the "writer" samples the primary's position every
// interval; a sample whose position advanced since the last one is a canary (its seq counts the
// samples that advanced, its position is the sample). The first sample is only the baseline, and
// one that did not advance is no canary: an idle primary yields no canaries, so no pending and
// no lag, never the false lag of now() - pg_last_xact_replay_timestamp().
#pragma once

#include <functional>
#include <utility>

#include "probes/canary_backend.h"

namespace ghostwatch {

// The error code of a sample that is no canary (the first, or one that did not advance).
inline constexpr const char* kPositionUnchanged = "ghostwatch-position-unchanged";

class PositionSampler final : public CanaryWriter {
 public:
  // Asks the primary for its position; nullopt when it has none (binary log or GTIDs off).
  using Sample = std::function<Result<std::optional<Position>>(std::stop_token)>;
  explicit PositionSampler(Sample sample) : sample_(std::move(sample)) {}

  Result<int64_t> write(std::stop_token stop) override {
    auto sampled = sample_(stop);
    if (!sampled) return sampled.error();
    if (!sampled.value()) return Error{"the primary reports no position (is the binary log or GTID mode off?)"};
    const bool baseline = !last_;
    if (!baseline && *last_ == *sampled.value()) return Error{"position unchanged", kPositionUnchanged};
    last_ = sampled.value();
    if (baseline) return Error{"first position: the baseline", kPositionUnchanged};
    return ++seq_;
  }
  Result<std::optional<Position>> position(std::stop_token) override { return last_; }
  std::optional<Position> canary_position() const override { return last_; }

 private:
  Sample sample_;
  std::optional<Position> last_;
  int64_t seq_ = 0;
};

}  // namespace ghostwatch
