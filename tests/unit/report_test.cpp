#include "exporters/report.h"

#include <gtest/gtest.h>

namespace ghostwatch {
namespace {

using std::chrono::milliseconds;

VisibilitySample sample(int ms, int res_ms = 1) { return {1, milliseconds(ms), milliseconds(res_ms)}; }

TEST(Report, SummarizesPercentilesAndCounts) {
  ReportSink report;
  auto probe = report.probe("pg", "postgres");
  auto t = probe->target("replica-1");
  probe->canary_written(true, milliseconds(2), "");
  for (int ms : {10, 20, 30, 40}) t->visible(sample(ms, 4));
  t->polled(true, "");
  t->timed_out(2);
  const auto s = report.summarize();
  ASSERT_EQ(s.size(), 1u);
  const TargetSummary& ts = s[0].targets.at(0);
  EXPECT_EQ(ts.samples, 4);
  EXPECT_DOUBLE_EQ(ts.p50, 0.025);
  EXPECT_DOUBLE_EQ(ts.max, 0.040);
  EXPECT_EQ(ts.timeouts, 2);
  EXPECT_DOUBLE_EQ(ts.resolution, 0.004);
  EXPECT_EQ(report_exit_code(s), 1);  // a timeout is a problem
}

TEST(Report, ExitCodeRules) {
  ReportSink ok;
  auto p = ok.probe("pg", "postgres");
  auto t = p->target("r");
  p->canary_written(true, milliseconds(1), "");
  t->visible(sample(5));
  t->polled(true, "");
  EXPECT_EQ(report_exit_code(ok.summarize()), 0);
  t->polled(false, "connection refused");  // the last poll failed: unreachable now
  EXPECT_EQ(report_exit_code(ok.summarize()), 1);

  ReportSink nothing_written;
  auto p2 = nothing_written.probe("pg", "postgres");
  auto t2 = p2->target("r");
  p2->canary_written(false, milliseconds(1), "primary down");
  t2->polled(true, "");
  EXPECT_EQ(report_exit_code(nothing_written.summarize()), 1);
}

TEST(Report, JsonHasTheDocumentedShape) {
  ReportSink report;
  auto probe = report.probe("pg", "postgres");
  auto t = probe->target("replica-1");
  probe->canary_written(true, milliseconds(1), "");
  t->visible(sample(4, 11));
  t->polled(true, "");
  const auto j = report_json(report.summarize());
  const auto& jt = j.at("probes").at(0).at("targets").at(0);
  EXPECT_EQ(j["probes"][0]["name"], "pg");
  EXPECT_EQ(j["probes"][0]["kind"], "postgres");
  EXPECT_EQ(jt["name"], "replica-1");
  EXPECT_EQ(jt["samples"], 1);
  EXPECT_DOUBLE_EQ(jt["p50_seconds"].get<double>(), 0.004);
  for (const char* key : {"p90_seconds", "p99_seconds", "max_seconds", "timeouts", "errors", "resolution_seconds"}) {
    EXPECT_TRUE(jt.contains(key)) << key;
  }
  EXPECT_DOUBLE_EQ(jt["resolution_seconds"].get<double>(), 0.011);
  EXPECT_EQ(jt["received_samples"], 0);
  EXPECT_TRUE(jt["received_p50_seconds"].is_null()) << "nothing received: unknown, not 0";
  EXPECT_TRUE(jt["received_p99_seconds"].is_null());
  EXPECT_TRUE(jt["received_resolution_seconds"].is_null());
  t->received(sample(1));
  t->received(sample(3));
  const nlohmann::json after = report_json(report.summarize());
  const auto& received = after.at("probes").at(0).at("targets").at(0);
  EXPECT_EQ(received["received_samples"], 2);
  EXPECT_DOUBLE_EQ(received["received_p50_seconds"].get<double>(), 0.002);
  EXPECT_DOUBLE_EQ(received["received_p99_seconds"].get<double>(), 0.00298);
  EXPECT_DOUBLE_EQ(received["received_resolution_seconds"].get<double>(), 0.001);
}

TEST(Report, StrategiesComeFromTheReplicasLagsNotTheCaches) {
  ReportProbeOptions options;
  options.caches = {"redis"};
  options.read_delays = {{"0ms", 0.0}, {"50ms", 0.050}};
  ReportSink report({{"pg", options}});
  auto probe = report.probe("pg", "postgres");
  auto replica = probe->target("replica-1");
  auto cache = probe->target("redis");
  probe->canary_written(true, milliseconds(1), "");
  replica->visible({1, milliseconds(20), milliseconds(1)});
  cache->visible({1, milliseconds(900), milliseconds(1)});
  const auto s = report.summarize();
  ASSERT_TRUE(s[0].strategies);
  EXPECT_DOUBLE_EQ(s[0].strategies->replica_stale, 0.5) << "the cache's 900 ms is not a replica read";
  const nlohmann::json j = report_json(s)["probes"][0]["strategies"];
  EXPECT_EQ(j["read_delays"], nlohmann::json({"0ms", "50ms"}));
  EXPECT_EQ(j["replica"]["stale_share_by_delay"][0]["delay"], "0ms");
  EXPECT_DOUBLE_EQ(j["pin_to_primary"]["window_seconds"].get<double>(), 0.020);
  EXPECT_DOUBLE_EQ(j["wait_for_position"]["wait_share"].get<double>(), 0.5);
  EXPECT_NE(report_table(s).find("pin reads to the primary for 20.0 ms"), std::string::npos) << report_table(s);

  ReportSink empty;
  empty.probe("pg", "postgres")->target("r");
  EXPECT_TRUE(report_json(empty.summarize())["probes"][0]["strategies"].is_null()) << "no sample, nothing to compare";
}

TEST(Report, TableMarksUnreachableTargets) {
  ReportSink report;
  auto probe = report.probe("pg", "postgres");
  auto t = probe->target("replica-9");
  probe->canary_written(true, milliseconds(1), "");
  t->polled(false, "connection refused");
  const std::string table = report_table(report.summarize());
  EXPECT_NE(table.find("replica-9"), std::string::npos);
  EXPECT_NE(table.find("UNREACHABLE"), std::string::npos);
  EXPECT_NE(table.find("connection refused"), std::string::npos);
}

TEST(Report, ATargetWithoutSamplesHasNullQuantilesAndDashes) {
  ReportSink report;
  auto probe = report.probe("pg", "postgres");
  auto seen = probe->target("seen");
  auto never = probe->target("never");
  probe->canary_written(true, milliseconds(1), "");
  seen->visible(sample(7));
  seen->polled(true, "");
  never->polled(false, "connection refused");
  const auto s = report.summarize();
  const nlohmann::json j = report_json(s);
  const auto& jt = j["probes"][0]["targets"][1];
  ASSERT_EQ(jt["name"], "never");
  for (const char* key : {"p50_seconds", "p90_seconds", "p99_seconds", "max_seconds", "resolution_seconds"}) {
    EXPECT_TRUE(jt[key].is_null()) << key << " = " << jt[key];
  }
  EXPECT_DOUBLE_EQ(j["probes"][0]["targets"][0]["p50_seconds"].get<double>(), 0.007);
  const std::string table = report_table(s);
  const auto line = table.substr(table.find("  never"));
  EXPECT_EQ(line.find("0.0"), std::string::npos) << line;
  EXPECT_NE(line.find(" -"), std::string::npos) << line;
}

}  // namespace
}  // namespace ghostwatch
