#include "probes/postgres/pg_connection.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/redact.h"

namespace ghostwatch::pg {
namespace {

using std::chrono::milliseconds;

TEST(Lsn, ParsesHexHalves) {
  EXPECT_EQ(parse_lsn("0/0"), 0u);
  EXPECT_EQ(parse_lsn("16/B374D848"), (0x16ull << 32) | 0xB374D848ull);
  EXPECT_EQ(parse_lsn("FFFFFFFF/FFFFFFFF"), ~0ull);
}

TEST(Lsn, RejectsMalformed) {
  for (const char* bad : {"", "/", "1/", "/1", "12", "1/2/3", "G/1", "1/x", "100000000/0"}) {
    EXPECT_FALSE(parse_lsn(bad).has_value()) << bad;
  }
}

TEST(QuoteIdentifier, DoublesQuotes) {
  EXPECT_EQ(quote_identifier("ghostwatch"), "\"ghostwatch\"");
  EXPECT_EQ(quote_identifier("a\"; DROP TABLE x; --"), "\"a\"\"; DROP TABLE x; --\"");
}

// A TCP listener that accepts connections but never says a word, like a frozen server.
class SilentServer {
 public:
  SilentServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 8);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(Connection, ConnectHasADeadlineAgainstASilentServer) {
  SilentServer server;
  ConnectOptions o;
  o.dsn = "host=127.0.0.1 port=" + std::to_string(server.port()) + " dbname=x user=y sslmode=disable";
  o.connect_timeout = milliseconds(200);
  const auto start = std::chrono::steady_clock::now();
  auto c = Connection::open(o, std::stop_token());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("connect timed out after 200ms"), std::string::npos) << c.error().message;
  // Bounded by the deadline, not by the kernel's TCP timeouts (minutes).
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(Connection, StopInterruptsAConnect) {
  SilentServer server;
  ConnectOptions o;
  o.dsn = "host=127.0.0.1 port=" + std::to_string(server.port()) + " dbname=x user=y sslmode=disable";
  o.connect_timeout = std::chrono::seconds(600);
  std::stop_source stop;
  stop.request_stop();
  auto c = Connection::open(o, stop.get_token());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("interrupted by shutdown"), std::string::npos);
}

TEST(Connection, RefusedConnectionIsAnErrorWithoutTheSecret) {
  SilentServer server;
  const int port = server.port();
  ConnectOptions o;
  // A malformed DSN makes libpq quote it back; the password must not come with it.
  register_secret("pw-in-dsn-789");
  o.dsn = "host=127.0.0.1 port=" + std::to_string(port) + " password=pw-in-dsn-789 bogus";
  auto c = Connection::open(o, std::stop_token());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message.find("pw-in-dsn-789"), std::string::npos) << c.error().message;
}

// Names are looked up before libpq connects, whose own lookup would block the event loop.
TEST(Connection, TellsWhichDsnsNeedANameLookup) {
  unsetenv("PGHOST");
  unsetenv("PGPORT");
  const auto needs = [](const char* dsn) { return hosts_to_look_up(dsn).has_value(); };
  EXPECT_FALSE(needs("host=127.0.0.1 port=5432 dbname=app"));
  EXPECT_FALSE(needs("host=::1 dbname=app"));
  EXPECT_FALSE(needs("host=127.0.0.1,10.0.0.2 dbname=app"));
  EXPECT_FALSE(needs("host=/var/run/postgresql dbname=app"));
  EXPECT_FALSE(needs("dbname=app"));  // the default socket directory
  EXPECT_FALSE(needs("host=db.example hostaddr=10.0.0.1"));
  EXPECT_FALSE(needs("postgresql://127.0.0.1:5432/app"));
  EXPECT_FALSE(needs("host='unbalanced"));  // libpq says why when it connects
  EXPECT_TRUE(needs("host=db.example dbname=app"));
  EXPECT_TRUE(needs("host=127.0.0.1,replica.example dbname=app"));
  EXPECT_TRUE(needs("postgresql://replica.example/app"));
  EXPECT_TRUE(needs("host=localhost"));
  const auto list = hosts_to_look_up("host=a.example,10.0.0.9,a.example,/tmp,b.example port=5433");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->names(), (std::vector<std::string>{"a.example", "b.example"}));
  EXPECT_EQ(list->ports, std::vector<std::string>{"5433"});
}

TEST(Connection, ResolvedHostsBecomeOneHostaddrPerAddressUnderTheirNames) {
  const HostList one{{"db.example"}, {"5433"}};
  EXPECT_EQ(resolved_keywords(one, {"db.example"}, {{"::1", "127.0.0.1"}}),
            (Keywords{{"host", "db.example,db.example"}, {"hostaddr", "::1,127.0.0.1"}}))
      << "a single port applies to every host: left as the DSN gives it";
  const HostList mixed{{"a.example", "10.0.0.9", "/tmp", "b.example"}, {"1", "2", "3", "4"}};
  EXPECT_EQ(resolved_keywords(mixed, {"a.example", "b.example"}, {{"10.0.0.1", "10.0.0.2"}, {"10.0.0.3"}}),
            (Keywords{{"host", "a.example,a.example,10.0.0.9,/tmp,b.example"},
                      {"hostaddr", "10.0.0.1,10.0.0.2,10.0.0.9,,10.0.0.3"},
                      {"port", "1,1,2,3,4"}}));
}

}  // namespace
}  // namespace ghostwatch::pg
