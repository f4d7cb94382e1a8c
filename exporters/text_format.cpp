#include "exporters/text_format.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

namespace ghostwatch {
namespace {

void append_number(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "Nan";
  } else if (std::isinf(value)) {
    out += value < 0 ? "-Inf" : "+Inf";
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::general, 16);
    out.append(buf, r.ptr);
  }
}

template <class Integer>
void append_integer(std::string& out, Integer value) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, r.ptr);
}

void append_escaped(std::string& out, std::string_view value) {
  for (const char c : value) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
}

// `name="value",...` of one series, written once and copied into each of its lines.
std::string label_text(const prometheus::ClientMetric& metric) {
  std::string text;
  for (const auto& label : metric.label) {
    if (!text.empty()) text += ',';
    text += label.name;
    text += "=\"";
    append_escaped(text, label.value);
    text += '"';
  }
  return text;
}

// Everything of a line before its value: name, suffix and labels (with `le` for a bucket).
void append_head(std::string& out, const std::string& name, std::string_view suffix, const std::string& labels,
                 std::string_view le = {}) {
  out += name;
  out += suffix;
  if (!labels.empty() || !le.empty()) {
    out += '{';
    out += labels;
    if (!le.empty()) {
      if (!labels.empty()) out += ',';
      out += "le=\"";
      out += le;
      out += '"';
    }
    out += '}';
  }
  out += ' ';
}

void append_tail(std::string& out, const prometheus::ClientMetric& metric) {
  if (metric.timestamp_ms != 0) {
    out += ' ';
    append_integer(out, metric.timestamp_ms);
  }
  out += '\n';
}

void append_sample(std::string& out, const std::string& name, const prometheus::ClientMetric& metric,
                   const std::string& labels, double value) {
  append_head(out, name, "", labels);
  append_number(out, value);
  append_tail(out, metric);
}

// The _count and _sum lines of a histogram or a summary.
void append_count_and_sum(std::string& out, const std::string& name, const prometheus::ClientMetric& metric,
                          const std::string& labels, std::uint64_t count, double sum) {
  append_head(out, name, "_count", labels);
  append_integer(out, count);
  append_tail(out, metric);
  append_head(out, name, "_sum", labels);
  append_number(out, sum);
  append_tail(out, metric);
}

void append_histogram(std::string& out, const std::string& name, const prometheus::ClientMetric& metric,
                      const std::string& labels) {
  const auto& h = metric.histogram;
  append_count_and_sum(out, name, metric, labels, h.sample_count, h.sample_sum);
  double last = -std::numeric_limits<double>::infinity();
  std::string le;
  for (const auto& bucket : h.bucket) {
    le.clear();
    append_number(le, bucket.upper_bound);
    append_head(out, name, "_bucket", labels, le);
    append_integer(out, bucket.cumulative_count);
    append_tail(out, metric);
    last = bucket.upper_bound;
  }
  if (last != std::numeric_limits<double>::infinity()) {
    append_head(out, name, "_bucket", labels, "+Inf");
    append_integer(out, h.sample_count);
    append_tail(out, metric);
  }
}

void append_summary(std::string& out, const std::string& name, const prometheus::ClientMetric& metric,
                    const std::string& labels) {
  const auto& s = metric.summary;
  append_count_and_sum(out, name, metric, labels, s.sample_count, s.sample_sum);
  for (const auto& q : s.quantile) {
    std::string with_quantile = labels;
    if (!with_quantile.empty()) with_quantile += ',';
    with_quantile += "quantile=\"";
    append_number(with_quantile, q.quantile);
    with_quantile += '"';
    append_head(out, name, "", with_quantile);
    append_number(out, q.value);
    append_tail(out, metric);
  }
}

const char* type_word(prometheus::MetricType type) {
  switch (type) {
    case prometheus::MetricType::Counter: return "counter";
    case prometheus::MetricType::Gauge: return "gauge";
    case prometheus::MetricType::Summary: return "summary";
    case prometheus::MetricType::Histogram: return "histogram";
    case prometheus::MetricType::Untyped: break;
  }
  return "untyped";
}

}  // namespace

void append_text_format(std::string& out, const prometheus::MetricFamily& family) {
  if (!family.help.empty()) {
    out += "# HELP ";
    out += family.name;
    out += ' ';
    out += family.help;
    out += '\n';
  }
  out += "# TYPE ";
  out += family.name;
  out += ' ';
  out += type_word(family.type);
  out += '\n';
  for (const auto& metric : family.metric) {
    const std::string labels = label_text(metric);
    switch (family.type) {
      case prometheus::MetricType::Histogram: append_histogram(out, family.name, metric, labels); break;
      case prometheus::MetricType::Summary: append_summary(out, family.name, metric, labels); break;
      case prometheus::MetricType::Counter: append_sample(out, family.name, metric, labels, metric.counter.value); break;
      case prometheus::MetricType::Gauge: append_sample(out, family.name, metric, labels, metric.gauge.value); break;
      case prometheus::MetricType::Untyped: append_sample(out, family.name, metric, labels, metric.untyped.value); break;
    }
  }
}

}  // namespace ghostwatch
