#include "probes/reconcile/reconciler.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>

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

// In-memory sides that answer queued batches in order and record how many were in flight.
// Keys are "k:<id>"; the cache holds `cached[id]`, the table `table[id]` (absent: no row).
struct World {
  std::map<int, std::string> cached;
  std::map<int, int64_t> table;
  std::size_t most_reads_in_flight = 0, most_lookups_in_flight = 0;
  int fail_lookup_number = 0;  // this lookup (1-based, counted over all sweeps) fails
  int lookups = 0, discards = 0;
};

int id_number(std::string_view id) { return std::stoi(std::string(id)); }

class FakeCache final : public CacheSide {
 public:
  explicit FakeCache(World& w) : w_(w) {}
  bool can_scan() const override { return true; }
  Status scan(const std::function<bool(const StringBatch&)>& page) override {
    StringBatch keys;
    for (const auto& [id, value] : w_.cached) {
      keys.add("k:" + std::to_string(id));
      if (keys.size() == 137 && !page(keys)) return ok_status();
      if (keys.size() == 137) keys.clear();
    }
    if (!keys.empty()) page(keys);
    return ok_status();
  }
  Status send_read(const StringBatch& keys) override {
    queued_.push_back(&keys);
    w_.most_reads_in_flight = std::max(w_.most_reads_in_flight, queued_.size());
    return ok_status();
  }
  Status receive_read(StringBatch& values) override {
    const StringBatch& keys = *queued_.front();
    queued_.pop_front();
    for (std::size_t i = 0; i < keys.size(); ++i) {
      auto it = w_.cached.find(id_number(keys[i].substr(2)));
      if (it == w_.cached.end()) values.add_absent();
      else values.add(it->second);
    }
    return ok_status();
  }
  void discard() override {
    queued_.clear();
    ++w_.discards;
  }
  Status remove(const std::vector<std::string>&) override { return ok_status(); }

 private:
  World& w_;
  std::deque<const StringBatch*> queued_;
};

class FakeDb final : public DbSide {
 public:
  explicit FakeDb(World& w) : w_(w) {}
  Status send_versions(const StringBatch& ids) override {
    queued_.push_back(&ids);
    w_.most_lookups_in_flight = std::max(w_.most_lookups_in_flight, queued_.size());
    return ok_status();
  }
  Status receive_versions(Versions& versions) override {
    const StringBatch& ids = *queued_.front();
    queued_.pop_front();
    if (++w_.lookups == w_.fail_lookup_number) return Error{"lookup failed"};
    versions.assign(ids.size(), std::nullopt);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto it = w_.table.find(id_number(ids[i]));
      if (it != w_.table.end()) versions[i] = it->second;
    }
    return ok_status();
  }
  void discard() override { queued_.clear(); }
  Status list_ids(const std::function<bool(const StringBatch&)>&) override { return Error{"not used"}; }

 private:
  World& w_;
  std::deque<const StringBatch*> queued_;
};

ReconcileConfig fake_config() {
  ReconcileConfig c;
  c.name = "fake";
  c.cache.key = "k:{id}";
  c.batch = 50;
  c.grace = std::chrono::milliseconds(0);
  c.rate_limit = 1e9;
  return c;
}

// 1000 entries: stale 7 and 512, ahead 900, orphan 5000, a miss-free unparseable 13.
World fake_world() {
  World w;
  for (int id = 1; id <= 1000; ++id) {
    w.cached[id] = "1";
    w.table[id] = 1;
  }
  w.table[7] = w.table[512] = 2;
  w.cached[900] = "3";
  w.cached[5000] = "1";
  w.cached[13] = "x";
  return w;
}

void expect_fake_world_counts(const SweepResult& r) {
  EXPECT_EQ(r.checked, 1000);  // 1001 entries - 1 unparseable
  EXPECT_EQ(r.unparseable, 1);
  EXPECT_EQ(r.counts.at(Kind::stale), 2);
  EXPECT_EQ(r.counts.at(Kind::ahead), 1);
  EXPECT_EQ(r.counts.at(Kind::orphan), 1);
  std::set<std::string> keys;
  for (const Mismatch& m : r.mismatches) keys.insert(m.key);
  EXPECT_EQ(keys, (std::set<std::string>{"k:7", "k:512", "k:900", "k:5000"}));
}

TEST(ReconcilePipeline, KeepsSeveralBatchesInFlightAndPairsEachAnswerWithItsBatch) {
  World w = fake_world();
  Reconciler r(fake_config(), std::make_unique<FakeCache>(w), std::make_unique<FakeDb>(w));
  auto result = r.sweep({}, std::stop_token());
  ASSERT_TRUE(result) << result.error().message;
  expect_fake_world_counts(result.value());
  EXPECT_EQ(w.most_reads_in_flight, Reconciler::kInFlight);
  EXPECT_EQ(w.most_lookups_in_flight, Reconciler::kInFlight);
}

TEST(ReconcilePipeline, AFailedBatchFailsTheSweepAndTheNextSweepStartsClean) {
  World w = fake_world();
  w.fail_lookup_number = 3;
  Reconciler r(fake_config(), std::make_unique<FakeCache>(w), std::make_unique<FakeDb>(w));
  auto failed = r.sweep({}, std::stop_token());
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message, "lookup failed");
  EXPECT_EQ(w.discards, 2) << "before the sweep and after its failure";
  auto again = r.sweep({}, std::stop_token());
  ASSERT_TRUE(again) << again.error().message;
  expect_fake_world_counts(again.value());
}

TEST(ReconcilePipeline, ASideAnsweringForAnotherBatchIsAnError) {
  World w = fake_world();
  class ShortCache final : public CacheSide {
   public:
    explicit ShortCache(World& w) : inner_(w) {}
    bool can_scan() const override { return true; }
    Status scan(const std::function<bool(const StringBatch&)>& page) override { return inner_.scan(page); }
    Status send_read(const StringBatch& keys) override { return inner_.send_read(keys); }
    Status receive_read(StringBatch& values) override {
      Status s = inner_.receive_read(values);
      values.add("1");  // one value too many
      return s;
    }
    void discard() override { inner_.discard(); }
    Status remove(const std::vector<std::string>&) override { return ok_status(); }

   private:
    FakeCache inner_;
  };
  Reconciler r(fake_config(), std::make_unique<ShortCache>(w), std::make_unique<FakeDb>(w));
  auto result = r.sweep({}, std::stop_token());
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("another batch"), std::string::npos) << result.error().message;
}

TEST(ReconcileBatch, HoldsEntriesAndAbsencesInOrder) {
  StringBatch b;
  b.add("alpha");
  b.add_absent();
  b.add("");
  b.add("z");
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[0], "alpha");
  EXPECT_TRUE(b.present(0));
  EXPECT_FALSE(b.present(1));
  EXPECT_EQ(b[1], "");
  EXPECT_TRUE(b.present(2));
  EXPECT_EQ(b[2], "");
  EXPECT_EQ(b[3], "z");
  b.clear();
  EXPECT_TRUE(b.empty());
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
