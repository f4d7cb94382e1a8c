#include "exporters/text_format.h"

#include <charconv>
#include <cmath>
#include <cstdint>
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

void append_integer(std::string& out, std::uint64_t value) {
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

void append_count(std::string& out, const std::string& name, std::string_view suffix, const std::string& labels,
                  std::uint64_t count, std::string_view le = {}) {
  append_head(out, name, suffix, labels, le);
  append_integer(out, count);
  out += '\n';
}

}  // namespace

std::string label_text(const prometheus::Labels& labels) {
  std::string text;
  for (const auto& [name, value] : labels) {
    if (!text.empty()) text += ',';
    text += name;
    text += "=\"";
    append_escaped(text, value);
    text += '"';
  }
  return text;
}

void append_help_and_type(std::string& out, const std::string& name, const std::string& help, const char* type) {
  if (!help.empty()) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += '\n';
  }
  out += "# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void append_sample(std::string& out, const std::string& name, const std::string& labels, double value) {
  append_head(out, name, "", labels);
  append_number(out, value);
  out += '\n';
}

const std::vector<std::string>& BucketLabels::of(const std::vector<prometheus::ClientMetric::Bucket>& buckets) {
  bool same = buckets.size() == bounds_.size();
  for (std::size_t i = 0; same && i < buckets.size(); ++i) same = buckets[i].upper_bound == bounds_[i];
  if (same) return texts_;
  bounds_.clear();
  texts_.clear();
  for (const auto& bucket : buckets) {
    bounds_.push_back(bucket.upper_bound);
    append_number(texts_.emplace_back(), bucket.upper_bound);
  }
  return texts_;
}

void append_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const prometheus::ClientMetric::Histogram& h, BucketLabels& le) {
  append_count(out, name, "_count", labels, h.sample_count);
  append_head(out, name, "_sum", labels);
  append_number(out, h.sample_sum);
  out += '\n';
  const std::vector<std::string>& le_texts = le.of(h.bucket);
  for (std::size_t i = 0; i < h.bucket.size(); ++i) {
    append_count(out, name, "_bucket", labels, h.bucket[i].cumulative_count, le_texts[i]);
  }
}

}  // namespace ghostwatch
