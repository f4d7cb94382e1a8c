#include "agent/config.h"
#include "tests/unit/config_error.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/redact.h"
#include "exporters/sink.h"

namespace ghostwatch {
namespace {

const char* kValid = R"(agent:
  id: demo
  listen: 127.0.0.1:9739
probes:
  - name: pg
    kind: postgres
    primary: "host=127.0.0.1 port=5432 dbname=app user=ghostwatch"
    targets:
      - name: replica-1
        dsn: "host=127.0.0.1 port=5433 dbname=app user=ghostwatch"
    interval: 1s
    poll_interval: 10ms
    timeout: 60s
)";

// Replaces the first occurrence of `from` in the valid config.
std::string valid_with(const std::string& from, const std::string& to) {
  std::string text = kValid;
  const auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return text.replace(pos, from.size(), to);
}

TEST(Config, PredictionIsOnUnlessSwitchedOff) {
  EXPECT_TRUE(parse_config(kValid, "cfg.yaml").probes[0].prediction);
  const Config off = parse_config(valid_with("    timeout: 60s\n", "    timeout: 60s\n    prediction: off\n"), "cfg.yaml");
  EXPECT_FALSE(off.probes[0].prediction);
  EXPECT_NE(render_config(off).find("prediction: off"), std::string::npos);
  EXPECT_NE(error_of(valid_with("    timeout: 60s\n", "    timeout: 60s\n    prediction: maybe\n"))
                .find("probes[0].prediction: 'maybe' is not one of: on, off"),
            std::string::npos);
}

TEST(Config, ValidConfigParsesWithDefaults) {
  Config c = parse_config(kValid, "cfg.yaml");
  EXPECT_EQ(c.agent.id, "demo");
  ASSERT_EQ(c.probes.size(), 1u);
  const ProbeConfig& p = c.probes[0];
  EXPECT_EQ(p.name, "pg");
  EXPECT_EQ(p.schema, "ghostwatch");
  EXPECT_EQ(p.interval, std::chrono::seconds(1));
  EXPECT_EQ(p.poll_interval, std::chrono::milliseconds(10));
  EXPECT_EQ(p.timeout, std::chrono::seconds(60));
  EXPECT_EQ(p.connect_timeout, std::chrono::seconds(5));
  ASSERT_EQ(p.targets.size(), 1u);
  EXPECT_EQ(p.targets[0].name, "replica-1");
}

TEST(Config, AgentIdDefaultsToHostName) {
  Config c = parse_config(valid_with("  id: demo\n", ""), "cfg.yaml");
  EXPECT_FALSE(c.agent.id.empty());
  EXPECT_NE(c.agent.id, "demo");
}

TEST(Config, UnknownKeyNamesFileLineAndKey) {
  EXPECT_EQ(error_of(valid_with("    timeout: 60s\n", "    timeout: 60s\n    intervall: 2s\n")),
            "cfg.yaml:14:5: probes[0].intervall: unknown key 'intervall' (allowed here: name, kind, primary, "
            "targets, discovery, schema, database, interval, poll_interval, idle_poll_interval, prediction, wait, mode, timeout, "
            "connect_timeout, query_timeout, read_paths, read_delays, stale_target, session_settings)");
  EXPECT_NE(error_of(valid_with("agent:\n", "agnet: {}\nagent:\n")).find("cfg.yaml:1:1: agnet: unknown key"),
            std::string::npos);
}

TEST(Config, BadDurationNamesKey) {
  EXPECT_EQ(error_of(valid_with("interval: 1s", "interval: 5x")),
            "cfg.yaml:11:15: probes[0].interval: bad duration '5x' (use a number and a unit: 250us, 5ms, 1s, 2m, 1h)");
  EXPECT_NE(error_of(valid_with("timeout: 60s", "timeout: 60")).find("probes[0].timeout: bad duration '60'"),
            std::string::npos);
}

TEST(Config, DurationsBelowMinimumAreRejected) {
  EXPECT_NE(error_of(valid_with("interval: 1s", "interval: 5ms")).find("probes[0].interval: 5ms is below the minimum of 10ms"),
            std::string::npos);
  EXPECT_NE(error_of(valid_with("poll_interval: 10ms", "poll_interval: 500us")).find("minimum of 1ms"),
            std::string::npos);
  EXPECT_NE(error_of(valid_with("poll_interval: 10ms", "poll_interval: 10ms\n    idle_poll_interval: 5ms"))
                .find("probes[0].idle_poll_interval: idle_poll_interval must be at least poll_interval"),
            std::string::npos);
}

TEST(Config, WrongTypesAreRejected) {
  EXPECT_NE(error_of(valid_with("interval: 1s", "interval: [1s]")).find("cfg.yaml:11:15: probes[0].interval: expected a duration"),
            std::string::npos);
  EXPECT_NE(error_of("probes:\n  - name: pg\n    kind: postgres\n    primary: host=x\n    targets: replica-1\n")
                .find("cfg.yaml:5:14: probes[0].targets: expected a list"),
            std::string::npos);
  EXPECT_NE(error_of("probes: {a: 1}\n").find("cfg.yaml:1:9: probes: expected a list"), std::string::npos);
  EXPECT_NE(error_of(valid_with("name: pg", "name: {x: 1}")).find("probes[0].name: expected a string"),
            std::string::npos);
}

TEST(Config, MissingFieldsAreNamed) {
  EXPECT_NE(error_of(valid_with("    primary: \"host=127.0.0.1 port=5432 dbname=app user=ghostwatch\"\n", ""))
                .find("cfg.yaml:5:5: probes[0]: missing required key 'primary'"),
            std::string::npos);
  EXPECT_NE(error_of(valid_with("        dsn: \"host=127.0.0.1 port=5433 dbname=app user=ghostwatch\"\n", ""))
                .find("probes[0].targets[0]: a target needs exactly one of 'dsn' (a replica), 'redis' or 'memcached'"),
            std::string::npos);
  EXPECT_NE(error_of("agent: {id: x}\n").find("missing required key 'probes'"), std::string::npos);
}

TEST(Config, UnknownKindAndBadNames) {
  EXPECT_NE(error_of(valid_with("kind: postgres", "kind: oracle")).find("probes[0].kind: unknown probe kind 'oracle'"),
            std::string::npos);
  EXPECT_NE(error_of(valid_with("name: replica-1", "name: \"bad name\"")).find("probes[0].targets[0].name: name 'bad name'"),
            std::string::npos);
}

TEST(Config, DuplicateNamesAreRejected) {
  std::string twice = valid_with("    targets:\n", "    targets:\n      - name: replica-1\n        dsn: host=x\n");
  EXPECT_NE(error_of(twice).find("duplicate target name 'replica-1'"), std::string::npos);
}

TEST(Config, BadListenAndLogLevel) {
  EXPECT_NE(error_of(valid_with("127.0.0.1:9739", "localhost")).find("agent.listen: expected host:port"),
            std::string::npos);
  EXPECT_NE(error_of(valid_with("127.0.0.1:9739", "127.0.0.1:99999")).find("agent.listen"), std::string::npos);
  EXPECT_NE(error_of(valid_with("  id: demo\n", "  id: demo\n  log_level: loud\n")).find("agent.log_level"),
            std::string::npos);
}

TEST(Config, SyntaxErrorHasLine) {
  EXPECT_NE(error_of("probes:\n  - name: [unclosed\n").find("cfg.yaml:"), std::string::npos);
  EXPECT_NE(error_of("").find("the config is empty"), std::string::npos);
}

TEST(Config, ExpandsEnvironmentVariablesAndRegistersSecrets) {
  setenv("GW_TEST_PW", "env-secret-123", 1);
  Config c = parse_config(valid_with("user=ghostwatch\"", "user=ghostwatch password=${GW_TEST_PW}\""), "cfg.yaml");
  EXPECT_EQ(c.probes[0].primary.dsn, "host=127.0.0.1 port=5432 dbname=app user=ghostwatch password=env-secret-123");
  EXPECT_EQ(scrub("login failed: env-secret-123"), "login failed: ***");
  EXPECT_EQ(render_config(c).find("env-secret-123"), std::string::npos);
}

TEST(Config, OnlyWholeDollarBraceNamesAreExpanded) {
  setenv("GW_TEST_A", "1", 1);
  setenv("GW_TEST_B", "2", 1);
  auto dsn = [](const std::string& password) {
    return parse_config(valid_with("user=ghostwatch\"", "user=ghostwatch password=" + password + "\""), "cfg.yaml")
        .probes[0]
        .primary.dsn;
  };
  const std::string prefix = "host=127.0.0.1 port=5432 dbname=app user=ghostwatch password=";
  EXPECT_EQ(dsn("${GW_TEST_A}${GW_TEST_B}"), prefix + "12");
  EXPECT_EQ(dsn("x$${GW_TEST_A}y"), prefix + "x$1y");
  EXPECT_EQ(dsn("${1X}-${-}-${GW_TEST_A"), prefix + "${1X}-${-}-${GW_TEST_A") << "not names: kept";
  EXPECT_EQ(dsn("$GW_TEST_A"), prefix + "$GW_TEST_A");
  // A long value, as a reload parses it on an HTTP worker's small stack: no recursion per character.
  const std::string long_value(200000, 'a');
  EXPECT_EQ(dsn("${GW_TEST_A}" + long_value), prefix + "1" + long_value);
}

TEST(Config, UnsetEnvironmentVariableIsAnError) {
  unsetenv("GW_TEST_UNSET");
  EXPECT_NE(error_of(valid_with("user=ghostwatch\"", "password=${GW_TEST_UNSET}\""))
                .find("probes[0].primary: environment variable GW_TEST_UNSET is not set"),
            std::string::npos);
}

TEST(Config, PasswordFileIsReadAndNeverRendered) {
  const auto path = std::filesystem::temp_directory_path() / "ghostwatch-test-password";
  std::ofstream(path) << "file-secret-456\n";
  Config c = parse_config(valid_with("dsn: \"host=127.0.0.1 port=5433 dbname=app user=ghostwatch\"",
                                     "dsn: \"host=127.0.0.1 port=5433\"\n        password_file: " + path.string()),
                          "cfg.yaml");
  ASSERT_TRUE(c.probes[0].targets[0].dsn.password);
  EXPECT_EQ(*c.probes[0].targets[0].dsn.password, "file-secret-456");
  const std::string rendered = render_config(c);
  EXPECT_EQ(rendered.find("file-secret-456"), std::string::npos);
  EXPECT_NE(rendered.find("password_file: " + path.string()), std::string::npos);
  std::filesystem::remove(path);
  EXPECT_NE(error_of(valid_with("dsn: \"host=127.0.0.1 port=5433 dbname=app user=ghostwatch\"",
                                "dsn: host=x\n        password_file: /nonexistent/pw"))
                .find("probes[0].targets[0].password_file: cannot read password file '/nonexistent/pw'"),
            std::string::npos);
}

TEST(Config, PrimaryMayBeAMappingWithPasswordFile) {
  const auto path = std::filesystem::temp_directory_path() / "ghostwatch-test-password2";
  std::ofstream(path) << "primary-secret\n";
  Config c = parse_config(
      valid_with("primary: \"host=127.0.0.1 port=5432 dbname=app user=ghostwatch\"",
                 "primary:\n      dsn: \"host=127.0.0.1\"\n      password_file: " + path.string()),
      "cfg.yaml");
  EXPECT_EQ(c.probes[0].primary.password, "primary-secret");
  std::filesystem::remove(path);
}

TEST(Config, RenderedConfigRedactsAndReparses) {
  Config c = parse_config(valid_with("user=ghostwatch\"", "user=ghostwatch password=inline-pw\""), "cfg.yaml");
  const std::string rendered = render_config(c);
  EXPECT_EQ(rendered.find("inline-pw"), std::string::npos);
  EXPECT_NE(rendered.find("password=***"), std::string::npos);
  Config again = parse_config(rendered, "rendered.yaml");
  EXPECT_EQ(again.probes[0].timeout, c.probes[0].timeout);
  EXPECT_EQ(again.probes[0].targets[0].name, "replica-1");
}

TEST(Config, MissingFileIsAClearError) {
  try {
    load_config("/nonexistent/ghostwatch.yaml");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/ghostwatch.yaml: cannot open the config file");
  }
}

TEST(Config, DsnSyntaxIsCheckedAtLoadWithoutLeakingThePassword) {
  EXPECT_NE(error_of(valid_with("user=ghostwatch\"", "user=ghostwatch password=leak-me-77 oops\""))
                .find("cfg.yaml:7:14: probes[0].primary: bad PostgreSQL DSN: missing \"=\" after \"oops\""),
            std::string::npos);
  EXPECT_EQ(error_of(valid_with("user=ghostwatch\"", "user=ghostwatch password=leak-me-77 oops\"")).find("leak-me-77"),
            std::string::npos);
}

const char* kMysql = R"(probes:
  - name: maria
    kind: mysql
    primary: "mysql://ghostwatch:s%3Acret@127.0.0.1:3306/"
    database: gw
    targets:
      - name: replica
        dsn: "mysql://ghostwatch@127.0.0.1:3307/"
)";

TEST(Config, MysqlProbeTakesUrisAndADatabase) {
  Config c = parse_config(kMysql, "cfg.yaml");
  ASSERT_EQ(c.probes.size(), 1u);
  EXPECT_EQ(c.probes[0].kind, ProbeKind::mysql);
  EXPECT_EQ(c.probes[0].schema, "gw");
  const std::string rendered = render_config(c);
  EXPECT_NE(rendered.find("database: gw"), std::string::npos);
  EXPECT_EQ(rendered.find("s%3Acret"), std::string::npos);
  EXPECT_EQ(scrub("denied for s:cret"), "denied for ***");  // the decoded password is a secret too
}

// The valid config plus read paths (and anything else) appended to the probe.
std::string with_read_paths(const std::string& extra) { return std::string(kValid) + extra; }

TEST(Config, ServerWaitsAreForMysqlProbes) {
  std::string text = kMysql;
  text.replace(text.find("database: gw"), 12, "database: gw\n    wait: server");
  EXPECT_EQ(parse_config(text, "cfg.yaml").probes.at(0).wait, WaitMode::server);
  EXPECT_EQ(parse_config(kMysql, "cfg.yaml").probes.at(0).wait, WaitMode::poll);
  text = kMysql;
  EXPECT_NE(error_of(text.replace(text.find("database: gw"), 12, "database: gw\n    wait: sever")).find("unknown wait mode 'sever'"),
            std::string::npos);
  EXPECT_NE(error_of(with_read_paths("    wait: server\n")).find("probes[0].wait: wait: server needs a mysql probe"),
            std::string::npos);
}

TEST(Config, PositionModeReadsPositionsOnlyAndRefusesWhatNeedsACanary) {
  std::string text = kMysql;
  text.replace(text.find("database: gw"), 12, "database: gw\n    mode: position");
  const Config c = parse_config(text, "cfg.yaml");
  EXPECT_EQ(c.probes.at(0).mode, ProbeMode::position);
  EXPECT_NE(render_config(c).find("mode: position"), std::string::npos);
  EXPECT_EQ(parse_config(kMysql, "cfg.yaml").probes.at(0).mode, ProbeMode::canary);
  text = kMysql;
  EXPECT_NE(error_of(text.replace(text.find("database: gw"), 12, "database: gw\n    mode: positions"))
                .find("probes[0].mode"),
            std::string::npos);
  text = kMysql;
  EXPECT_NE(error_of(text.replace(text.find("database: gw"), 12, "database: gw\n    wait: server\n    mode: position"))
                .find("probes[0].wait: wait: server needs mode: canary"),
            std::string::npos);
  EXPECT_NE(error_of(with_read_paths("    mode: position\n    read_paths:\n      - name: lb\n        dsn: \"host=x user=u\"\n"))
                .find("read paths need mode: canary"),
            std::string::npos);
}

TEST(Config, MysqlProbeRejectsBadUrisAndPostgresKeys) {
  std::string text = kMysql;
  EXPECT_NE(error_of(text.replace(text.find(":3307"), 5, ":0")).find("probes[0].targets[0].dsn: bad MySQL URI: bad port '0'"),
            std::string::npos);
  text = kMysql;
  EXPECT_NE(error_of(text.replace(text.find("database: gw"), 12, "schema: gw")).find("a mysql probe takes 'database', not 'schema'"),
            std::string::npos);
  text = kMysql;
  EXPECT_NE(error_of(text.replace(text.find("mysql://ghostwatch@"), 8, "postgresql://")).find("expected a mysql:// URI"),
            std::string::npos);
}

TEST(Config, ReadPathsOfEveryKindWithDefaultDelays) {
  Config c = parse_config(with_read_paths(R"(    read_paths:
      - name: haproxy
        dsn: "host=127.0.0.1 port=5000 dbname=app user=ghostwatch"
      - name: pooled
        dsn: "host=127.0.0.1 port=6432"
        connection: pool
        pool_size: 3
      - name: replicas-rr
        targets: [replica-1]
        policy: random
      - name: app
        http: "http://127.0.0.1:8080/canary/{agent}/{probe}"
        seq: /seq
)"), "cfg.yaml");
  const ProbeConfig& p = c.probes[0];
  ASSERT_EQ(p.read_paths.size(), 4u);
  EXPECT_EQ(p.read_paths[0].kind, ReadPathConfig::Kind::dsn);
  EXPECT_EQ(p.read_paths[0].connection, ReadPathConfig::Connection::per_read);
  EXPECT_EQ(p.read_paths[1].connection, ReadPathConfig::Connection::pool);
  EXPECT_EQ(p.read_paths[1].pool_size, 3);
  EXPECT_EQ(p.read_paths[2].policy, ReadPathConfig::Policy::random);
  EXPECT_EQ(p.read_paths[3].seq_pointer, "/seq");
  ASSERT_EQ(p.read_delays.size(), 6u);
  EXPECT_EQ(p.read_delays.front().label, "0ms");
  EXPECT_EQ(p.read_delays.back().delay, std::chrono::seconds(1));
  EXPECT_DOUBLE_EQ(p.stale_target, 0.001);
}

TEST(Config, ReadDelaysAreSortedAndKeepTheirText) {
  Config c = parse_config(with_read_paths("    read_paths:\n      - {name: rr, targets: [replica-1]}\n"
                                          "    read_delays: [1s, 0ms, 250ms]\n    stale_target: 0.01\n"),
                          "cfg.yaml");
  const auto& d = c.probes[0].read_delays;
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].label, "0ms");
  EXPECT_EQ(d[1].label, "250ms");
  EXPECT_EQ(d[2].label, "1s");
  EXPECT_DOUBLE_EQ(c.probes[0].stale_target, 0.01);
}

TEST(Config, BadReadPathsAreNamed) {
  auto err = [](const std::string& paths) { return error_of(with_read_paths("    read_paths:\n" + paths)); };
  EXPECT_NE(err("      - {name: x}\n").find("probes[0].read_paths[0]: a read path needs exactly one of 'dsn', 'targets' or 'http'"),
            std::string::npos);
  EXPECT_NE(err("      - {name: x, targets: [replica-9]}\n").find("probes[0].read_paths[0].targets[0]: 'replica-9' is not a target"),
            std::string::npos);
  EXPECT_NE(err("      - {name: x, http: \"http://a/{seq}\"}\n").find("exactly one of 'seq'"), std::string::npos);
  EXPECT_NE(err("      - {name: x, http: \"ftp://a\", seq: /s}\n").find("read_paths[0].http: expected an http:// or https://"),
            std::string::npos);
  EXPECT_NE(err("      - {name: x, http: \"http://a\", seq: nope}\n").find("bad JSON pointer 'nope'"), std::string::npos);
  EXPECT_NE(err("      - {name: x, http: \"http://a\", seq_regex: \"[0-9]+\"}\n").find("needs a group"), std::string::npos);
  EXPECT_NE(err("      - {name: x, http: \"http://a\", seq_regex: \"(\"}\n").find("bad regular expression"), std::string::npos);
  EXPECT_NE(err("      - {name: x, dsn: \"host=a\", connection: sometimes}\n").find("'sometimes' is not one of: per_read, pool"),
            std::string::npos);
  EXPECT_NE(err("      - {name: x, dsn: \"host=a\", pool_size: 4}\n").find("'pool_size' goes with 'connection: pool'"),
            std::string::npos);
  EXPECT_NE(err("      - {name: x, dsn: \"host=a\", connection: pool, pool_size: 0}\n").find("0 is outside 1..64"),
            std::string::npos);
  EXPECT_NE(err("      - {name: x, targets: [replica-1], policy: fifo}\n").find("not one of: round_robin, random"),
            std::string::npos);
  EXPECT_NE(err("      - {name: x, targets: [replica-1]}\n      - {name: x, targets: [replica-1]}\n")
                .find("duplicate read path name 'x'"),
            std::string::npos);
  EXPECT_NE(error_of(with_read_paths("    read_paths:\n      - {name: x, targets: [replica-1]}\n    read_delays: [0ms, 0s]\n"))
                .find("delay 0s is listed twice"),
            std::string::npos);
  EXPECT_NE(error_of(with_read_paths("    read_paths:\n      - {name: x, targets: [replica-1]}\n    stale_target: 2\n"))
                .find("expected a ratio between 0 and 1"),
            std::string::npos);
  EXPECT_NE(error_of(with_read_paths("    read_delays: [0ms]\n")).find("'read_delays' goes with 'read_paths'"),
            std::string::npos);
}

TEST(Config, SessionPathsAndSessionSettings) {
  Config c = parse_config(with_read_paths(R"(    session_settings:
      synchronous_commit: remote_apply
    read_paths:
      - name: pgpool
        dsn: "host=127.0.0.1 port=6432"
        session: true
      - name: pooled
        dsn: "host=127.0.0.1 port=6432"
        session: true
        connection: pool
        pool_size: 2
)"), "cfg.yaml");
  const ProbeConfig& p = c.probes[0];
  EXPECT_EQ(p.session_settings, (std::map<std::string, std::string>{{"synchronous_commit", "remote_apply"}}));
  EXPECT_TRUE(p.read_paths[0].session);
  EXPECT_EQ(p.read_paths[1].connection, ReadPathConfig::Connection::pool);
  // Rendered and parsed again: the same settings.
  const Config again = parse_config(render_config(c), "rendered.yaml");
  EXPECT_EQ(again.probes[0].session_settings, p.session_settings);
  EXPECT_TRUE(again.probes[0].read_paths[1].session);
  EXPECT_EQ(session_key("pg", "pgpool"), "pg/pgpool");
  // YAML's bare on is the word PostgreSQL knows, not a boolean.
  EXPECT_EQ(parse_config(with_read_paths("    session_settings: {synchronous_commit: on}\n"), "cfg.yaml")
                .probes[0].session_settings.at("synchronous_commit"),
            "on");
}

TEST(Config, BadSessionSettingsAndSessionPathsAreNamed) {
  auto err = [](const std::string& extra) { return error_of(with_read_paths(extra)); };
  EXPECT_NE(err("    session_settings: {work_mem: 1GB}\n")
                .find("probes[0].session_settings.work_mem: 'work_mem' is not a session setting a postgres probe may set "
                      "(allowed: synchronous_commit)"),
            std::string::npos);
  EXPECT_NE(err("    session_settings: {synchronous_commit: sometimes}\n")
                .find("session_settings.synchronous_commit: 'sometimes' is not a value of synchronous_commit (known: off, "
                      "local, remote_write, on, remote_apply)"),
            std::string::npos);
  EXPECT_NE(err("    session_settings: [synchronous_commit]\n").find("expected a mapping"), std::string::npos);
  EXPECT_NE(err("    read_paths:\n      - {name: x, targets: [replica-1], session: true}\n")
                .find("read_paths[0].session: 'session' goes with 'dsn'"),
            std::string::npos);
  EXPECT_NE(err("    read_paths:\n      - {name: x, dsn: \"host=a\", session: yes please}\n")
                .find("read_paths[0].session: expected true or false"),
            std::string::npos);
}

TEST(Config, MysqlSessionSettingsAreGalerasAndGroupReplications) {
  const std::string mysql = R"(agent:
  id: demo
probes:
  - name: m
    kind: mysql
    primary: "mysql://u@127.0.0.1:3306/"
    targets:
      - {name: r, dsn: "mysql://u@127.0.0.1:3307/"}
)";
  Config c = parse_config(mysql + "    session_settings: {wsrep_sync_wait: 3, group_replication_consistency: after}\n", "cfg.yaml");
  EXPECT_EQ(c.probes[0].session_settings.at("wsrep_sync_wait"), "3");
  EXPECT_EQ(c.probes[0].session_settings.at("group_replication_consistency"), "AFTER");
  EXPECT_NE(error_of(mysql + "    session_settings: {wsrep_sync_wait: 16}\n").find("16 is outside 0..15"), std::string::npos);
  EXPECT_NE(error_of(mysql + "    session_settings: {synchronous_commit: on}\n")
                .find("not a session setting a mysql probe may set (allowed: wsrep_sync_wait, group_replication_consistency)"),
            std::string::npos);
}

TEST(Config, CacheTargetsBesideReplicas) {
  setenv("GW_TEST_REDIS_PW", "redis-secret-31", 1);
  Config c = parse_config(valid_with("    targets:\n", R"(    targets:
      - name: redis-cache
        redis: "127.0.0.1:6379"
        key: "canary:{agent}:{probe}"
        format: json
        field: /seq
        mode: invalidate
        db: 2
        password: "${GW_TEST_REDIS_PW}"
      - name: mc
        memcached: "127.0.0.1:11211"
        key: "canary-{probe}"
)"), "cfg.yaml");
  const auto& t = c.probes[0].targets;
  ASSERT_EQ(t.size(), 3u);
  ASSERT_TRUE(t[0].cache);
  EXPECT_EQ(t[0].cache->kind, CacheTargetConfig::Kind::redis);
  EXPECT_EQ(t[0].cache->port, 6379);
  EXPECT_EQ(t[0].cache->format, CacheTargetConfig::Format::json);
  EXPECT_EQ(t[0].cache->mode, CacheTargetConfig::Mode::invalidate);
  EXPECT_EQ(t[0].cache->db, 2);
  EXPECT_EQ(t[1].cache->kind, CacheTargetConfig::Kind::memcached);
  EXPECT_EQ(t[1].cache->format, CacheTargetConfig::Format::plain);
  EXPECT_FALSE(t[2].cache);
  const std::string rendered = render_config(c);
  EXPECT_EQ(rendered.find("redis-secret-31"), std::string::npos);
  EXPECT_NE(rendered.find("memcached: 127.0.0.1:11211"), std::string::npos);
  EXPECT_NO_THROW(parse_config(rendered, "rendered.yaml"));
}

TEST(Config, BadCacheTargetsAreNamed) {
  auto err = [](const std::string& target) {
    return error_of(valid_with("    targets:\n", "    targets:\n      - name: c\n" + target));
  };
  EXPECT_NE(err("        redis: \"localhost\"\n        key: k\n").find("targets[0].redis: expected host:port"), std::string::npos);
  EXPECT_NE(err("        redis: \"h:1\"\n").find("missing required key 'key'"), std::string::npos);
  EXPECT_NE(err("        memcached: \"h:1\"\n        key: k\n        format: hash\n        field: f\n").find("hash is a Redis format"),
            std::string::npos);
  EXPECT_NE(err("        redis: \"h:1\"\n        key: k\n        format: json\n").find("missing required key 'field'"),
            std::string::npos);
  EXPECT_NE(err("        redis: \"h:1\"\n        key: k\n        field: /x\n").find("'field' goes with format json"),
            std::string::npos);
  EXPECT_NE(err("        redis: \"h:1\"\n        key: k\n        mode: sometimes\n").find("not one of: update, invalidate"),
            std::string::npos);
  EXPECT_NE(err("        memcached: \"h:1\"\n        key: k\n        db: 1\n").find("'db' goes with redis"), std::string::npos);
  EXPECT_NE(err("        dsn: \"host=x\"\n        key: k\n").find("'key' goes with a cache target"), std::string::npos);
  EXPECT_NE(err("        dsn: \"host=x\"\n        redis: \"h:1\"\n").find("exactly one of 'dsn'"), std::string::npos);
  EXPECT_NE(error_of(valid_with("    targets:\n", "    targets:\n      - {name: c, redis: \"h:1\", key: k}\n") +
                     "    read_paths:\n      - {name: r, targets: [c]}\n")
                .find("'c' is a cache; read paths read databases"),
            std::string::npos);
}

TEST(Config, OnlyRegularFilesAreReadSoNoPathCanHangOrExhaustMemory) {
  // /dev/zero never ends a line; a FIFO would block: both are refused by name.
  const std::string e = error_of(
      "probes:\n  - name: pg\n    kind: postgres\n    primary: {dsn: \"host=x\", password_file: /dev/zero}\n"
      "    targets: [{name: r, dsn: \"host=y\"}]\n");
  EXPECT_NE(e.find("probes[0].primary.password_file: password file: '/dev/zero' is not a regular file"), std::string::npos) << e;
  try {
    load_config("/dev/zero");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find("is not a regular file"), std::string::npos) << err.what();
  }
}

// The issue's example, with the sources this version has, instead of static targets.
const char* kDiscovering = R"(agent:
  id: demo
probes:
  - name: pg
    kind: postgres
    primary: "host=127.0.0.1 port=5432 dbname=app user=ghostwatch"
    discovery:
      dsn_template: "host={host} port={port} dbname=app user=ghostwatch password=tmpl-secret-1"
      remove_after: 2
      patroni: {urls: ["http://10.0.0.1:8008/", "https://10.0.0.2:8008"], interval: 5s, ca_file: /etc/ca.pem}
      from_primary: {interval: 10s, ports: {replica-2: 5433}}
      dns: {srv: _postgresql._tcp.pg.example, server: "127.0.0.1:8600", interval: 2s}
      file: {path: /etc/ghostwatch/targets/pg.yaml}
)";

TEST(Config, DiscoveryTakesTheIssuesShapeAndNeedsNoStaticTargets) {
  Config c = parse_config(kDiscovering, "cfg.yaml");
  const ProbeConfig& p = c.probes.at(0);
  EXPECT_TRUE(p.targets.empty());
  ASSERT_TRUE(p.discovery);
  EXPECT_EQ(p.discovery->remove_after, 2);
  ASSERT_EQ(p.discovery->sources.size(), 4u);
  const DiscoverySourceConfig& patroni = p.discovery->sources[0];
  EXPECT_EQ(patroni.kind, DiscoverySourceConfig::Kind::patroni);
  EXPECT_EQ(patroni.urls, (std::vector<std::string>{"http://10.0.0.1:8008", "https://10.0.0.2:8008"}));
  EXPECT_EQ(patroni.interval, std::chrono::seconds(5));
  const DiscoverySourceConfig& from_primary = p.discovery->sources[1];
  EXPECT_EQ(from_primary.port, 5432) << "PostgreSQL's default";
  EXPECT_EQ(from_primary.ports.at("replica-2"), 5433);
  EXPECT_EQ(p.discovery->sources[2].srv, "_postgresql._tcp.pg.example");
  EXPECT_EQ(p.discovery->sources[2].server, "127.0.0.1:8600");
  EXPECT_EQ(p.discovery->sources[3].interval, std::chrono::seconds(10)) << "the default";
  const std::string rendered = render_config(c);
  EXPECT_EQ(rendered.find("tmpl-secret-1"), std::string::npos) << rendered;
  // What /config shows parses again to the same sources.
  const Config again = parse_config(rendered, "rendered");
  EXPECT_EQ(again.probes.at(0).discovery->sources, p.discovery->sources) << rendered;
}

const char* kDnsLine = "      dns: {srv: _postgresql._tcp.pg.example, server: \"127.0.0.1:8600\", interval: 2s}\n";

TEST(Config, DiscoveryErrorsNameTheField) {
  auto with = [](const std::string& from, const std::string& to) {
    std::string text = kDiscovering;
    return text.replace(text.find(from), from.size(), to);
  };
  EXPECT_NE(error_of(with("      dsn_template:", "      dsn_templat:")).find("probes[0].discovery.dsn_templat: unknown key"),
            std::string::npos);
  EXPECT_NE(error_of(with("{host}", "h")).find("the template needs {host} (or {address})"), std::string::npos);
  EXPECT_NE(error_of(with("\"http://10.0.0.1:8008/\"", "\"10.0.0.1:8008\"")).find("probes[0].discovery.patroni.urls[0]: "
                                                                                  "'10.0.0.1:8008' is not an http"),
            std::string::npos);
  EXPECT_NE(error_of(with("remove_after: 2", "remove_after: 0")).find("probes[0].discovery.remove_after"),
            std::string::npos);
  EXPECT_NE(error_of(with(kDnsLine,
                          "      dns: {name: pg.example, srv: _pg._tcp.example}\n"))
                .find("probes[0].discovery.dns: name either 'name'"),
            std::string::npos);
  EXPECT_NE(error_of(with(kDnsLine,
                          "      dns: {srv: _pg._tcp.example, port: 5432}\n"))
                .find("probes[0].discovery.dns.port: SRV records carry their own ports"),
            std::string::npos);
  EXPECT_NE(error_of(with(kDnsLine,
                          "      dns: {name: pg.example, server: consul.local}\n"))
                .find("probes[0].discovery.dns.server: expected an IP address and port"),
            std::string::npos);
  const std::string mysql = with("kind: postgres\n    primary: \"host=127.0.0.1 port=5432 dbname=app user=ghostwatch\"",
                                 "kind: mysql\n    primary: \"mysql://ghostwatch@127.0.0.1:3306/app\"");
  EXPECT_NE(error_of(mysql).find("probes[0].discovery.patroni: Patroni runs PostgreSQL"), std::string::npos)
      << error_of(mysql);
  const std::string no_source = "    discovery:\n      dsn_template: \"host={host}\"\n";
  std::string text = kValid;
  text.replace(text.find("    targets:\n"), 0, no_source);
  EXPECT_NE(error_of(text).find("name at least one source"), std::string::npos) << error_of(text);
  EXPECT_NE(error_of(with("      from_primary: {interval: 10s, ports: {replica-2: 5433}}\n", "      from_primary: 3\n"))
                .find("probes[0].discovery.from_primary: expected a mapping"),
            std::string::npos);
}

}  // namespace
}  // namespace ghostwatch

namespace ghostwatch {
namespace {

// A CA, and a client certificate and key it signed, made by the openssl CLI in a temporary
// directory; `other.key` is a key that matches nothing.
class CacheTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() / ("gw-tls-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    const std::string d = dir_.string();
    const std::string script =
        "cd " + d + " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ca -keyout ca.key -out ca.crt"
        " && openssl req -newkey rsa:2048 -nodes -subj /CN=c -keyout c.key -out c.csr"
        " && openssl x509 -req -in c.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out c.crt"
        " && openssl genpkey -algorithm RSA -out other.key";
    ASSERT_EQ(std::system((script + " >/dev/null 2>&1").c_str()), 0) << "openssl could not make test certificates";
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  static std::string file(const std::string& name) { return (dir_ / name).string(); }
  static std::string config_with_tls(const std::string& tls) {
    return valid_with("        dsn: \"host=127.0.0.1 port=5433 dbname=app user=ghostwatch\"\n",
                      "        dsn: \"host=127.0.0.1 port=5433 dbname=app user=ghostwatch\"\n"
                      "      - name: cache\n        redis: 127.0.0.1:6380\n        key: k\n        tls: " + tls + "\n");
  }
  static inline std::filesystem::path dir_;
};

TEST_F(CacheTls, ACacheTargetTakesItsTlsFiles) {
  Config c = parse_config(config_with_tls("{ca_file: " + file("ca.crt") + ", cert_file: " + file("c.crt") +
                                          ", key_file: " + file("c.key") + ", server_name: cache.example}"),
                          "cfg.yaml");
  const auto& tls = c.probes[0].targets[1].cache->tls;
  ASSERT_TRUE(tls.has_value());
  EXPECT_EQ(tls->ca_file, file("ca.crt"));
  EXPECT_EQ(tls->server_name, "cache.example");
  EXPECT_NE(render_config(c).find("server_name: cache.example"), std::string::npos);
  Config system_cas = parse_config(config_with_tls("{}"), "cfg.yaml");
  ASSERT_TRUE(system_cas.probes[0].targets[1].cache->tls.has_value());
  EXPECT_TRUE(system_cas.probes[0].targets[1].cache->tls->ca_file.empty());
}

TEST_F(CacheTls, BadTlsFilesAreConfigErrorsThatNameTheKeyAndTheFile) {
  EXPECT_EQ(error_of(config_with_tls("{cert_file: " + file("c.crt") + "}")),
            "cfg.yaml:14:26: probes[0].targets[1].tls.cert_file: cert_file and key_file go together");
  EXPECT_EQ(error_of(config_with_tls("{ca_file: " + file("missing.crt") + "}")),
            "cfg.yaml:14:24: probes[0].targets[1].tls.ca_file: cannot read '" + file("missing.crt") +
                "': No such file or directory");
  EXPECT_EQ(error_of(config_with_tls("{ca_file: " + file("c.key") + "}")),
            "cfg.yaml:14:24: probes[0].targets[1].tls.ca_file: '" + file("c.key") + "' holds no PEM certificate");
  EXPECT_EQ(error_of(config_with_tls("{cert_file: " + file("c.crt") + ", key_file: " + file("other.key") + "}")),
            "cfg.yaml:14:" + std::to_string(38 + file("c.crt").size()) + ": probes[0].targets[1].tls.key_file: '" +
                file("other.key") + "' does not match the certificate '" + file("c.crt") + "'");
  EXPECT_NE(error_of(config_with_tls("{ca_fil: x}")).find("unknown key 'ca_fil'"), std::string::npos);
}

TEST(Config, UnverifiedTlsIsAWarningNamingWhere) {
  Config c = parse_config(valid_with("port=5433 dbname=app user=ghostwatch\"", "port=5433 dbname=app user=ghostwatch sslmode=require\""),
                          "cfg.yaml");
  EXPECT_EQ(tls_warnings(c),
            std::vector<std::string>{"probes[0].targets[0].dsn: sslmode=require encrypts but does not verify the server "
                                     "(add sslrootcert=CA-FILE and sslmode=verify-full)"});
  Config verified = parse_config(
      valid_with("port=5433 dbname=app user=ghostwatch\"", "port=5433 dbname=app user=ghostwatch sslmode=require sslrootcert=/dev/null\""),
      "cfg.yaml");
  EXPECT_TRUE(tls_warnings(verified).empty()) << "with a CA, require verifies the chain";
  Config missing = parse_config(
      valid_with("port=5433 dbname=app user=ghostwatch\"", "port=5433 dbname=app user=ghostwatch sslkey=/nonexistent/k\""),
      "cfg.yaml");
  EXPECT_EQ(tls_warnings(missing),
            std::vector<std::string>{"probes[0].targets[0].dsn: sslkey '/nonexistent/k' cannot be read by this user: No "
                                     "such file or directory (the connection will fail)"});
}

}  // namespace
}  // namespace ghostwatch
