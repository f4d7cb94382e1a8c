// Discovery's rounds against a fake target set: the live set follows the sources (added, moved,
// removed after remove_after rounds, re-roled), a failing source keeps its last members, names
// taken by static targets or by another source at another address are refused, and the file
// source re-reads its file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "exporters/prometheus_sink.h"
#include "probes/discovery/discovery.h"

namespace ghostwatch::discovery {
namespace {

struct Added {
  std::string dsn, source, role;
};

class FakeTargets final : public TargetSet {
 public:
  Status add(TargetConfig t, TargetOrigin origin) override {
    if (refuse == t.name) return Error{"refused"};
    targets[t.name] = Added{t.dsn.dsn, origin.source, origin.role};
    ++adds;
    return ok_status();
  }
  void remove(const std::string& name) override {
    targets.erase(name);
    ++removes;
  }
  void set_role(const std::string& name, const std::string& role) override { targets.at(name).role = role; }
  void set_primary(DsnConfig primary) override { primaries.push_back(primary.dsn); }
  std::map<std::string, Added> targets;
  std::vector<std::string> primaries;
  int adds = 0, removes = 0;
  std::string refuse;
};

class FakeSource final : public Source {
 public:
  explicit FakeSource(Result<std::vector<Member>>& answer) : answer_(answer) {}
  Result<std::vector<Member>> list(std::stop_token) override { return answer_; }

 private:
  Result<std::vector<Member>>& answer_;
};

Member listed(const std::string& name, const std::string& host, int port, const std::string& role = "replica",
              bool eligible = true) {
  Member m;
  m.name = name;
  m.host = host;
  m.port = port;
  m.role = role;
  m.eligible = eligible;
  return m;
}

struct Rig {
  explicit Rig(int sources = 1, std::vector<std::string> static_names = {}, bool follow_leader = false) {
    DiscoveryConfig config;
    config.dsn_template = "host={host} port={port} application_name={name}";
    config.remove_after = 2;
    std::vector<SourceEntry> entries;
    const DiscoverySourceConfig::Kind kinds[] = {DiscoverySourceConfig::Kind::patroni,
                                                 DiscoverySourceConfig::Kind::file};
    for (int i = 0; i < sources; ++i) {
      entries.push_back(SourceEntry{kinds[i], std::chrono::seconds(1), std::make_unique<FakeSource>(answers[i])});
    }
    probe_sink = sink.probe("pg", "postgres");
    discovery = std::make_unique<Discovery>("pg", config, std::move(entries), targets, *probe_sink, static_names,
                                            follow_leader);
  }
  void round(int source = 0) { discovery->round(source, std::stop_token()); }
  std::string metrics() const { return sink.render(); }

  Result<std::vector<Member>> answers[2] = {std::vector<Member>{}, std::vector<Member>{}};
  FakeTargets targets;
  PrometheusSink sink;
  std::shared_ptr<ProbeSink> probe_sink;
  std::unique_ptr<Discovery> discovery;
};

TEST(DiscoveryRounds, TheLiveSetFollowsTheSourceWithoutChurn) {
  Rig rig;
  rig.answers[0] = std::vector<Member>{listed("pg-1", "10.0.0.1", 5432, "primary", false),
                                      listed("pg-2", "10.0.0.2", 5432, "sync_standby")};
  rig.round();
  ASSERT_EQ(rig.targets.targets.size(), 1u) << "the leader is the writer, not a target";
  EXPECT_EQ(rig.targets.targets.at("pg-2").dsn, "host=10.0.0.2 port=5432 application_name=pg-2");
  EXPECT_EQ(rig.targets.targets.at("pg-2").source, "patroni");
  EXPECT_EQ(rig.targets.targets.at("pg-2").role, "sync_standby");
  rig.round();
  EXPECT_EQ(rig.targets.adds, 1) << "a member that stays is not added again";

  // Switchover: pg-2 leads (it stays, shown as primary); pg-1 streams as a replica and joins.
  rig.answers[0] = std::vector<Member>{listed("pg-1", "10.0.0.1", 5432, "replica"),
                                      listed("pg-2", "10.0.0.2", 5432, "primary", false)};
  rig.round();
  EXPECT_EQ(rig.targets.targets.at("pg-2").role, "primary");
  EXPECT_EQ(rig.targets.targets.at("pg-1").role, "replica");
  EXPECT_EQ(rig.targets.removes, 0);

  // pg-1 moves (a rescheduled pod): a new address is a new target under the same name.
  rig.answers[0] = std::vector<Member>{listed("pg-1", "10.0.0.9", 5432), listed("pg-2", "10.0.0.2", 5432, "primary", false)};
  rig.round();
  EXPECT_EQ(rig.targets.targets.at("pg-1").dsn, "host=10.0.0.9 port=5432 application_name=pg-1");
  EXPECT_EQ(rig.targets.removes, 1);

  // pg-1 leaves for good: kept for one round, removed at the second.
  rig.answers[0] = std::vector<Member>{listed("pg-2", "10.0.0.2", 5432, "primary", false)};
  rig.round();
  EXPECT_TRUE(rig.targets.targets.count("pg-1"));
  rig.round();
  EXPECT_FALSE(rig.targets.targets.count("pg-1"));
  EXPECT_NE(rig.metrics().find("ghostwatch_discovery_targets{probe=\"pg\",source=\"patroni\"} 1"), std::string::npos)
      << rig.metrics();
}

TEST(DiscoveryRounds, WithoutAPrimaryTheWriterFollowsTheLeader) {
  Rig rig(1, {}, /*follow_leader=*/true);
  rig.answers[0] = std::vector<Member>{listed("pg-1", "10.0.0.1", 5432, "primary", false),
                                      listed("pg-2", "10.0.0.2", 5432)};
  rig.round();
  rig.round();
  ASSERT_EQ(rig.targets.primaries.size(), 1u) << "given once, not at every round";
  EXPECT_EQ(rig.targets.primaries[0],
            "host=10.0.0.1,10.0.0.2 port=5432,5432 application_name=pg-1 target_session_attrs=read-write");
  // An election under way: no leader listed, the writer stays where it is.
  rig.answers[0] = std::vector<Member>{listed("pg-1", "10.0.0.1", 5432), listed("pg-2", "10.0.0.2", 5432)};
  rig.round();
  EXPECT_EQ(rig.targets.primaries.size(), 1u);
  rig.answers[0] = std::vector<Member>{listed("pg-1", "10.0.0.1", 5432), listed("pg-2", "10.0.0.2", 5432, "primary", false)};
  rig.round();
  ASSERT_EQ(rig.targets.primaries.size(), 2u);
  EXPECT_EQ(rig.targets.primaries[1],
            "host=10.0.0.2,10.0.0.1 port=5432,5432 application_name=pg-2 target_session_attrs=read-write");
}

TEST(DiscoveryRounds, AFailingSourceKeepsItsLastMembersAndCountsErrors) {
  Rig rig;
  rig.answers[0] = std::vector<Member>{listed("pg-2", "10.0.0.2", 5432)};
  rig.round();
  rig.answers[0] = Error{"connection refused"};
  for (int i = 0; i < 5; ++i) rig.round();
  EXPECT_TRUE(rig.targets.targets.count("pg-2")) << "never an empty set from a failure";
  EXPECT_EQ(rig.targets.removes, 0);
  EXPECT_NE(rig.metrics().find("ghostwatch_discovery_errors_total{probe=\"pg\",source=\"patroni\"} 5"), std::string::npos);
  EXPECT_NE(rig.metrics().find("ghostwatch_discovery_targets{probe=\"pg\",source=\"patroni\"} 1"), std::string::npos);
  // Two members of one name in one answer: the round is refused as a whole.
  rig.answers[0] = std::vector<Member>{listed("pg-3", "10.0.0.3", 5432), listed("pg-3", "10.0.0.4", 5432)};
  rig.round();
  EXPECT_FALSE(rig.targets.targets.count("pg-3"));
  EXPECT_TRUE(rig.targets.targets.count("pg-2"));
}

TEST(DiscoveryRounds, NamesTakenByStaticTargetsOrAnotherSourceAreRefused) {
  Rig rig(2, {"replica-1"});
  rig.answers[0] = std::vector<Member>{listed("replica-1", "10.0.0.1", 5432), listed("pg-2", "10.0.0.2", 5432)};
  rig.answers[1] = std::vector<Member>{listed("pg-2", "10.0.0.2", 5432), listed("pg-3", "10.0.0.3", 5432)};
  rig.round(0);
  rig.round(1);
  EXPECT_FALSE(rig.targets.targets.count("replica-1")) << "the static target keeps its name";
  EXPECT_EQ(rig.targets.targets.at("pg-2").source, "patroni") << "listed by both at one address: one target";
  EXPECT_EQ(rig.targets.targets.at("pg-3").source, "file");
  // The file now says pg-2 is elsewhere: the first source's address stands.
  rig.answers[1] = std::vector<Member>{listed("pg-2", "10.0.0.7", 5432), listed("pg-3", "10.0.0.3", 5432)};
  rig.round(1);
  EXPECT_EQ(rig.targets.targets.at("pg-2").dsn, "host=10.0.0.2 port=5432 application_name=pg-2");
  // A target the probe refuses (a DSN it cannot use) is tried again at the next round.
  rig.targets.refuse = "pg-4";
  rig.answers[1] = std::vector<Member>{listed("pg-3", "10.0.0.3", 5432), listed("pg-4", "10.0.0.4", 5432)};
  rig.round(1);
  EXPECT_FALSE(rig.targets.targets.count("pg-4"));
  rig.targets.refuse.clear();
  rig.round(1);
  EXPECT_TRUE(rig.targets.targets.count("pg-4"));
}

TEST(DiscoveryRounds, TheFileSourceReadsTheFileAgainEachRound) {
  const std::string path = "/tmp/ghostwatch-discovery-" + std::to_string(getpid()) + ".yaml";
  auto source = file_source(path);
  EXPECT_FALSE(source->list(std::stop_token())) << "no file yet";
  std::ofstream(path) << "- {name: replica-1, host: 127.0.0.1, port: 5433}\n";
  auto first = source->list(std::stop_token());
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ(first->size(), 1u);
  std::ofstream(path) << R"([{"name": "replica-1", "host": "127.0.0.1", "port": 5433},
                             {"name": "replica-2", "host": "127.0.0.1", "port": 5434}])";
  auto second = source->list(std::stop_token());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->size(), 2u);
  std::ofstream(path) << "- {name: replica-1, host: 127.0.0.1}\n";
  auto broken = source->list(std::stop_token());
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message.find(path + ": item 1: port: missing"), std::string::npos) << broken.error().message;
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ghostwatch::discovery
