#include "probes/reconcile/reconciler.h"

#include <gtest/gtest.h>

#include "agent/config.h"
#include "tests/unit/config_error.h"

namespace ghostwatch::reconcile {
namespace {

TEST(ReconcileKey, IdOfKeyByPattern) {
  EXPECT_EQ(id_of("user:42", "user:{id}"), "42");
  EXPECT_EQ(id_of("app:user:42:profile", "app:user:{id}:profile"), "42");
  EXPECT_EQ(id_of("user:", "user:{id}"), std::nullopt);        // an empty id
  EXPECT_EQ(id_of("account:42", "user:{id}"), std::nullopt);   // another key space
  EXPECT_EQ(id_of("user:42:x", "user:{id}:profile"), std::nullopt);
  EXPECT_EQ(id_of("user:42", "user:"), std::nullopt);          // no {id}
}

TEST(ReconcileResult, ConsistentRatio) {
  SweepResult r;
  EXPECT_EQ(r.consistent_ratio(), 1.0);  // nothing checked, nothing inconsistent
  r.checked = 200;
  r.counts[Kind::stale] = 3;
  r.counts[Kind::orphan] = 1;
  EXPECT_DOUBLE_EQ(r.consistent_ratio(), 0.98);
}

const char* kReconcile = R"(probes:
  - name: users-cache
    kind: reconcile
    cache:
      redis: "127.0.0.1:6379"
      key: "user:{id}"
      format: json
      field: /version
    source:
      dsn: "host=127.0.0.1 dbname=app user=ghostwatch password=recon-pw-55"
      table: users
      id_column: id
      version_column: version
    grace: 2s
    every: 30s
    rate_limit: 5000
)";

TEST(ReconcileConfigTest, ParsesAndRendersRedacted) {
  Config c = parse_config(kReconcile, "cfg.yaml");
  ASSERT_EQ(c.reconcilers.size(), 1u);
  const ReconcileConfig& r = c.reconcilers[0];
  EXPECT_EQ(r.cache.key, "user:{id}");
  EXPECT_EQ(r.table, "users");
  EXPECT_EQ(r.grace, std::chrono::seconds(2));
  EXPECT_EQ(r.rate_limit, 5000);
  const std::string rendered = render_config(c);
  EXPECT_EQ(rendered.find("recon-pw-55"), std::string::npos);
  EXPECT_NO_THROW(parse_config(rendered, "rendered.yaml"));
}

TEST(ReconcileConfigTest, BadInputIsNamed) {
  auto with = [](const std::string& from, const std::string& to) {
    std::string t = kReconcile;
    return t.replace(t.find(from), from.size(), to);
  };
  EXPECT_NE(error_of(with("user:{id}", "user:all")).find("probes[0].cache.key: the key pattern needs {id} exactly once"),
            std::string::npos);
  EXPECT_NE(error_of(with("      table: users\n", "")).find("probes[0].source: missing required key 'table'"),
            std::string::npos);
  EXPECT_NE(error_of(with("rate_limit: 5000", "rate_limit: fast")).find("probes[0].rate_limit: expected a whole number"),
            std::string::npos);
  EXPECT_NE(error_of(with("redis: \"127.0.0.1:6379\"", "memcached: \"127.0.0.1:11211\"\n      db: 1")).find("'db' goes with redis"),
            std::string::npos);
  EXPECT_NE(error_of(with("host=127.0.0.1 dbname=app user=ghostwatch password=recon-pw-55", "mysql://u@h:0/db"))
                .find("probes[0].source.dsn: bad MySQL URI: bad port '0'"),
            std::string::npos);
  Config mc = parse_config(with("host=127.0.0.1 dbname=app user=ghostwatch password=recon-pw-55", "mysql://u@h/db"), "cfg.yaml");
  EXPECT_EQ(mc.reconcilers[0].source_kind, ProbeKind::mysql);
  EXPECT_NE(error_of(with("    every: 30s\n", "    every: 30s\n    targets: []\n")).find("unknown key 'targets'"),
            std::string::npos);
}

TEST(ReconcileConfigTest, SourceMayBeAProbesPrimaryAndVersionsTimestamps) {
  const std::string text = R"(probes:
  - name: pg
    kind: postgres
    primary: "host=db1 dbname=app user=ghostwatch"
    targets:
      - {name: r1, dsn: "host=db2"}
  - name: users-cache
    kind: reconcile
    cache: {redis: "127.0.0.1:6379", key: "user:{id}", format: json, field: /updated_at}
    source: {probe: pg, table: users, id_column: id, version_column: updated_at, version_type: timestamp}
)";
  Config c = parse_config(text, "cfg.yaml");
  ASSERT_EQ(c.reconcilers.size(), 1u);
  EXPECT_EQ(c.reconcilers[0].source.dsn, "host=db1 dbname=app user=ghostwatch");
  EXPECT_EQ(c.reconcilers[0].source_kind, ProbeKind::postgres);
  EXPECT_EQ(c.reconcilers[0].version_type, ReconcileConfig::VersionType::timestamp);
  std::string unknown = text;
  unknown.replace(unknown.find("probe: pg"), 9, "probe: pq");
  EXPECT_NE(error_of(unknown).find("probes[1].source.probe: no postgres or mysql probe named 'pq'"), std::string::npos);
  std::string both = text;
  both.replace(both.find("probe: pg"), 9, "probe: pg, dsn: \"host=x\"");
  EXPECT_NE(error_of(both).find("the source takes 'dsn' or 'probe', not both"), std::string::npos);
  // Neither: the only replication probe's primary.
  std::string neither = text;
  neither.replace(neither.find("probe: pg, "), 11, "");
  EXPECT_EQ(parse_config(neither, "cfg.yaml").reconcilers[0].source.dsn, "host=db1 dbname=app user=ghostwatch");
  // Neither, and no probe to default to.
  EXPECT_NE(error_of(R"(probes:
  - name: c
    kind: reconcile
    cache: {redis: "h:1", key: "u:{id}"}
    source: {table: t, id_column: id, version_column: v}
)").find("probes[0].source: name the source"),
            std::string::npos);
}

}  // namespace
}  // namespace ghostwatch::reconcile
