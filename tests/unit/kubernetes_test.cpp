// deploy/kubernetes: the PrometheusRule carries exactly alerts/ghostwatch.rules.yml, the
// Deployment runs hardened with health and readiness probes on the agent's endpoints, and the
// ConfigMap's config is one the agent accepts.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <string>

#include "agent/config.h"

namespace ghostwatch {
namespace {

std::string path(const std::string& relative) { return std::string(GHOSTWATCH_SOURCE_DIR) + "/" + relative; }

// Structural equality of two YAML trees (maps by key, sequences by position, scalars by text).
bool same_yaml(const YAML::Node& a, const YAML::Node& b, const std::string& where, std::string& diff) {
  if (a.Type() != b.Type()) {
    diff = where + ": different node types";
    return false;
  }
  if (a.IsScalar() && a.Scalar() != b.Scalar()) {
    diff = where + ": '" + a.Scalar() + "' vs '" + b.Scalar() + "'";
    return false;
  }
  if (a.IsSequence()) {
    if (a.size() != b.size()) {
      diff = where + ": " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " items";
      return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!same_yaml(a[i], b[i], where + "[" + std::to_string(i) + "]", diff)) return false;
    }
  }
  if (a.IsMap()) {
    if (a.size() != b.size()) {
      diff = where + ": different keys";
      return false;
    }
    for (auto it = a.begin(); it != a.end(); ++it) {
      const std::string key = it->first.Scalar();
      if (!b[key]) {
        diff = where + "." + key + ": missing";
        return false;
      }
      if (!same_yaml(it->second, b[key], where + "." + key, diff)) return false;
    }
  }
  return true;
}

TEST(Kubernetes, ThePrometheusRuleIsGeneratedFromTheRulesFile) {
  const YAML::Node rules = YAML::LoadFile(path("alerts/ghostwatch.rules.yml"));
  const YAML::Node crd = YAML::LoadFile(path("deploy/kubernetes/prometheusrule.yaml"));
  EXPECT_EQ(crd["kind"].as<std::string>(), "PrometheusRule");
  std::string diff;
  EXPECT_TRUE(same_yaml(rules["groups"], crd["spec"]["groups"], "groups", diff))
      << diff << "\nrun scripts/gen-k8s-rules.sh";
}

TEST(Kubernetes, TheDeploymentIsHardenedAndProbesHealthAndReadiness) {
  const YAML::Node d = YAML::LoadFile(path("deploy/kubernetes/deployment.yaml"));
  const YAML::Node pod = d["spec"]["template"]["spec"];
  EXPECT_TRUE(pod["securityContext"]["runAsNonRoot"].as<bool>());
  EXPECT_NE(pod["securityContext"]["runAsUser"].as<int>(), 0);
  const YAML::Node c = pod["containers"][0];
  EXPECT_TRUE(c["securityContext"]["readOnlyRootFilesystem"].as<bool>());
  EXPECT_FALSE(c["securityContext"]["allowPrivilegeEscalation"].as<bool>());
  EXPECT_EQ(c["securityContext"]["capabilities"]["drop"][0].as<std::string>(), "ALL");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/readyz");
  EXPECT_EQ(c["ports"][0]["containerPort"].as<int>(), 9739);
  const YAML::Node monitor = YAML::LoadFile(path("deploy/kubernetes/servicemonitor.yaml"));
  EXPECT_EQ(monitor["spec"]["endpoints"][0]["port"].as<std::string>(), c["ports"][0]["name"].as<std::string>());
}

TEST(Kubernetes, TheConfigMapHoldsAConfigTheAgentAccepts) {
  const YAML::Node cm = YAML::LoadFile(path("deploy/kubernetes/configmap.yaml"));
  setenv("PG_PASSWORD", "from-the-secret", 1);
  const Config c = parse_config(cm["data"]["ghostwatch.yaml"].as<std::string>(), "configmap.yaml");
  EXPECT_EQ(c.agent.listen, "0.0.0.0:9739");
  EXPECT_EQ(c.probes.at(0).targets.size(), 2u);
  unsetenv("PG_PASSWORD");
}

}  // namespace
}  // namespace ghostwatch
