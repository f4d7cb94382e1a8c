// The Prometheus text exposition format (0.0.4), written straight into one string. Byte for byte
// what prometheus-cpp's TextSerializer writes (numbers as printf's "%.16g", "Nan", "+Inf"), so
// that no series, `le` text or value changes for the rules and dashboards that read them; it
// formats with std::to_chars and copies a series' labels once for all its lines instead of going
// through an ostream for every character, at about a fifth of the CPU (bench/render_bench).
#pragma once

#include <string>

#include <prometheus/metric_family.h>

namespace ghostwatch {

void append_text_format(std::string& out, const prometheus::MetricFamily& family);

}  // namespace ghostwatch
