#include "agent/slo.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "agent/config.h"
#include "exporters/prometheus_sink.h"
#include "tests/unit/config_error.h"

namespace ghostwatch {
namespace {

const std::string kProbes = R"(probes:
  - name: pg
    kind: postgres
    primary: "host=127.0.0.1 dbname=app"
    targets:
      - name: replica-1
        dsn: "host=127.0.0.1 port=5433 dbname=app"
)";

std::string with_slo(const std::string& fields) {
  return kProbes + "slos:\n  - name: checkout-replicas\n" + fields;
}

const std::string kGoodFields = "    probe: pg\n    target_regex: \"replica-.*\"\n    threshold: 250ms\n"
                                "    objective: 0.999\n    window: 28d\n";

std::string slo_file(const std::string& text) {
  char path[] = "/tmp/ghostwatch-slo-XXXXXX";
  const int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(SloConfig, AGoodSloParsesInAnAgentConfigAndAlone) {
  EXPECT_EQ(error_of(with_slo(kGoodFields)), "");
  const std::string alone = slo_file("slos:\n  - name: any\n    probe_regex: \".+\"\n    threshold: 1s\n    objective: 0.99\n");
  const auto slos = load_slos(alone);
  std::remove(alone.c_str());
  ASSERT_EQ(slos.size(), 1u);
  EXPECT_EQ(slos[0].probe_regex, ".+");
  EXPECT_EQ(slos[0].target_regex, ".+");
  EXPECT_EQ(slos[0].window_days, 28);
  EXPECT_DOUBLE_EQ(slos[0].threshold_seconds, 1.0);
}

TEST(SloConfig, EachMistakeIsNamedWithItsLine) {
  struct Case {
    std::string fields, expected;
  };
  const Case cases[] = {
      {"    probe: pg\n    threshold: 240ms\n    objective: 0.999\n",
       "cfg.yaml:11:16: slos[0].threshold: 240ms is not a bucket boundary of ghostwatch_visibility_lag_seconds"},
      {"    probe: mysql\n    threshold: 250ms\n    objective: 0.999\n",
       "cfg.yaml:10:12: slos[0].probe: no probe named 'mysql' in this config"},
      {"    probe: pg\n    threshold: 250ms\n    objective: 0.9\n",
       "slos[0].objective: an objective of 0.9 leaves an error budget so large that the page alert's 14.4x burn "
       "rate would need more than 100% bad canaries; use an objective above 0.9306"},
      {"    probe: pg\n    threshold: 250ms\n    objective: 1\n", "slos[0].objective: expected a share between 0 and 1"},
      {"    probe: pg\n    threshold: 250ms\n    objective: 0.999\n    window: 28h\n",
       "slos[0].window: expected whole days, e.g. 28d, got '28h'"},
      {"    probe: pg\n    threshold: 250ms\n    objective: 0.999\n    window: 1d\n",
       "slos[0].window: the period must be 7d to 366d"},
      {"    probe: pg\n    probe_regex: p.*\n    threshold: 250ms\n    objective: 0.999\n",
       "slos[0]: give exactly one of probe (a name) and probe_regex"},
      {"    probe: pg\n    target_regex: \"(?!replica-1).*\"\n    threshold: 250ms\n    objective: 0.999\n",
       "slos[0].target_regex: Prometheus' regular expressions (RE2) have no lookaround"},
      {"    probe: pg\n    target_regex: \"replica-[\"\n    threshold: 250ms\n    objective: 0.999\n",
       "slos[0].target_regex: not a valid regular expression: 'replica-['"},
      {"    probe: pg\n    threshold: 250ms\n    objective: 0.999\n    burn: fast\n",
       "slos[0].burn: unknown key 'burn'"},
      {"    probe: pg\n    objective: 0.999\n", "slos[0]: missing required key 'threshold'"},
  };
  for (const Case& c : cases) {
    const std::string error = error_of(with_slo(c.fields));
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.fields << "\ngot: " << error;
  }
  const std::string twice = with_slo(kGoodFields) + "  - name: checkout-replicas\n" + kGoodFields;
  EXPECT_NE(error_of(twice).find("slos[1].name: duplicate SLO name 'checkout-replicas'"), std::string::npos);
  const std::string bad_name = kProbes + "slos:\n  - name: \"checkout replicas\"\n" + kGoodFields;
  EXPECT_NE(error_of(bad_name).find("slos[0].name: expected 1-64 letters"), std::string::npos);
}

TEST(SloConfig, AFileWithoutProbesOrSlosIsRefused) {
  const std::string nothing = slo_file("agent: {id: a}\n");
  try {
    load_slos(nothing);
    ADD_FAILURE() << "a file with neither probes nor slos was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown key 'agent'"), std::string::npos) << e.what();
  }
  std::remove(nothing.c_str());
}

// The rules select the bucket at the threshold by its `le` text: it must be the text the agent
// exports, for every boundary.
TEST(SloRules, TheThresholdsLeLabelIsTheOneTheAgentExports) {
  PrometheusSink sink;
  auto probe = sink.probe("pg", "postgres");
  auto target = probe->target("replica-1");
  const std::string text = sink.render();
  for (double boundary : lag_buckets()) {
    const std::string series = "ghostwatch_visibility_lag_seconds_bucket{probe=\"pg\",target=\"replica-1\",le=\"" +
                               prometheus_number(boundary) + "\"}";
    EXPECT_NE(text.find(series), std::string::npos) << series;
  }
}

TEST(SloRules, OneSloMakesItsWindowsBudgetAndBothAlerts) {
  const std::string path = slo_file(with_slo(kGoodFields));
  const std::string rules = render_slo_rules(load_slos(path), path);
  std::remove(path.c_str());
  for (const char* window : {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}) {
    EXPECT_NE(rules.find("record: ghostwatch:slo_visibility_errors:ratio_rate" + std::string(window) + "\n"),
              std::string::npos) << window;
  }
  EXPECT_NE(rules.find("le=\"0.25\"}[28d]"), std::string::npos);
  EXPECT_NE(rules.find("probe=\"pg\",target=~\"replica-.*\""), std::string::npos);
  EXPECT_NE(rules.find("ghostwatch:slo_error_budget_remaining:ratio"), std::string::npos);
  EXPECT_NE(rules.find("ratio_rate1h{slo=\"checkout-replicas\"} > (14.4 * (1 - 0.999))"), std::string::npos);
  EXPECT_NE(rules.find("ratio_rate3d{slo=\"checkout-replicas\"} > (1 * (1 - 0.999))"), std::string::npos);
  EXPECT_NE(rules.find("severity: page\n          slo: checkout-replicas"), std::string::npos);
  EXPECT_NE(rules.find("severity: ticket\n          slo: checkout-replicas"), std::string::npos);
  EXPECT_EQ(rules.find("sum by"), std::string::npos) << "a sum by drops the cluster and external labels";
}

TEST(SloRules, ARegexIsQuotedForPromql) {
  const std::string path = slo_file(with_slo("    probe: pg\n    target_regex: 'replica-\\d+'\n    threshold: 1s\n"
                                             "    objective: 0.99\n"));
  const std::string rules = render_slo_rules(load_slos(path), path);
  std::remove(path.c_str());
  EXPECT_NE(rules.find("target=~\"replica-\\\\d+\""), std::string::npos) << rules.substr(0, 1200);
}

TEST(SloRules, NumbersAreWrittenAsPrometheusReadsThem) {
  EXPECT_EQ(prometheus_number(0.25), "0.25");
  EXPECT_EQ(prometheus_number(1), "1");
  EXPECT_EQ(prometheus_number(0.0025), "0.0025");
  EXPECT_EQ(prometheus_number(0.999), "0.999");
  EXPECT_EQ(prometheus_number(300), "300");
}

}  // namespace
}  // namespace ghostwatch
