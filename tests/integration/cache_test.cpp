// Integration tests of cache targets on the sandbox's Redis and memcached, fed by the reference
// pipeline (tests/integration/cache_pipeline.cpp) from the PostgreSQL primary with a delay.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;
using Caches = SandboxTest;

std::string agent_id() { return "it-" + std::to_string(getpid()); }

// The pipeline carrying canaries from the primary into the caches `delay_ms` late.
std::unique_ptr<ChildProcess> start_pipeline(int delay_ms) { return start_cache_pipeline(CACHE_PIPELINE, delay_ms); }

std::string cache_probe_yaml(const std::string& interval, const std::string& timeout) {
  return agent_yaml() + R"(  - name: pg
    kind: postgres
    primary: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
    interval: )" + interval + R"(
    poll_interval: 2ms
    timeout: )" + timeout + R"(
    targets:
      - name: replica-1
        dsn: "${GW_PG_REPLICA1_DSN} password=${GW_PG_PASSWORD}"
      - name: redis-plain
        redis: "${GW_REDIS_ADDR}"
        key: "canary:{agent}:{probe}"
      - name: redis-json
        redis: "${GW_REDIS_ADDR}"
        key: "canary-json:{agent}:{probe}"
        format: json
        field: /seq
      - name: redis-hash
        redis: "${GW_REDIS_ADDR}"
        key: "canary-hash:{agent}:{probe}"
        format: hash
        field: seq
      - name: redis-invalidate
        redis: "${GW_REDIS_ADDR}"
        key: "canary-inv:{agent}:{probe}"
        mode: invalidate
      - name: memcached
        memcached: "${GW_MEMCACHED_ADDR}"
        key: "canary:{agent}:{probe}"
)";
}

void redis_set(const std::string& key, const std::string& value) {
  const std::string addr = require_env("GW_REDIS_ADDR");
  redisContext* r = redisConnect(addr.substr(0, addr.rfind(':')).c_str(), std::stoi(addr.substr(addr.rfind(':') + 1)));
  ASSERT_TRUE(r != nullptr && !r->err);
  auto* reply = static_cast<redisReply*>(redisCommand(r, "SET %s %s", key.c_str(), value.c_str()));
  ASSERT_NE(reply, nullptr);
  freeReplyObject(reply);
  redisFree(r);
}

TEST_F(Caches, CacheTargetsSeeTheCanaryWhenThePipelineCarriesIt) {
  auto pipeline = start_pipeline(150);
  const std::string config = write_temp_file(cache_probe_yaml("300ms", "5s"), ".yaml");
  auto r = run_command({ghostwatch_binary(), "probe", "--config", config, "--canaries", "20", "--output", "json"}, 60s);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << pipeline->log();
  const auto report = nlohmann::json::parse(r.out);
  std::string figure = "cache targets, pipeline delay 150 ms, 20 canaries: p50";
  for (const char* name : {"redis-plain", "redis-json", "redis-hash", "redis-invalidate", "memcached"}) {
    const auto& t = report_target(report, "pg", name);
    const double p50 = t.at("p50_seconds");
    figure += std::string(" ") + name + " " + std::to_string(int(p50 * 1000 + 0.5)) + " ms,";
    EXPECT_EQ(t.at("samples"), 20) << name;
    EXPECT_GE(p50, 0.150) << name;
    EXPECT_LE(p50, 0.220) << name;
  }
  figure += " replica-1 " + std::to_string(int(report_target(report, "pg", "replica-1").at("p50_seconds").get<double>() * 1000 + 0.5)) + " ms";
  record_figure(figure);
  std::remove(config.c_str());
}

TEST_F(Caches, AStoppedPipelineMakesTheCachePendingGrow) {
  auto pipeline = start_pipeline(50);
  const std::string config = write_temp_file(cache_probe_yaml("100ms", "60s"), ".yaml");
  Agent agent(config, free_port());
  const std::string pending = series("ghostwatch_visibility_pending_seconds", "pg", "redis-plain");
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, series("ghostwatch_visibility_lag_seconds_count", "pg", "redis-plain")) > 3; }, 15s))
      << agent.log() << pipeline->log();
  EXPECT_LT(metric_or(agent, pending), 0.5);
  pipeline.reset();  // the pipeline stops: the cache keeps the old value
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, pending) > 1.5; }, 10s)) << metric_or(agent, pending);
  EXPECT_EQ(metric_or(agent, series("ghostwatch_target_up", "pg", "redis-plain")), 1) << "the cache itself is up";
  EXPECT_LT(metric_or(agent, series("ghostwatch_visibility_pending_seconds", "pg", "replica-1")), 0.5);
  record_figure("stopped cache pipeline: redis pending " + std::to_string(metric_or(agent, pending)) + " s");
  std::remove(config.c_str());
}

TEST_F(Caches, AGarbageValueIsAnErrorWithAReason) {
  redis_set("canary:" + agent_id() + ":pg", "garbage");
  const std::string config = write_temp_file(cache_probe_yaml("100ms", "1s"), ".yaml");
  auto r = run_command({ghostwatch_binary(), "probe", "--config", config, "--canaries", "3", "--output", "json"}, 60s);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const auto report = nlohmann::json::parse(r.out);
  const auto& t = report_target(report, "pg", "redis-plain");
  EXPECT_GT(t.at("errors").get<int>(), 0);
  EXPECT_NE(t.at("last_error").get<std::string>().find("unparseable value 'garbage': not an integer"), std::string::npos)
      << t.dump();
  EXPECT_EQ(report_target(report, "pg", "replica-1").at("samples"), 3) << "the other targets are measured";
  std::remove(config.c_str());
}

}  // namespace
}  // namespace ghostwatch::testing
