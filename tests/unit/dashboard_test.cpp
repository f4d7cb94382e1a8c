// Static checks of dashboards/ghostwatch.json and alerts/ghostwatch.rules.yml: the dashboard is
// well formed (unique ids, grid, units, descriptions, the datasource variable everywhere) and
// every metric a panel or a rule names is one the exporter exports or a rule records.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "exporters/prometheus_sink.h"

namespace ghostwatch {
namespace {

nlohmann::json dashboard() {
  std::ifstream in(std::string(GHOSTWATCH_SOURCE_DIR) + "/dashboards/ghostwatch.json");
  return nlohmann::json::parse(in);
}

// The shipped rules: the hand-written ones and the default SLO's generated ones.
std::vector<YAML::Node> rule_files() {
  const std::string dir = std::string(GHOSTWATCH_SOURCE_DIR) + "/alerts/";
  return {YAML::LoadFile(dir + "ghostwatch.rules.yml"), YAML::LoadFile(dir + "ghostwatch.slo.rules.yml")};
}

// Every series name the exporter can produce, histogram and counter suffixes included.
std::set<std::string> exported_names() {
  PrometheusSink sink;
  auto probe = sink.probe("p", "postgres");
  auto target = probe->target("t");
  target->position_lag(PositionUnit::bytes, 1);
  target->position_lag(PositionUnit::transactions, 1);
  target->reported_lag(1);
  target->received({1, std::chrono::milliseconds(1), std::chrono::milliseconds(1)});
  auto path = probe->read_path("r", {"0ms"});
  auto discovery = probe->discovery("patroni");
  target->origin("patroni", "replica");
  auto reconcile = sink.reconcile("c", "redis");  // held: a handle's series leave with it
  reconcile->swept(SweepObservation{});
  std::set<std::string> names;
  std::istringstream text(sink.render());
  for (std::string line; std::getline(text, line);) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    const std::string name = line.substr(7, line.find(' ', 7) - 7);
    names.insert(name);
    if (line.ends_with(" histogram")) {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) names.insert(name + suffix);
    }
  }
  for (const YAML::Node& file : rule_files()) {
    for (const auto& group : file["groups"]) {
      for (const auto& rule : group["rules"]) {
        if (rule["record"]) names.insert(rule["record"].as<std::string>());
      }
    }
  }
  return names;
}

std::set<std::string> referenced(const std::string& expr) {
  static const std::regex metric("ghostwatch[_:][A-Za-z0-9_:]*");
  std::set<std::string> out;
  for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) out.insert(it->str());
  return out;
}

TEST(Dashboard, PanelsAreWellFormed) {
  const auto d = dashboard();
  std::set<int> ids;
  std::vector<std::array<int, 4>> boxes;
  for (const auto& p : d.at("panels")) {
    const std::string title = p.at("title");
    EXPECT_TRUE(ids.insert(p.at("id").get<int>()).second) << "duplicate id in " << title;
    EXPECT_FALSE(p.at("description").get<std::string>().empty()) << title;
    EXPECT_FALSE(p.at("fieldConfig").at("defaults").at("unit").get<std::string>().empty()) << title;
    EXPECT_EQ(p.at("datasource").at("uid"), "${datasource}") << title;
    for (const auto& t : p.at("targets")) EXPECT_EQ(t.at("datasource").at("uid"), "${datasource}") << title;
    const auto& g = p.at("gridPos");
    const std::array<int, 4> box{g.at("x").get<int>(), g.at("y").get<int>(), g.at("w").get<int>(), g.at("h").get<int>()};
    EXPECT_GE(box[0], 0);
    EXPECT_LE(box[0] + box[2], 24) << title;
    for (const auto& o : boxes) {
      const bool apart = box[0] + box[2] <= o[0] || o[0] + o[2] <= box[0] || box[1] + box[3] <= o[1] || o[1] + o[3] <= box[1];
      EXPECT_TRUE(apart) << title << " overlaps another panel";
    }
    boxes.push_back(box);
  }
  std::set<std::string> variables;
  for (const auto& v : d.at("templating").at("list")) variables.insert(v.at("name").get<std::string>());
  EXPECT_EQ(variables, (std::set<std::string>{"datasource", "cluster", "probe", "target"}));
}

TEST(Dashboard, EveryMetricAPanelNamesIsExportedOrRecorded) {
  const auto known = exported_names();
  std::size_t checked = 0;
  const auto d = dashboard();
  for (const auto& p : d.at("panels")) {
    for (const auto& t : p.at("targets")) {
      for (const std::string& name : referenced(t.at("expr").get<std::string>())) {
        EXPECT_TRUE(known.count(name)) << p.at("title") << ": " << name;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 15u);
}

TEST(AlertRules, EveryMetricARuleNamesIsExportedOrRecorded) {
  const auto known = exported_names();
  std::set<std::string> alerts;
  for (const YAML::Node& file : rule_files()) {
    for (const auto& group : file["groups"]) {
      for (const auto& rule : group["rules"]) {
        for (const std::string& name : referenced(rule["expr"].as<std::string>())) {
          EXPECT_TRUE(known.count(name)) << name;
        }
        if (rule["alert"]) {
          alerts.insert(rule["alert"].as<std::string>());
          EXPECT_TRUE(rule["labels"]["severity"]) << rule["alert"].as<std::string>();
          EXPECT_TRUE(rule["annotations"]["summary"] && rule["annotations"]["description"]);
        }
      }
    }
  }
  // Every alert is tested by promtool and has a runbook entry in the reference.
  std::stringstream tests, runbooks;
  tests << std::ifstream(std::string(GHOSTWATCH_SOURCE_DIR) + "/alerts/ghostwatch.rules.test.yml").rdbuf()
        << std::ifstream(std::string(GHOSTWATCH_SOURCE_DIR) + "/alerts/ghostwatch.slo.rules.test.yml").rdbuf();
  runbooks << std::ifstream(std::string(GHOSTWATCH_SOURCE_DIR) + "/docs/reference/alerts.md").rdbuf();
  EXPECT_GE(alerts.size(), 12u);
  for (const std::string& alert : alerts) {
    EXPECT_NE(tests.str().find("alertname: " + alert + "\n"), std::string::npos) << alert << " has no promtool test";
    EXPECT_NE(runbooks.str().find("- **" + alert + "**"), std::string::npos)
        << alert << " has no runbook in docs/reference/alerts.md";
  }
}

}  // namespace
}  // namespace ghostwatch
