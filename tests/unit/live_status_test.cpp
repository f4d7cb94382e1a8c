#include "exporters/live_status.h"

#include <gtest/gtest.h>

#include "exporters/landing_page.h"

namespace ghostwatch {
namespace {

using std::chrono::milliseconds;

TEST(LiveStatus, ATargetWithoutSamplesHasNoLagFigures) {
  LiveStatus live;
  auto probe = live.probe("pg", "postgres");
  auto target = probe->target("replica-1");
  target->polled(false, "connection refused");
  const StatusSnapshot s = live.snapshot();
  ASSERT_EQ(s.probes.size(), 1u);
  const TargetStatus& t = s.probes[0].targets.at(0);
  EXPECT_FALSE(t.last);
  EXPECT_FALSE(t.p99);
  EXPECT_EQ(t.last_error, "connection refused");
  const std::string table = render_console(s);
  const std::string row = table.substr(table.find("replica-1"));
  EXPECT_NE(row.find(" - "), std::string::npos) << row;
  EXPECT_EQ(row.substr(0, row.find("NO")).find("0.0"), std::string::npos) << row;
}

TEST(LiveStatus, KeepsLastAndPercentilesOfRecentSamples) {
  LiveStatus live;
  auto probe = live.probe("pg", "postgres");
  auto target = probe->target("r");
  for (int ms : {10, 20, 30}) target->visible({1, milliseconds(ms), milliseconds(1)});
  const TargetStatus t = live.snapshot().probes[0].targets[0];
  EXPECT_DOUBLE_EQ(*t.last, 0.030);
  EXPECT_NEAR(*t.p50, 0.020, 1e-7);  // kept as floats
  EXPECT_EQ(t.samples, 3);
  EXPECT_FALSE(t.received_p50) << "no received position reported: none shown";
  for (int ms : {1, 2, 3}) target->received({1, milliseconds(ms), milliseconds(1)});
  const TargetStatus after = live.snapshot().probes[0].targets[0];
  EXPECT_NEAR(*after.received_p50, 0.002, 1e-7);
  const std::string table = render_console(live.snapshot());
  EXPECT_NE(table.find("recv p50"), std::string::npos) << table;
  EXPECT_NE(table.find("2.0"), std::string::npos) << table;
}

TEST(LiveStatus, AProbeLeavesTheViewsWhenItsHandlesGo) {
  LiveStatus live;
  auto kept = live.probe("kept", "postgres");
  {
    auto gone = live.probe("gone", "mysql");
    auto t = gone->target("r");
    EXPECT_EQ(live.snapshot().probes.size(), 2u);
  }
  const StatusSnapshot s = live.snapshot();
  ASSERT_EQ(s.probes.size(), 1u);
  EXPECT_EQ(s.probes[0].name, "kept");
}

TEST(LiveStatus, ReadyOnceEveryProbeWroteAndPolledEachTarget) {
  LiveStatus live;
  auto probe = live.probe("pg", "postgres");
  auto a = probe->target("a");
  auto b = probe->target("b");
  EXPECT_EQ(not_ready_reasons(live.snapshot()),
            "probe pg: no canary written yet\nprobe pg: target a: not polled yet\nprobe pg: target b: not polled yet\n");
  probe->canary_written(false, milliseconds(1), "permission denied for table canary");
  EXPECT_NE(not_ready_reasons(live.snapshot()).find("last error: permission denied"), std::string::npos);
  probe->canary_written(true, milliseconds(1), "");
  a->polled(true, "");
  b->polled(false, "timeout");  // polled once, even if it failed: the figures say so
  EXPECT_EQ(not_ready_reasons(live.snapshot()), "");
}

TEST(LandingPage, ShowsLiveFiguresEscaped) {
  LiveStatus live;
  auto probe = live.probe("pg", "postgres");
  auto target = probe->target("<r1>");
  target->polled(true, "");
  target->visible({1, milliseconds(12), milliseconds(1)});
  const std::string html = render_landing_page({"9.9.9", "agent&1", 3725}, live.snapshot());
  EXPECT_NE(html.find("&lt;r1&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<r1>"), std::string::npos);
  EXPECT_NE(html.find("agent&amp;1"), std::string::npos);
  EXPECT_NE(html.find("<td>12.0</td>"), std::string::npos) << html;
  EXPECT_NE(html.find("1h 2m 5s"), std::string::npos);
  for (const char* link : {"href=\"metrics\"", "href=\"healthz\"", "href=\"readyz\"", "href=\"config\""}) {
    EXPECT_NE(html.find(link), std::string::npos) << link;
  }
  EXPECT_EQ(html.find("http://"), std::string::npos) << "no external assets";
  EXPECT_EQ(html.find("<script"), std::string::npos);
}

TEST(LandingPage, ATargetWithoutSamplesShowsDashesNotZero) {
  LiveStatus live;
  auto probe = live.probe("pg", "postgres");
  auto target = probe->target("never");
  target->polled(false, "connection refused");
  const std::string html = render_landing_page({"1", "a", 1}, live.snapshot());
  const auto row = html.find("<tr data-probe=\"pg\" data-target=\"never\"");
  ASSERT_NE(row, std::string::npos);
  const std::string tr = html.substr(row, html.find("</tr>", row) - row);
  EXPECT_NE(tr.find("DOWN</td><td class=\"role\">-</td><td class=\"source\">static</td><td class=\"none\">-</td>"
                    "<td class=\"none\">-</td>"),
            std::string::npos)
      << tr;
}

// The text of the first element that starts with `open` (up to its closing '>').
std::string element(const std::string& html, const std::string& open) {
  const auto at = html.find(open);
  if (at == std::string::npos) return "";
  return html.substr(at, html.find('>', at) - at + 1);
}

TEST(LandingPage, ChartsEachTargetsLagAndPendingAndEachReadPathsStaleReads) {
  LiveStatus live;
  auto probe = live.probe("pg", "postgres");
  auto target = probe->target("replica-2");
  target->polled(true, "");
  target->visible({1, milliseconds(200), milliseconds(1)});
  target->visible({2, milliseconds(210), milliseconds(1)});
  target->pending(milliseconds(150));
  auto path = probe->read_path("haproxy", {"0ms", "100ms", "1s"});
  for (int i = 0; i < 4; ++i) {
    path->read(0, i < 3 ? ReadOutcome::stale : ReadOutcome::fresh, milliseconds(1), "");
    path->read(1, ReadOutcome::fresh, milliseconds(1), "");
  }
  path->read(1, ReadOutcome::error, milliseconds(1), "refused");  // an error is not a stale read
  const std::string html = render_landing_page({"1", "a", 1}, live.snapshot(true));

  const std::string chart = element(html, "<svg class=\"chart\" ");
  EXPECT_NE(chart.find("data-target=\"replica-2\""), std::string::npos) << chart;
  EXPECT_NE(chart.find("data-points=\"1\""), std::string::npos) << chart;
  EXPECT_NE(chart.find("data-last-p50-ms=\"205.0\""), std::string::npos) << chart;
  EXPECT_NE(chart.find("data-max-ms=\"500.0\""), std::string::npos) << "a scale of 1, 2 or 5: " << chart;
  // One step with data: each line is a dot at the right edge (now).
  EXPECT_NE(html.find("<path class=\"p50\" d=\"M312.0 "), std::string::npos) << html;
  EXPECT_NE(html.find("<path class=\"pending\" d=\"M312.0 "), std::string::npos) << html;
  EXPECT_NE(html.find("<span class=\"meta\">role unknown &middot; static</span>"), std::string::npos);

  EXPECT_NE(html.find("data-read-path=\"haproxy\""), std::string::npos);
  EXPECT_NE(element(html, "<rect class=\"stale\" data-delay=\"0ms\"").find("data-ratio=\"0.7500\" data-reads=\"4\""),
            std::string::npos)
      << html;
  EXPECT_NE(element(html, "<rect class=\"stale\" data-delay=\"100ms\"").find("data-ratio=\"0.0000\" data-reads=\"4\""),
            std::string::npos)
      << html;
  EXPECT_EQ(html.find("data-delay=\"1s\""), std::string::npos) << "no read at 1s: no bar, not a 0";
  EXPECT_NE(html.find(">75%</text>"), std::string::npos);
}

TEST(LandingPage, ChartsTheWorstTargetsOfAFleet) {
  LiveStatus live;
  auto probe = live.probe("pg", "postgres");
  std::vector<std::shared_ptr<TargetSink>> targets;
  for (int i = 0; i < 60; ++i) {
    targets.push_back(probe->target("r" + std::to_string(i)));
    targets.back()->visible({1, milliseconds(i), milliseconds(1)});
  }
  const std::string html = render_landing_page({"1", "a", 1}, live.snapshot(true));
  std::size_t charts = 0;
  for (auto at = html.find("<svg class=\"chart\""); at != std::string::npos; at = html.find("<svg class=\"chart\"", at + 1)) ++charts;
  EXPECT_EQ(charts, 48u);
  EXPECT_NE(html.find("<svg class=\"chart\" viewBox=\"0 0 320 96\" width=\"320\" height=\"96\" role=\"img\" data-probe=\"pg\" data-target=\"r59\""),
            std::string::npos);
  EXPECT_EQ(html.find("data-target=\"r0\" data-points"), std::string::npos) << "the best target has no chart";
  EXPECT_NE(html.find("<tr data-probe=\"pg\" data-target=\"r0\""), std::string::npos) << "but a row";
  EXPECT_NE(html.find("The 48 targets with the highest p99 of 60"), std::string::npos);
}

TEST(LiveStatus, ShowsEachTargetsSourceAndRoleAndForgetsARemovedTarget) {
  LiveStatus live;
  auto probe = live.probe("pg", "postgres");
  auto kept = probe->target("pg-1");
  kept->origin("patroni", "sync_standby");
  auto gone = probe->target("pg-2");
  gone->origin("patroni", "replica");
  StatusSnapshot s = live.snapshot();
  ASSERT_EQ(s.probes.at(0).targets.size(), 2u);
  EXPECT_EQ(s.probes[0].targets[0].source, "patroni");
  EXPECT_EQ(s.probes[0].targets[0].role, "sync_standby");
  // Its server says it is the primary now (a switchover), before its source does.
  kept->role(true);
  gone.reset();  // removed by discovery: the probe let go of its handle
  s = live.snapshot();
  ASSERT_EQ(s.probes.at(0).targets.size(), 1u);
  EXPECT_EQ(s.probes[0].targets[0].name, "pg-1");
  EXPECT_EQ(s.probes[0].targets[0].role, "primary");
  const std::string html = render_landing_page({"1", "a", 1}, s);
  EXPECT_NE(html.find("<td class=\"role\">primary</td><td class=\"source\">patroni</td>"), std::string::npos) << html;
  EXPECT_EQ(html.find("pg-2"), std::string::npos);
}

TEST(ShownRole, TheServersOwnWordSettlesPrimaryTheSourcesTheRest) {
  EXPECT_EQ(shown_role(std::nullopt, ""), "");
  EXPECT_EQ(shown_role(false, ""), "replica");
  EXPECT_EQ(shown_role(true, "replica"), "primary");
  EXPECT_EQ(shown_role(false, "primary"), "replica");  // demoted, its source not caught up yet
  EXPECT_EQ(shown_role(std::nullopt, "primary"), "primary");
  EXPECT_EQ(shown_role(false, "sync_standby"), "sync_standby");
}

}  // namespace
}  // namespace ghostwatch
