#include "exporters/console_sink.h"

#include <cstdio>

#include "common/percentiles.h"

namespace ghostwatch {
namespace {

constexpr std::size_t kRecent = 100;

class ConsoleTarget final : public TargetSink {
 public:
  explicit ConsoleTarget(std::shared_ptr<ConsoleSink::Row> r) : r_(std::move(r)) {}
  void visible(const VisibilitySample& s) override {
    std::lock_guard lock(r_->mu);
    r_->last = to_seconds(s.lag);
    r_->recent.push_back(r_->last);
    if (r_->recent.size() > kRecent) r_->recent.pop_front();
  }
  void timed_out(int n) override {
    std::lock_guard lock(r_->mu);
    r_->timeouts += n;
  }
  void pending(Duration age) override {
    std::lock_guard lock(r_->mu);
    r_->pending = to_seconds(age);
  }
  void polled(bool ok, const std::string&) override {
    std::lock_guard lock(r_->mu);
    r_->polled = true;
    r_->up = ok;
    if (!ok) ++r_->errors;
  }
  void position_lag(PositionUnit, std::optional<double>) override {}
  void reported_lag(std::optional<double> seconds) override {
    std::lock_guard lock(r_->mu);
    r_->reported = seconds;
  }

 private:
  std::shared_ptr<ConsoleSink::Row> r_;
};

class ConsoleReadPath final : public ReadPathSink {
 public:
  explicit ConsoleReadPath(std::shared_ptr<ConsoleSink::ReadRow> r) : r_(std::move(r)) {}
  void read(std::size_t d, ReadOutcome outcome, Duration, const std::string&) override {
    std::lock_guard lock(r_->mu);
    ++r_->reads.at(d);
    if (outcome == ReadOutcome::stale) ++r_->stale.at(d);
    if (outcome == ReadOutcome::error) ++r_->errors.at(d);
  }
  void skipped(std::size_t) override {}
  void schedule_offset(Duration) override {}

 private:
  std::shared_ptr<ConsoleSink::ReadRow> r_;
};

class ConsoleProbe final : public ProbeSink {
 public:
  ConsoleProbe(std::string name, std::mutex& mu, std::vector<std::shared_ptr<ConsoleSink::Row>>& rows,
               std::vector<std::shared_ptr<ConsoleSink::ReadRow>>& read_rows)
      : name_(std::move(name)), mu_(mu), rows_(rows), read_rows_(read_rows) {}
  void canary_written(bool, Duration, const std::string&) override {}
  std::shared_ptr<ReadPathSink> read_path(const std::string& name, const std::vector<std::string>& delays) override {
    auto row = std::make_shared<ConsoleSink::ReadRow>();
    row->probe = name_;
    row->path = name;
    row->delays = delays;
    row->reads.assign(delays.size(), 0);
    row->stale.assign(delays.size(), 0);
    row->errors.assign(delays.size(), 0);
    std::lock_guard lock(mu_);
    read_rows_.push_back(row);
    return std::make_shared<ConsoleReadPath>(row);
  }
  std::shared_ptr<TargetSink> target(const std::string& name) override {
    auto row = std::make_shared<ConsoleSink::Row>();
    row->probe = name_;
    row->target = name;
    std::lock_guard lock(mu_);
    rows_.push_back(row);
    return std::make_shared<ConsoleTarget>(row);
  }

 private:
  std::string name_;
  std::mutex& mu_;
  std::vector<std::shared_ptr<ConsoleSink::Row>>& rows_;
  std::vector<std::shared_ptr<ConsoleSink::ReadRow>>& read_rows_;
};

}  // namespace

std::shared_ptr<ProbeSink> ConsoleSink::probe(const std::string& name, const std::string&) {
  return std::make_shared<ConsoleProbe>(name, mu_, rows_, read_rows_);
}

std::string ConsoleSink::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-12s %-14s %-5s %10s %10s %10s %11s %12s %8s %7s\n", "probe", "target", "up",
                "last ms", "p50 ms", "p99 ms", "pending ms", "reported ms", "timeouts", "errors");
  out += line;
  for (const auto& r : rows_) {
    std::lock_guard rlock(r->mu);
    std::vector<double> recent(r->recent.begin(), r->recent.end());
    char reported[32] = "-";
    if (r->reported) std::snprintf(reported, sizeof reported, "%.0f", *r->reported * 1000);
    std::snprintf(line, sizeof line, "%-12s %-14s %-5s %10.1f %10.1f %10.1f %11.1f %12s %8ld %7ld\n",
                  r->probe.c_str(), r->target.c_str(), !r->polled ? "?" : (r->up ? "yes" : "NO"), r->last * 1000,
                  percentile(recent, 0.5) * 1000, percentile(recent, 0.99) * 1000, r->pending * 1000, reported,
                  r->timeouts, r->errors);
    out += line;
  }
  return out + render_reads();
}

// One line per read path: the stale ratio at each delay since the agent started.
std::string ConsoleSink::render_reads() const {
  if (read_rows_.empty()) return "";
  std::string out = "stale reads (read-your-writes), by delay after the write:\n";
  char cell[64];
  for (const auto& r : read_rows_) {
    std::lock_guard rlock(r->mu);
    std::snprintf(cell, sizeof cell, "%-12s %-14s", r->probe.c_str(), r->path.c_str());
    out += cell;
    for (std::size_t d = 0; d < r->delays.size(); ++d) {
      const long answered = r->reads[d] - r->errors[d];
      if (answered > 0) {
        std::snprintf(cell, sizeof cell, " %6s %5.1f%%", r->delays[d].c_str(), 100.0 * r->stale[d] / answered);
      } else {
        std::snprintf(cell, sizeof cell, " %6s %6s", r->delays[d].c_str(), r->reads[d] ? "err" : "-");
      }
      out += cell;
    }
    out += "\n";
  }
  return out;
}

}  // namespace ghostwatch
