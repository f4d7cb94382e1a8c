// The ghostwatch binary's command line without servers: usage, version, config errors.
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;

TEST(Cli, VersionAndHelp) {
  auto v = run_command({ghostwatch_binary(), "version"}, 10s);
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("ghostwatch ", 0), 0u);
  for (const char* cmd : {"run", "probe", "check-config"}) {
    auto h = run_command({ghostwatch_binary(), cmd, "--help"}, 10s);
    EXPECT_EQ(h.exit_code, 0) << cmd;
    EXPECT_NE(h.out.find("--config"), std::string::npos) << cmd;
  }
  auto top = run_command({ghostwatch_binary(), "--help"}, 10s);
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("check-config"), std::string::npos);
}

TEST(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(run_command({ghostwatch_binary()}, 10s).exit_code, 2);
  auto unknown = run_command({ghostwatch_binary(), "frobnicate"}, 10s);
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("unknown command 'frobnicate'"), std::string::npos);
  auto missing = run_command({ghostwatch_binary(), "probe"}, 10s);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("config"), std::string::npos);
  auto bad_output = run_command({ghostwatch_binary(), "probe", "-c", "/dev/null", "-o", "xml"}, 10s);
  EXPECT_EQ(bad_output.exit_code, 2);
  EXPECT_NE(bad_output.err.find("--output must be table or json"), std::string::npos);
  auto both = run_command({ghostwatch_binary(), "probe", "-c", "/dev/null", "-n", "3", "-d", "5s"}, 10s);
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("not both"), std::string::npos);
}

TEST(Cli, ConfigErrorNamesFileLineAndKeyAndExitsTwo) {
  const std::string config = write_temp_file(
      "probes:\n  - name: pg\n    kind: postgres\n    primary: host=x\n    interval: 5 seconds\n    targets:\n"
      "      - {name: r1, dsn: host=y}\n",
      ".yaml");
  for (const char* cmd : {"check-config", "probe", "run"}) {
    auto r = run_command({ghostwatch_binary(), cmd, "--config", config}, 10s);
    EXPECT_EQ(r.exit_code, 2) << cmd;
    EXPECT_NE(r.err.find(config + ":5:15: probes[0].interval: bad duration '5 seconds'"), std::string::npos)
        << cmd << ": " << r.err;
  }
  std::remove(config.c_str());
}

TEST(Cli, ListenPortInUseIsAStartupError) {
  const std::string config = write_temp_file(
      "probes:\n  - name: pg\n    kind: postgres\n    primary: \"host=127.0.0.1 port=1\"\n    targets:\n"
      "      - {name: r1, dsn: \"host=127.0.0.1 port=1\"}\n",
      ".yaml");
  Agent first(config, free_port());
  ASSERT_TRUE(first.alive()) << first.log();
  auto second = run_command(
      {ghostwatch_binary(), "run", "--config", config, "--listen", "127.0.0.1:" + std::to_string(first.port())}, 10s);
  EXPECT_EQ(second.exit_code, 3) << second.err;
  EXPECT_NE(second.err.find("cannot serve /metrics"), std::string::npos) << second.err;
  std::remove(config.c_str());
}

}  // namespace
}  // namespace ghostwatch::testing
