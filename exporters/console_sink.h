// ConsoleSink: the live per-target view of `ghostwatch run --live` (what the demo shows).
// Keeps the last 100 lag samples per target; render() draws one line per target.
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "exporters/sink.h"

namespace ghostwatch {

class ConsoleSink final : public ObservationSink {
 public:
  std::shared_ptr<ProbeSink> probe(const std::string& name, const std::string& kind) override;
  std::string render() const;

  struct Row {
    std::mutex mu;
    std::string probe, target;
    std::deque<double> recent;  // seconds
    double last = 0, pending = 0;
    std::optional<double> reported;
    long timeouts = 0, errors = 0;
    bool up = false, polled = false;
  };

  // Cumulative read-back counts of one read path, per delay.
  struct ReadRow {
    std::mutex mu;
    std::string probe, path;
    std::vector<std::string> delays;
    std::vector<long> reads, stale, errors;
  };

 private:
  std::string render_reads() const;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Row>> rows_;
  std::vector<std::shared_ptr<ReadRow>> read_rows_;
};

}  // namespace ghostwatch
