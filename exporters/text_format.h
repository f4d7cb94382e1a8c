// The Prometheus text exposition format (0.0.4), written straight into one string. Byte for byte
// what prometheus-cpp's TextSerializer writes (numbers as printf's "%.16g", "Nan", "+Inf",
// labels sorted by name), so that no series, `le` text or value changes for the rules and
// dashboards that read them; it formats with std::to_chars and a series' labels are written once
// for all its lines (SeriesFamily keeps them), where TextSerializer goes through an ostream for
// every character (bench/render_bench).
#pragma once

#include <string>
#include <vector>

#include <prometheus/client_metric.h>
#include <prometheus/labels.h>

namespace ghostwatch {

// `name="value",...`, escaped, in the labels' (sorted) order: what goes between a line's braces.
std::string label_text(const prometheus::Labels& labels);

void append_help_and_type(std::string& out, const std::string& name, const std::string& help, const char* type);

// `name{labels} value\n`.
void append_sample(std::string& out, const std::string& name, const std::string& labels, double value);

// The `le` texts of one set of bucket boundaries, made once for the many series that share it.
class BucketLabels {
 public:
  const std::vector<std::string>& of(const std::vector<prometheus::ClientMetric::Bucket>& buckets);

 private:
  std::vector<double> bounds_;
  std::vector<std::string> texts_;
};

// A histogram's _count, _sum and _bucket lines (prometheus::Histogram's buckets end with +Inf).
void append_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const prometheus::ClientMetric::Histogram& histogram, BucketLabels& le);

}  // namespace ghostwatch
