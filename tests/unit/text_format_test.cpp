#include "exporters/text_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/summary.h>
#include <prometheus/text_serializer.h>

namespace ghostwatch {
namespace {

std::string our_text(const std::vector<prometheus::MetricFamily>& families) {
  std::string out;
  for (const auto& f : families) append_text_format(out, f);
  return out;
}

std::string prometheus_cpp_text(const std::vector<prometheus::MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
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

// The rules, the dashboards and the tests read the series as prometheus-cpp wrote them: any
// difference of one byte (a value's digits, a label's escaping) is a change of the contract.
TEST(TextFormat, WritesWhatPrometheusCppsSerializerWrites) {
  prometheus::Registry registry;
  auto& gauges = prometheus::BuildGauge().Name("g").Help("a gauge \"quoted\" help").Register(registry);
  auto& counters = prometheus::BuildCounter().Name("c_total").Help("").Register(registry);
  int i = 0;
  for (double v : awkward_values()) {
    gauges.Add({{"i", std::to_string(i++)}, {"path", "a\\b\"c\nd"}}).Set(v);
    if (v >= 0 && std::isfinite(v)) counters.Add({{"i", std::to_string(i)}}).Increment(v);
  }
  gauges.Add({}).Set(42);
  auto& histograms = prometheus::BuildHistogram().Name("h_seconds").Help("h").Register(registry);
  auto& h = histograms.Add({{"probe", "pg"}, {"target", "r-1"}},
                           prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.075, 0.15, 1, 300});
  for (double v : {0.0004, 0.002, 0.1, 7.0, 1000.0}) h.Observe(v);
  histograms.Add({}, prometheus::Histogram::BucketBoundaries{1, std::numeric_limits<double>::infinity()}).Observe(2);
  auto& summaries = prometheus::BuildSummary().Name("s").Help("s").Register(registry);
  auto& s = summaries.Add({{"k", "v"}}, prometheus::Summary::Quantiles{{0.5, 0.05}, {0.99, 0.001}});
  for (double v : {1.0, 2.0, 3.0}) s.Observe(v);
  auto families = registry.Collect();
  families.front().metric.front().timestamp_ms = 1796481917267;
  EXPECT_EQ(our_text(families), prometheus_cpp_text(families));
}

TEST(TextFormat, EmptyFamiliesAndMetricsWithoutLabels) {
  prometheus::MetricFamily empty{"nothing", "", prometheus::MetricType::Untyped, {}};
  prometheus::MetricFamily untyped{"u", "help", prometheus::MetricType::Untyped, {prometheus::ClientMetric{}}};
  untyped.metric.front().untyped.value = 2.5;
  EXPECT_EQ(our_text({empty, untyped}), prometheus_cpp_text({empty, untyped}));
  EXPECT_EQ(our_text({untyped}), "# HELP u help\n# TYPE u untyped\nu 2.5\n");
}

}  // namespace
}  // namespace ghostwatch
