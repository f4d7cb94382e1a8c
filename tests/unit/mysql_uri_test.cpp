#include "probes/mysql/mysql_uri.h"

#include "probes/mysql/mysql_connection.h"

#include <gtest/gtest.h>

namespace ghostwatch::mysql {
namespace {

TEST(MysqlUri, ParsesEveryPart) {
  auto u = parse_uri("mysql://gw:s%40cret@db.example:3307/app?ssl-mode=required&ssl-ca=/etc/ca.pem");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->user, "gw");
  EXPECT_EQ(u->password, "s@cret");
  EXPECT_EQ(u->host, "db.example");
  EXPECT_EQ(u->port, 3307u);
  EXPECT_EQ(u->database, "app");
  EXPECT_EQ(u->ssl_mode, "required");
  EXPECT_EQ(u->ssl_ca, "/etc/ca.pem");
}

TEST(MysqlUri, Defaults) {
  auto u = parse_uri("mariadb://gw@10.0.0.5");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 3306u);
  EXPECT_FALSE(u->password.has_value());
  EXPECT_EQ(u->database, "");
  auto ipv6 = parse_uri("mysql://gw@[::1]:3310/x");
  ASSERT_TRUE(ipv6.ok());
  EXPECT_EQ(ipv6->host, "::1");
  EXPECT_EQ(ipv6->port, 3310u);
  auto sock = parse_uri("mysql://gw@localhost/app?socket=/run/mysqld/mysqld.sock");
  ASSERT_TRUE(sock.ok());
  EXPECT_EQ(sock->socket, "/run/mysqld/mysqld.sock");
}

TEST(MysqlUri, RejectsBadInputWithoutQuotingThePassword) {
  for (const char* bad : {"postgresql://x@y/z", "host=1 user=2", "mysql://gw:pw@h:0/x", "mysql://gw:pw@h:99999/x",
                          "mysql://gw:pw@h:abc/x", "mysql://gw:pw@h/x?frobnicate=1", "mysql://gw:pw@h/x?ssl-mode=maybe",
                          "mysql://gw:p%4@h/x", "mysql://gw:pw@[::1/x", "mysql://gw:pw@h/x?socket"}) {
    auto u = parse_uri(bad);
    EXPECT_FALSE(u.ok()) << bad;
    if (!u.ok()) {
      EXPECT_EQ(u.error().message.find("pw"), std::string::npos) << u.error().message;
    }
  }
}

TEST(MysqlUri, TakesAClientCertificateAndTheVerifyModes) {
  auto u = parse_uri("mysql://gw@db/x?ssl-mode=verify_ca&ssl-ca=/ca.pem&ssl-cert=/c.pem&ssl-key=/c.key");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->ssl_mode, "verify_ca");
  EXPECT_EQ(u->ssl_cert, "/c.pem");
  EXPECT_EQ(u->ssl_key, "/c.key");
  EXPECT_EQ(parse_uri("mysql://gw@db/x?ssl-cert=/c.pem").error().message, "ssl-cert and ssl-key go together");
  EXPECT_EQ(parse_uri("mysql://gw@db/x?ssl-mode=verify_identity").error().message,
            "ssl-mode=verify_identity needs ssl-ca (the CA that signed the server's certificate)");
}

TEST(MysqlQuoteIdentifier, DoublesBackticks) {
  EXPECT_EQ(quote_identifier("ghostwatch"), "`ghostwatch`");
  EXPECT_EQ(quote_identifier("a`; DROP DATABASE x; --"), "`a``; DROP DATABASE x; --`");
}

}  // namespace
}  // namespace ghostwatch::mysql
