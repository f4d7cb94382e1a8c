// SeriesFamily: one metric family of /metrics (name, help, type) and its series, each stored
// with its label text made once. It replaces prometheus-cpp's Family, whose Collect() copies
// every series with its label map (and the whole family once more) at each scrape: at a
// thousand targets that was half of a render, and its three maps per family (series, labels,
// reverse lookup) held a label map per series besides. The metric objects stay prometheus-cpp's
// (Counter, Gauge, Histogram: thread-safe, lock-free where they can be).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/labels.h>

#include "exporters/text_format.h"

namespace ghostwatch {

class TextFamily {
 public:
  virtual ~TextFamily() = default;
  // HELP, TYPE and every series; nothing when the family has no series.
  virtual void append_text(std::string& out) const = 0;
};

template <class Metric>
class SeriesFamily final : public TextFamily {
 public:
  SeriesFamily(std::string name, std::string help) : name_(std::move(name)), help_(std::move(help)) {}

  // The series with these labels, made with `args` (a histogram's boundaries) if it is new; an
  // existing one is shared, as prometheus-cpp's Family::Add did.
  template <class... Args>
  Metric& add(const prometheus::Labels& labels, Args&&... args) {
    std::string key = label_text(labels);
    std::lock_guard lock(mu_);
    auto [it, added] = series_.try_emplace(std::move(key));
    if (added) it->second = std::make_unique<Metric>(std::forward<Args>(args)...);
    return *it->second;
  }

  // Takes the series out (when a target, path or probe goes); the reference is dead after.
  void remove(const Metric* metric) {
    std::lock_guard lock(mu_);
    for (auto it = series_.begin(); it != series_.end(); ++it) {
      if (it->second.get() == metric) {
        series_.erase(it);
        return;
      }
    }
  }

  void append_text(std::string& out) const override {
    std::lock_guard lock(mu_);
    if (series_.empty()) return;
    append_help_and_type(out, name_, help_, type());
    BucketLabels le;
    for (const auto& [labels, metric] : series_) append_series(out, labels, *metric, le);
  }

 private:
  static const char* type() {
    if constexpr (std::is_same_v<Metric, prometheus::Counter>) return "counter";
    else if constexpr (std::is_same_v<Metric, prometheus::Gauge>) return "gauge";
    else return "histogram";
  }
  void append_series(std::string& out, const std::string& labels, const Metric& metric, BucketLabels& le) const {
    if constexpr (std::is_same_v<Metric, prometheus::Histogram>) {
      append_histogram(out, name_, labels, metric.Collect().histogram, le);
    } else {
      append_sample(out, name_, labels, metric.Value());
    }
  }

  const std::string name_, help_;
  mutable std::mutex mu_;
  // By label text: /metrics lists a family's series sorted, probe by probe, target by target.
  std::map<std::string, std::unique_ptr<Metric>> series_;
};

}  // namespace ghostwatch
