#include "exporters/prometheus_sink.h"

#include <gtest/gtest.h>

namespace ghostwatch {
namespace {

TEST(PrometheusSink, AProbesSeriesLeaveWithItsHandles) {
  PrometheusSink sink;
  auto kept = sink.probe("kept", "postgres");
  auto kept_target = kept->target("r");
  {
    auto gone = sink.probe("gone", "postgres");
    auto target = gone->target("r");
    target->reported_lag(1.5);
    auto path = gone->read_path("lb", {"0ms"});
    auto reconcile = sink.reconcile("gone-cache", "redis");
    EXPECT_NE(sink.render().find("probe=\"gone\""), std::string::npos);
  }
  const std::string after = sink.render();
  EXPECT_EQ(after.find("gone"), std::string::npos) << after;
  EXPECT_NE(after.find("ghostwatch_target_up{probe=\"kept\",target=\"r\"}"), std::string::npos);
}

TEST(PrometheusSink, ATargetsRoleIsOneSeriesThatFollowsTheRole) {
  PrometheusSink sink;
  auto probe = sink.probe("pg", "postgres");
  auto target = probe->target("pg-1");
  target->origin("patroni", "replica");
  const std::string role = "ghostwatch_target_role{probe=\"pg\",role=\"";
  EXPECT_NE(sink.render().find(role + "replica\",target=\"pg-1\"} 1"), std::string::npos) << sink.render();
  target->role(true);  // promoted: its server says so before its source does
  std::string text = sink.render();
  EXPECT_NE(text.find(role + "primary\",target=\"pg-1\"} 1"), std::string::npos) << text;
  EXPECT_EQ(text.find(role + "replica\""), std::string::npos) << text;
  auto discovery = probe->discovery("patroni");
  discovery->round(true, 3);
  discovery->round(false, 0);
  text = sink.render();
  EXPECT_NE(text.find("ghostwatch_discovery_targets{probe=\"pg\",source=\"patroni\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("ghostwatch_discovery_errors_total{probe=\"pg\",source=\"patroni\"} 1"), std::string::npos);
  EXPECT_NE(text.find("ghostwatch_discovery_last_success_timestamp_seconds{probe=\"pg\",source=\"patroni\"} 1"),
            std::string::npos);
  target.reset();
  discovery.reset();
  text = sink.render();
  EXPECT_EQ(text.find("pg-1"), std::string::npos) << text;
  EXPECT_EQ(text.find("source=\"patroni\""), std::string::npos) << text;
}

TEST(PrometheusSink, ASessionPathsWritesCountUnderTheirOwnProbeLabel) {
  PrometheusSink sink;
  auto probe = sink.probe("pg", "postgres");
  probe->canary_written(true, std::chrono::milliseconds(2), "");
  auto plain = probe->read_path("lb", {"0ms"});
  EXPECT_EQ(sink.render().find("probe=\"pg/lb\""), std::string::npos);  // a plain path writes nothing
  {
    auto session = probe->read_path("pgpool", {"0ms"});
    session->written(true, std::chrono::milliseconds(3), "");
    session->written(true, std::chrono::milliseconds(4), "");
    session->written(false, std::chrono::milliseconds(0), "read-only transaction");
    const std::string text = sink.render();
    EXPECT_NE(text.find("ghostwatch_canary_writes_total{probe=\"pg\",result=\"ok\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("ghostwatch_canary_writes_total{probe=\"pg/pgpool\",result=\"ok\"} 2\n"), std::string::npos) << text;
    EXPECT_NE(text.find("ghostwatch_canary_writes_total{probe=\"pg/pgpool\",result=\"error\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("ghostwatch_canary_write_seconds_count{probe=\"pg/pgpool\"} 2\n"), std::string::npos) << text;
  }
  EXPECT_EQ(sink.render().find("pg/pgpool"), std::string::npos);  // gone with its path
}

TEST(PrometheusSink, ReportsConfigReloads) {
  PrometheusSink sink;
  sink.config_applied(true, 1000);
  sink.config_applied(false, 0);
  const std::string text = sink.render();
  EXPECT_NE(text.find("ghostwatch_config_last_reload_successful 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ghostwatch_config_last_reload_success_timestamp_seconds 1000\n"), std::string::npos) << text;
}

TEST(PrometheusSink, ATargetWithoutSamplesShowsNoFigureThatLooksMeasured) {
  PrometheusSink sink;
  auto probe = sink.probe("pg", "postgres");
  auto target = probe->target("never");
  target->polled(false, "connection refused");
  target->pending(std::chrono::seconds(0));
  const std::string text = sink.render();
  EXPECT_NE(text.find("ghostwatch_target_up{probe=\"pg\",target=\"never\"} 0"), std::string::npos) << text;
  EXPECT_NE(text.find("ghostwatch_visibility_lag_seconds_count{probe=\"pg\",target=\"never\"} 0"), std::string::npos);
  EXPECT_EQ(text.find("ghostwatch_visibility_resolution_seconds{"), std::string::npos) << "no resolution without a sample";
  EXPECT_EQ(text.find("ghostwatch_reported_lag_seconds{"), std::string::npos);
  EXPECT_EQ(text.find("ghostwatch_received_lag_seconds_count{"), std::string::npos) << "none until one is received";
  target->received({1, std::chrono::milliseconds(1), std::chrono::milliseconds(1)});
  EXPECT_NE(sink.render().find("ghostwatch_received_lag_seconds_count{probe=\"pg\",target=\"never\"} 1"),
            std::string::npos);
  target->visible({1, std::chrono::milliseconds(5), std::chrono::milliseconds(2)});
  EXPECT_NE(sink.render().find("ghostwatch_visibility_resolution_seconds{probe=\"pg\",target=\"never\"} 0.002"), std::string::npos);
}

}  // namespace
}  // namespace ghostwatch
