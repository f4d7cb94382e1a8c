// The event loop's cache readers against scripted servers on loopback: what they send, how they
// parse replies that arrive in pieces, and what they make of errors, silence and closed sockets.
// The real Redis and memcached are in the integration and fault suites.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <thread>

#include "common/redact.h"
#include "probes/cache/cache_reader.h"
#include "tests/unit/scripted_server.h"

namespace ghostwatch::cache {
namespace {

using namespace std::chrono_literals;
using ghostwatch::testing::ScriptedServer;

// Runs one poll as the event loop would: waits for what each step asks, expires at its deadline.
Result<CanaryPoll> run_poll(AsyncCanaryReader& reader) {
  PollStep step = reader.begin();
  while (!step.result) {
    pollfd p{step.fd, static_cast<short>((step.read ? POLLIN : 0) | (step.write ? POLLOUT : 0)), 0};
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(step.deadline - std::chrono::steady_clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count()))) == 0) return reader.expire();
    step = reader.advance();
  }
  return *step.result;
}

CacheTargetConfig cache_at(CacheTargetConfig::Kind kind, int port) {
  CacheTargetConfig c;
  c.kind = kind;
  c.host = "127.0.0.1";
  c.port = port;
  c.key = "canary:{agent}:{probe}";
  return c;
}

ProbeConfig probe_with_timeouts() {
  ProbeConfig p;
  p.name = "pg";
  p.connect_timeout = 500ms;
  p.query_timeout = 200ms;
  return p;
}

std::unique_ptr<AsyncCanaryReader> reader_for(const CacheTargetConfig& c) {
  auto reader = make_async_cache_reader(c, "web-1", probe_with_timeouts());
  EXPECT_NE(reader, nullptr);
  return reader;
}

const std::string kGet = "*2\r\n$3\r\nGET\r\n$15\r\ncanary:web-1:pg\r\n";

TEST(AsyncRedisReader, SendsAuthAndSelectOnceAndParsesAReplyInPieces) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    if (!s.read_until(fd, kGet)) return;
    ScriptedServer::send_in_pieces(fd, "+OK\r\n+OK\r\n$2\r\n42\r\n");
    while (s.read_until(fd, kGet)) ScriptedServer::send_in_pieces(fd, "$2\r\n43\r\n");
  });
  auto c = cache_at(CacheTargetConfig::Kind::redis, server.port());
  c.password = "s3cret-pw";
  c.db = 3;
  auto reader = reader_for(c);
  auto first = run_poll(*reader);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first.value().seq, 42);
  auto second = run_poll(*reader);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second.value().seq, 43);
  EXPECT_EQ(server.connections(), 1) << "the connection is kept between polls";
  EXPECT_EQ(server.received(), "*2\r\n$4\r\nAUTH\r\n$9\r\ns3cret-pw\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n" + kGet + kGet);
}

TEST(AsyncRedisReader, AMissingKeyIsNoSeqAndForAnInvalidatedCacheEverythingSeen) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    while (s.read_until(fd, kGet)) ScriptedServer::send_all(fd, "$-1\r\n");
  });
  auto c = cache_at(CacheTargetConfig::Kind::redis, server.port());
  auto missing = run_poll(*reader_for(c));
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing.value().seq);
  EXPECT_FALSE(missing.value().everything_acked_before_sent);
  c.mode = CacheTargetConfig::Mode::invalidate;
  auto gone = run_poll(*reader_for(c));
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone.value().everything_acked_before_sent);
}

TEST(AsyncRedisReader, AHashFieldIsReadWithHget) {
  const std::string hget = "*3\r\n$4\r\nHGET\r\n$15\r\ncanary:web-1:pg\r\n$3\r\nseq\r\n";
  ScriptedServer server([&](ScriptedServer& s, int fd) {
    while (s.read_until(fd, hget)) ScriptedServer::send_all(fd, "$1\r\n7\r\n");
  });
  auto c = cache_at(CacheTargetConfig::Kind::redis, server.port());
  c.format = CacheTargetConfig::Format::hash;
  c.field = "seq";
  auto r = run_poll(*reader_for(c));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().seq, 7);
}

TEST(AsyncRedisReader, ARefusedPasswordIsAnErrorWithoutItAndTheNextPollConnectsAgain) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    if (!s.read_until(fd, kGet)) return;
    const std::string_view reply = "-WRONGPASS invalid username-password pair\r\n-NOAUTH Authentication required.\r\n";
    ScriptedServer::send_all(fd, reply);
    ScriptedServer::hold_until_closed(fd);
  });
  auto c = cache_at(CacheTargetConfig::Kind::redis, server.port());
  c.password = "s3cret-pw";
  register_secret(*c.password);
  auto reader = reader_for(c);
  auto r = run_poll(*reader);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "redis 127.0.0.1:" + std::to_string(server.port()) +
                                   ": AUTH failed: WRONGPASS invalid username-password pair");
  EXPECT_FALSE(reader->connected());
  EXPECT_FALSE(run_poll(*reader).ok());
  EXPECT_EQ(server.connections(), 2);
}

TEST(AsyncRedisReader, AnErrorReplyIsAPollErrorAndGarbageEndsTheConnection) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    if (!s.read_until(fd, kGet)) return;
    ScriptedServer::send_all(fd, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    if (!s.read_until(fd, kGet)) return;
    ScriptedServer::send_all(fd, "?what\r\n");
    ScriptedServer::hold_until_closed(fd);
  });
  auto reader = reader_for(cache_at(CacheTargetConfig::Kind::redis, server.port()));
  auto wrong_type = run_poll(*reader);
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_NE(wrong_type.error().message.find("WRONGTYPE"), std::string::npos) << wrong_type.error().message;
  EXPECT_TRUE(reader->connected()) << "a whole error reply leaves the connection usable";
  auto garbage = run_poll(*reader);
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.error().message.find("protocol error"), std::string::npos) << garbage.error().message;
  EXPECT_FALSE(reader->connected());
}

TEST(AsyncRedisReader, ASilentServerTimesOutAtTheQueryTimeout) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    s.read_until(fd, "never sent");
  });
  auto reader = reader_for(cache_at(CacheTargetConfig::Kind::redis, server.port()));
  const auto start = std::chrono::steady_clock::now();
  auto r = run_poll(*reader);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("query timed out after 200ms"), std::string::npos) << r.error().message;
  EXPECT_GE(took, 200ms);
  EXPECT_FALSE(reader->connected());
}

TEST(AsyncRedisReader, ARefusedConnectionNamesTheAddress) {
  int port = 0;
  {
    ScriptedServer closed([](ScriptedServer&, int) {});
    port = closed.port();
  }  // nothing listens there any more
  auto r = run_poll(*reader_for(cache_at(CacheTargetConfig::Kind::redis, port)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "redis 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST(AsyncRedisReader, AServerClosingBetweenPollsIsNoticedAndTheNextPollReconnects) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    if (s.read_until(fd, kGet)) ScriptedServer::send_all(fd, "$1\r\n5\r\n");
  });  // one answer per connection, then close
  auto reader = reader_for(cache_at(CacheTargetConfig::Kind::redis, server.port()));
  ASSERT_TRUE(run_poll(*reader).ok());
  pollfd p{reader->socket(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1) << "the close shows on the idle socket";
  reader->drain();
  EXPECT_FALSE(reader->connected());
  auto again = run_poll(*reader);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again.value().seq, 5);
  EXPECT_EQ(server.connections(), 2);
}

const std::string kMemcachedGet = "get canary:web-1:pg\r\n";

TEST(AsyncMemcachedReader, ParsesValuesInPiecesAndAMiss) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    if (!s.read_until(fd, kMemcachedGet)) return;
    ScriptedServer::send_in_pieces(fd, "VALUE canary:web-1:pg 0 2\r\n42\r\nEND\r\n");
    if (!s.read_until(fd, kMemcachedGet)) return;
    ScriptedServer::send_all(fd, "VALUE canary:web-1:pg 0 4 99\r\n\r\n43\r\nEND\r\n");  // with a cas field
    if (!s.read_until(fd, kMemcachedGet)) return;
    ScriptedServer::send_all(fd, "END\r\n");
    ScriptedServer::hold_until_closed(fd);
  });
  auto reader = reader_for(cache_at(CacheTargetConfig::Kind::memcached, server.port()));
  auto first = run_poll(*reader);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first.value().seq, 42);
  auto second = run_poll(*reader);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second.value().seq, 43) << "the value's own CRLF is data";
  auto miss = run_poll(*reader);
  ASSERT_TRUE(miss.ok()) << miss.error().message;
  EXPECT_FALSE(miss.value().seq);
  EXPECT_EQ(server.connections(), 1);
}

TEST(AsyncMemcachedReader, ServerErrorsAndGarbageAreErrorsWithTheReason) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    if (!s.read_until(fd, kMemcachedGet)) return;
    const std::string_view reply = s.connections() == 1 ? "SERVER_ERROR out of memory\r\n" : "HTTP/1.1 400 Bad Request\r\n";
    ScriptedServer::send_all(fd, reply);
    ScriptedServer::hold_until_closed(fd);
  });
  auto reader = reader_for(cache_at(CacheTargetConfig::Kind::memcached, server.port()));
  auto server_error = run_poll(*reader);
  ASSERT_FALSE(server_error.ok());
  EXPECT_EQ(server_error.error().message, "memcached 127.0.0.1:" + std::to_string(server.port()) + ": SERVER_ERROR out of memory");
  auto garbage = run_poll(*reader);
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.error().message.find("unexpected reply 'HTTP/1.1 400"), std::string::npos) << garbage.error().message;
}

TEST(AsyncMemcachedReader, AValueLineWithoutItsLengthIsAnError) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    while (s.read_until(fd, kMemcachedGet)) {
      ScriptedServer::send_all(fd, s.connections() == 1 ? "VALUE canary:web-1:pg 0\r\n" : "VALUE canary:web-1:pg 0 x2\r\n");
    }
  });
  auto reader = reader_for(cache_at(CacheTargetConfig::Kind::memcached, server.port()));
  for (const std::string line : {"VALUE canary:web-1:pg 0'", "VALUE canary:web-1:pg 0 x2'"}) {
    auto r = run_poll(*reader);
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_NE(r.error().message.find("bad VALUE line '" + line), std::string::npos) << r.error().message;
  }
}

TEST(AsyncMemcachedReader, AnUnparseableValueIsAnErrorNamingTheKey) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    while (s.read_until(fd, kMemcachedGet)) ScriptedServer::send_all(fd, "VALUE canary:web-1:pg 0 3\r\nabc\r\nEND\r\n");
  });
  auto r = run_poll(*reader_for(cache_at(CacheTargetConfig::Kind::memcached, server.port())));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "key canary:web-1:pg: unparseable value 'abc': not an integer");
}

TEST(AsyncCacheReader, AHostNameIsLookedUpAndEachAddressTriedInTurn) {
  ScriptedServer server([](ScriptedServer& s, int fd) {
    while (s.read_until(fd, kGet)) ScriptedServer::send_all(fd, "$2\r\n11\r\n");
  });  // on 127.0.0.1 only: "localhost" may give ::1 first, which refuses
  auto c = cache_at(CacheTargetConfig::Kind::redis, server.port());
  c.host = "localhost";
  auto reader = reader_for(c);
  auto r = run_poll(*reader);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().seq, 11);
  c.host = "no-such-host.invalid";
  ProbeConfig patient = probe_with_timeouts();
  patient.connect_timeout = 30s;  // however slow this machine's resolver is to say no
  auto unknown = run_poll(*make_async_cache_reader(c, "web-1", patient));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("could not translate host name \"no-such-host.invalid\""), std::string::npos)
      << unknown.error().message;
}

TEST(AsyncCacheReader, KeysMemcachedsTextProtocolCannotCarryStayWithLibmemcached) {
  auto spaced = cache_at(CacheTargetConfig::Kind::memcached, 11211);
  spaced.key = "canary {agent}";
  EXPECT_EQ(make_async_cache_reader(spaced, "web-1", probe_with_timeouts()), nullptr);
  auto v6 = cache_at(CacheTargetConfig::Kind::memcached, 11211);
  v6.host = "::1";
  EXPECT_NE(make_async_cache_reader(v6, "web-1", probe_with_timeouts()), nullptr);
}

}  // namespace
}  // namespace ghostwatch::cache
