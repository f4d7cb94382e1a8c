// The blocking Redis connection of the cache reader and the reconciler against scripted
// servers: what it sends to log in, and how it fails. The real Redis is in the integration suite.
#include <hiredis/hiredis.h>

#include <gtest/gtest.h>

#include "common/redact.h"
#include "probes/cache/redis_link.h"
#include "tests/unit/scripted_server.h"

namespace ghostwatch::cache {
namespace {

using namespace std::chrono_literals;
using ghostwatch::testing::ScriptedServer;

const std::string kAuth = "*2\r\n$4\r\nAUTH\r\n$9\r\ns3cret-pw\r\n";
const std::string kSelect = "*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n";

CacheTargetConfig redis_at(int port) {
  CacheTargetConfig c;
  c.host = "127.0.0.1";
  c.port = port;
  return c;
}

TEST(RedisLink, LogsInAndSelectsTheDatabase) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    if (!s.read_until(fd, kAuth)) return;
    ScriptedServer::send_all(fd, "+OK\r\n");
    if (!s.read_until(fd, kSelect)) return;
    ScriptedServer::send_all(fd, "+OK\r\n");
    ScriptedServer::hold_until_closed(fd);
  });
  auto c = redis_at(server.port());
  c.password = "s3cret-pw";
  c.db = 3;
  RedisLink link(c, 1s, 1s);
  Status s = link.connect();
  ASSERT_TRUE(s.ok()) << s.error().message;
  link.close();
  EXPECT_EQ(server.received(), kAuth + kSelect);
}

TEST(RedisLink, ARefusedPasswordNamesTheServersReasonButNotThePassword) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    if (!s.read_until(fd, kAuth)) return;
    ScriptedServer::send_all(fd, "-WRONGPASS invalid username-password pair\r\n");
    ScriptedServer::hold_until_closed(fd);
  });
  auto c = redis_at(server.port());
  c.password = "s3cret-pw";
  register_secret(*c.password);
  RedisLink link(c, 1s, 1s);
  Status ctx = link.connect();
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.error().message,
            "redis 127.0.0.1:" + std::to_string(server.port()) + ": AUTH failed: WRONGPASS invalid username-password pair");
}

TEST(RedisLink, ADatabaseOutOfRangeIsRefusedAtSelect) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    if (!s.read_until(fd, kSelect)) return;
    ScriptedServer::send_all(fd, "-ERR DB index is out of range\r\n");
    ScriptedServer::hold_until_closed(fd);
  });
  auto c = redis_at(server.port());
  c.db = 3;
  RedisLink link(c, 1s, 1s);
  Status ctx = link.connect();
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.error().message,
            "redis 127.0.0.1:" + std::to_string(server.port()) + ": SELECT failed: ERR DB index is out of range");
}

TEST(RedisLink, ASilentServerFailsAtTheConnectTimeout) {
  ScriptedServer server([](ScriptedServer& s, int fd) { s.read_until(fd, "never sent"); });
  auto c = redis_at(server.port());
  c.password = "s3cret-pw";
  const auto start = std::chrono::steady_clock::now();
  RedisLink link(c, 200ms, 1s);
  Status ctx = link.connect();
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.error().message.rfind("redis 127.0.0.1:" + std::to_string(server.port()) + ": AUTH failed: ", 0), 0u)
      << ctx.error().message;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 10s) << "bounded by the timeout, not by the server";
}

TEST(RedisLink, ARefusedConnectionNamesTheAddress) {
  int port = 0;
  {
    ScriptedServer closed([](ScriptedServer&, int) {});
    port = closed.port();
  }
  RedisLink link(redis_at(port), 1s, 1s);
  Status ctx = link.connect();
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.error().message, "redis 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

}  // namespace
}  // namespace ghostwatch::cache
