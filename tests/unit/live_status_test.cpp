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
  const auto row = html.find("data-target=\"never\"");
  ASSERT_NE(row, std::string::npos);
  const std::string tr = html.substr(row, html.find("</tr>", row) - row);
  EXPECT_NE(tr.find("DOWN</td><td class=\"role\">-</td><td class=\"source\">static</td><td class=\"none\">-</td>"
                    "<td class=\"none\">-</td>"),
            std::string::npos)
      << tr;
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
