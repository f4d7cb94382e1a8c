// The agent's families and text format against prometheus-cpp's Family and TextSerializer, fed
// the same series: the rules, the dashboards and the tests read the series as prometheus-cpp
// wrote them, so one byte of difference (a value's digits, a label's escaping, a missing +Inf
// bucket) is a change of the contract.
#include "exporters/series_family.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace ghostwatch {
namespace {

std::string prometheus_cpp_text(const prometheus::Registry& registry) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry.Collect());
  return std::move(out).str();
}

std::string our_text(const TextFamily& family) {
  std::string out;
  family.append_text(out);
  return out;
}

// The HELP and TYPE lines as they are, the series' lines sorted: the two order a family's series
// differently (by label text here, by hash there).
std::vector<std::string> header_then_sorted(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  const auto first_series = std::find_if(lines.begin(), lines.end(), [](const std::string& l) { return l[0] != '#'; });
  std::sort(first_series, lines.end());
  return lines;
}

// Values where a formatting shortcut would show: many digits, tiny, huge, negative, integral,
// the bucket boundaries' decimals, and the non-finite ones.
const std::vector<double>& awkward_values() {
  static const std::vector<double> v{0,       1,        -1,      0.1,     1.0 / 3,  2.0 / 3,    0.0025,
                                     1e-7,    1.5e-300, 123456789012345678.0, 1e21,  1796481917.267371,
                                     -0.0,    0.012281781, 4.9e-324, std::numeric_limits<double>::max(),
                                     std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                                     std::numeric_limits<double>::quiet_NaN()};
  return v;
}

TEST(TextFormat, GaugesAndCountersAsPrometheusCppWritesThem) {
  prometheus::Registry registry;
  auto& their_gauges = prometheus::BuildGauge().Name("g").Help("a gauge \"quoted\" help").Register(registry);
  SeriesFamily<prometheus::Gauge> gauges("g", "a gauge \"quoted\" help");
  int i = 0;
  for (double v : awkward_values()) {
    const prometheus::Labels labels{{"i", std::to_string(i++)}, {"path", "a\\b\"c\nd"}};
    their_gauges.Add(labels).Set(v);
    gauges.add(labels).Set(v);
  }
  their_gauges.Add({}).Set(42);
  gauges.add({}).Set(42);
  EXPECT_EQ(header_then_sorted(our_text(gauges)), header_then_sorted(prometheus_cpp_text(registry)));

  prometheus::Registry counter_registry;
  auto& their_counters = prometheus::BuildCounter().Name("c_total").Help("").Register(counter_registry);
  SeriesFamily<prometheus::Counter> counters("c_total", "");
  for (double v : awkward_values()) {
    if (v < 0 || !std::isfinite(v)) continue;  // a counter only goes up
    their_counters.Add({{"v", std::to_string(v)}}).Increment(v);
    counters.add({{"v", std::to_string(v)}}).Increment(v);
  }
  EXPECT_EQ(header_then_sorted(our_text(counters)), header_then_sorted(prometheus_cpp_text(counter_registry)));
}

// One series per family, so that the comparison is of the bytes in their order.
TEST(TextFormat, HistogramsAsPrometheusCppWritesThem) {
  const std::vector<prometheus::Histogram::BucketBoundaries> boundaries{
      {0.001, 0.0025, 0.075, 0.15, 1, 300}, {1, std::numeric_limits<double>::infinity()}, {}};
  const std::vector<prometheus::Labels> labels{{{"probe", "pg"}, {"target", "r-1"}}, {}, {{"x", "y"}}};
  for (std::size_t k = 0; k < boundaries.size(); ++k) {
    prometheus::Registry registry;
    auto& theirs = prometheus::BuildHistogram().Name("h_seconds").Help("h").Register(registry).Add(labels[k], boundaries[k]);
    SeriesFamily<prometheus::Histogram> family("h_seconds", "h");
    auto& ours = family.add(labels[k], boundaries[k]);
    for (double v : {0.0004, 0.002, 0.1, 7.0, 1000.0, 1.0 / 3}) {
      theirs.Observe(v);
      ours.Observe(v);
    }
    EXPECT_EQ(our_text(family), prometheus_cpp_text(registry)) << "boundaries #" << k;
  }
}

TEST(TextFormat, TheSameLabelsAreOneSeriesAndARemovedOneLeaves) {
  SeriesFamily<prometheus::Gauge> family("g", "help");
  EXPECT_EQ(our_text(family), "") << "no series, no HELP or TYPE either";
  auto& a = family.add({{"target", "a"}, {"probe", "p"}});
  auto& again = family.add({{"probe", "p"}, {"target", "a"}});
  EXPECT_EQ(&a, &again);
  auto& b = family.add({{"probe", "p"}, {"target", "b"}});
  a.Set(1);
  b.Set(2);
  EXPECT_EQ(our_text(family), "# HELP g help\n# TYPE g gauge\ng{probe=\"p\",target=\"a\"} 1\ng{probe=\"p\",target=\"b\"} 2\n");
  family.remove(&a);
  EXPECT_EQ(our_text(family), "# HELP g help\n# TYPE g gauge\ng{probe=\"p\",target=\"b\"} 2\n");
  family.remove(&b);
  EXPECT_EQ(our_text(family), "");
}

}  // namespace
}  // namespace ghostwatch
