// Discovery's members: Patroni's GET /cluster and the file source parsed, names made label values
// and kept unique, and a source's set changing round by round: a member that stays is neither
// added nor removed again, one missing is removed only after remove_after rounds, and one listed
// but down stays.
#include "probes/discovery/members.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace ghostwatch::discovery {
namespace {

// Patroni 3's answer, as `curl http://127.0.0.1:8008/cluster` gives it (trimmed).
constexpr const char* kCluster = R"({"members": [
  {"name": "pg-1", "role": "leader", "state": "running", "api_url": "http://127.0.0.1:8008/patroni",
   "host": "127.0.0.1", "port": 5432, "timeline": 3},
  {"name": "pg-2", "role": "sync_standby", "state": "streaming", "host": "127.0.0.1", "port": 5433,
   "timeline": 3, "lag": 0},
  {"name": "pg 3", "role": "replica", "state": "starting", "host": "10.0.0.3", "port": 5434, "timeline": 3}
], "scope": "demo"})";

Member member(const std::string& name, const std::string& host, int port, const std::string& role = "") {
  Member m;
  m.name = name;
  m.host = host;
  m.port = port;
  m.role = role;
  return m;
}

TEST(Discovery, ReadsPatronisClusterWithRolesAndStates) {
  const auto members = parse_patroni_cluster(kCluster);
  ASSERT_TRUE(members) << members.error().message;
  ASSERT_EQ(members->size(), 3u);
  EXPECT_EQ(members.value()[0].name, "pg-1");
  EXPECT_EQ(members.value()[0].role, "leader");
  EXPECT_EQ(members.value()[1].role, "sync_standby");
  EXPECT_EQ(members.value()[1].port, 5433);
  EXPECT_TRUE(members.value()[1].eligible) << "streaming";
  EXPECT_EQ(members.value()[2].name, "pg_3") << "a label value";
  EXPECT_FALSE(members.value()[2].eligible) << "starting: not yet";
}

// Debian 12's patroni 3.0.2 on the sandbox's etcd, right after `patronictl switchover`: the old
// leader m0 a replica on the new timeline, m2 still catching up on the old one.
constexpr const char* kAfterSwitchover = R"({"members": [{"name": "m0", "role": "replica", "state": "running", "api_url": "http://127.0.0.1:23810/patroni", "host": "127.0.0.1", "port": 23800, "timeline": 2, "lag": 0}, {"name": "m1", "role": "leader", "state": "running", "api_url": "http://127.0.0.1:23811/patroni", "host": "127.0.0.1", "port": 23801, "timeline": 2}, {"name": "m2", "role": "replica", "state": "running", "api_url": "http://127.0.0.1:23812/patroni", "host": "127.0.0.1", "port": 23802, "timeline": 1, "lag": 280}]})";

TEST(Discovery, ReadsPatroni302AfterASwitchover) {
  const auto members = parse_patroni_cluster(kAfterSwitchover);
  ASSERT_TRUE(members) << members.error().message;
  ASSERT_EQ(members->size(), 3u);
  EXPECT_EQ(members.value()[0].role, "replica");
  EXPECT_EQ(members.value()[1].role, "leader");
  EXPECT_EQ(members.value()[1].port, 23801);
  for (const auto& m : members.value()) EXPECT_TRUE(m.eligible) << m.name << ": 3.0.2 says running, not streaming";
}

TEST(Discovery, RefusesAPatroniAnswerWithoutWhatItNeeds) {
  EXPECT_EQ(parse_patroni_cluster("<html>").error().message, "the answer is not JSON");
  EXPECT_EQ(parse_patroni_cluster(R"({"scope": "x"})").error().message, "the answer has no members list");
  EXPECT_EQ(parse_patroni_cluster(R"({"members": [{"name": "a", "host": "h"}]})").error().message,
            "member 1: no port");
  EXPECT_EQ(parse_patroni_cluster(R"({"members": [{"name": "a", "port": 1}]})").error().message, "member 1: no host");
}

TEST(Discovery, ReadsTheFileSourceInYamlOrJson) {
  const auto yaml = parse_member_file("- {name: replica-1, host: 10.0.0.2, port: 5432}\n- name: replica-2\n  host: db2\n  port: 5433\n");
  ASSERT_TRUE(yaml) << yaml.error().message;
  ASSERT_EQ(yaml->size(), 2u);
  EXPECT_EQ(yaml.value()[1].host, "db2");
  EXPECT_EQ(yaml.value()[1].port, 5433);
  const auto json = parse_member_file(R"([{"name": "r1", "host": "10.0.0.2", "port": 5432}])");
  ASSERT_TRUE(json) << json.error().message;
  EXPECT_EQ(json->at(0).name, "r1");
  EXPECT_TRUE(parse_member_file("")->empty()) << "an empty file: no members";
}

TEST(Discovery, AFileErrorNamesTheItemAndKey) {
  EXPECT_EQ(parse_member_file("- {name: a, host: h, port: 70000}").error().message,
            "item 1: port: expected 1-65535, got '70000'");
  EXPECT_EQ(parse_member_file("- {name: a, host: h, port: 1}\n- {name: b, port: 2}").error().message,
            "item 2: host: missing");
  EXPECT_EQ(parse_member_file("name: a").error().message, "expected a list of {name, host, port}");
  EXPECT_EQ(parse_member_file("- {name: a, host: [").error().message.rfind("line 1: ", 0), 0u);
}

TEST(Discovery, NamesAreLabelValuesAndUnique) {
  EXPECT_EQ(label_value("db-2.example:5432"), "db-2.example:5432");
  EXPECT_EQ(label_value("a b/c\"d"), "a_b_c_d");
  EXPECT_EQ(label_value(""), "_");
  EXPECT_EQ(label_value(std::string(100, 'x')).size(), 64u);
  const std::vector<Member> clash{member("a_b", "10.0.0.1", 5432), member("a_b", "10.0.0.2", 5432)};
  EXPECT_EQ(unique_names(clash).error().message, "two members are named 'a_b': 10.0.0.1:5432 and 10.0.0.2:5432");
  EXPECT_TRUE(unique_names({member("a", "h", 1), member("b", "h", 2)}));
}

TEST(Discovery, RendersAMembersDsnFromTheTemplate) {
  const Member m = member("pg-2", "10.0.0.2", 5433);
  EXPECT_EQ(render_dsn("host={host} port={port} dbname=app application_name=gw-{name}", m).value(),
            "host=10.0.0.2 port=5433 dbname=app application_name=gw-pg-2");
  EXPECT_EQ(render_dsn("mysql://ghostwatch@{host}:{port}/", member("r", "fd00::2", 3306)).value(),
            "mysql://ghostwatch@[fd00::2]:3306/");
  EXPECT_EQ(render_dsn("host={host} port={port}", member("r", "fd00::2", 5432)).value(), "host=fd00::2 port=5432");
  EXPECT_EQ(render_dsn("host={hots}", m).error().message,
            "unknown placeholder {hots} (known: {host}, {address}, {port}, {name})");
  EXPECT_EQ(render_dsn("host={host", m).error().message, "'{' without '}'");
  Member srv = member("r1.db.consul", "r1.db.consul", 5432);
  srv.address = "10.0.0.7";  // as the source's DNS server resolved it
  EXPECT_EQ(render_dsn("host={host} hostaddr={address} port={port}", srv).value(),
            "host=r1.db.consul hostaddr=10.0.0.7 port=5432");
  EXPECT_EQ(render_dsn("host={address}", m).value(), "host=10.0.0.2") << "{address} is the host where no other is known";
}

TEST(Discovery, RendersTheWritersDsnLeaderFirstWithEveryMember) {
  const std::vector<Member> all{member("pg-1", "10.0.0.1", 5432), member("pg-2", "10.0.0.2", 5433),
                                member("pg-3", "10.0.0.3", 5434)};
  EXPECT_EQ(render_writer_dsn("host={host} port={port} dbname=app", all[1], all).value(),
            "host=10.0.0.2,10.0.0.1,10.0.0.3 port=5433,5432,5434 dbname=app target_session_attrs=read-write");
  EXPECT_EQ(render_writer_dsn("host={host} port={port} target_session_attrs=primary", all[0], all).value(),
            "host=10.0.0.1,10.0.0.2,10.0.0.3 port=5432,5433,5434 target_session_attrs=primary");
  EXPECT_EQ(render_writer_dsn("postgresql://gw@{host}:{port}/app", all[2], all).value(), "postgresql://gw@10.0.0.3:5434/app")
      << "a URI names the leader alone";
}

std::vector<std::string> names(const std::vector<Member>& members) {
  std::vector<std::string> out;
  for (const auto& m : members) out.push_back(m.name);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Discovery, AMemberThatStaysIsNeitherAddedNorRemovedAgain) {
  MemberSet set(3);
  const Member a = member("a", "h", 1, "replica"), b = member("b", "h", 2, "replica");
  auto first = set.round({a, b});
  EXPECT_EQ(names(first.added), (std::vector<std::string>{"a", "b"}));
  auto second = set.round({a, b});
  EXPECT_TRUE(second.added.empty());
  EXPECT_TRUE(second.changed.empty());
  EXPECT_TRUE(second.removed.empty());
  Member promoted = a;
  promoted.role = "leader";
  auto third = set.round({promoted, b});
  ASSERT_EQ(third.changed.size(), 1u);
  EXPECT_EQ(third.changed[0].role, "leader");
}

TEST(Discovery, AMissingMemberLeavesAfterRemoveAfterRoundsAndOneListedButDownStays) {
  MemberSet set(3);
  const Member a = member("a", "h", 1), b = member("b", "h", 2);
  set.round({a, b});
  EXPECT_TRUE(set.round({a}).removed.empty()) << "missing once";
  EXPECT_TRUE(set.round({a}).removed.empty()) << "missing twice";
  EXPECT_TRUE(set.round({a, b}).removed.empty()) << "back: the count starts over";
  set.round({a});
  set.round({a});
  EXPECT_EQ(set.round({a}).removed, (std::vector<std::string>{"b"})) << "missing three rounds in a row";
  EXPECT_EQ(names(set.members()), (std::vector<std::string>{"a"}));

  Member down = a;
  down.eligible = false;  // Patroni: stopped, but still listed
  EXPECT_TRUE(set.round({down}).removed.empty());
  EXPECT_EQ(names(set.members()), (std::vector<std::string>{"a"}));
  Member starting = member("c", "h", 3, "replica");
  starting.eligible = false;
  EXPECT_TRUE(set.round({down, starting}).added.empty()) << "not running yet: it joins once it is";
}

}  // namespace
}  // namespace ghostwatch::discovery
