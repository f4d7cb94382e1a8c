// Compression of the agent's HTTP answers: the header's reading, the gzip itself, and the
// server's use of them on loopback.
#include "exporters/http_compression.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <gtest/gtest.h>

#include "exporters/http_server.h"

#include <random>
#include <string>

namespace ghostwatch {
namespace {

std::string gunzip(const std::string& gz) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);  // gzip only: a raw or zlib stream fails
  std::string out(1 << 20, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int status = inflate(&z, Z_FINISH);
  out.resize(z.total_out);
  inflateEnd(&z);
  EXPECT_EQ(status, Z_STREAM_END);
  return out;
}

TEST(HttpCompression, AcceptsGzipWhereTheHeaderAllowsIt) {
  // What Prometheus, curl --compressed and browsers send.
  EXPECT_TRUE(accepts_gzip("gzip"));
  EXPECT_TRUE(accepts_gzip("deflate, gzip"));
  EXPECT_TRUE(accepts_gzip("gzip, deflate, br"));
  EXPECT_TRUE(accepts_gzip("GZIP"));
  EXPECT_TRUE(accepts_gzip("x-gzip"));
  EXPECT_TRUE(accepts_gzip(" gzip ; q=0.5 "));
  EXPECT_TRUE(accepts_gzip("*"));
  EXPECT_TRUE(accepts_gzip("identity;q=1, *;q=0.1"));
}

TEST(HttpCompression, RefusesGzipOtherwise) {
  EXPECT_FALSE(accepts_gzip(""));
  EXPECT_FALSE(accepts_gzip("identity"));
  EXPECT_FALSE(accepts_gzip("deflate, br"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0.000"));
  EXPECT_FALSE(accepts_gzip("*, gzip;q=0")) << "named with q=0 outweighs the wildcard";
  EXPECT_FALSE(accepts_gzip("*;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip;q=banana")) << "an unreadable weight refuses";
  EXPECT_FALSE(accepts_gzip("gzip;q=2"));
  EXPECT_FALSE(accepts_gzip("gzipped"));
}

TEST(HttpCompression, GzipBodyInflatesToTheText) {
  std::string text;
  for (int i = 0; i < 5000; ++i) {
    text += "ghostwatch_visibility_lag_seconds_bucket{probe=\"pg\",target=\"t" + std::to_string(i) + "\",le=\"0.1\"} " +
            std::to_string(i * 7) + "\n";
  }
  const std::string gz = gzip_body(text);
  ASSERT_GE(gz.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);  // the gzip magic
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  EXPECT_LT(gz.size(), text.size() / 5);
  EXPECT_EQ(gunzip(gz), text);
  EXPECT_EQ(gunzip(gzip_body("")), "");
}

TEST(HttpCompression, GzipBodyOfTextThatDoesNotCompress) {
  // Random bytes do not fit the first, small buffer: the bound's must take them.
  std::mt19937 random(7);
  std::string text(200000, '\0');
  for (char& c : text) c = static_cast<char>(random());
  const std::string gz = gzip_body(text);
  EXPECT_GT(gz.size(), text.size() / 4 + 1024);
  EXPECT_EQ(gunzip(gz), text);
}

struct RawAnswer {
  std::string head, body;
};

// One HTTP/1.0 request with `extra` header lines; the answer split at its blank line.
RawAnswer get_over_loopback(int port, const std::string& path, const std::string& extra = "") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string text;
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n" + extra + "\r\n";
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
    char buf[65536];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  const std::size_t end = text.find("\r\n\r\n");
  if (end == std::string::npos) return {text, ""};
  return {text.substr(0, end + 2), text.substr(end + 4)};
}

class HttpServerCompression : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 300; ++i) large_ += "ghostwatch_polls_total{probe=\"pg\",target=\"t" + std::to_string(i) + "\"} 7\n";
    server_.route("/large", {"GET"}, [this](const HttpRequest&) { return HttpResponse{200, "text/plain", large_, {}}; });
    server_.route("/small", {"GET"}, [](const HttpRequest&) { return HttpResponse{200, "text/plain", "ok\n", {}}; });
    server_.start("127.0.0.1:0", std::nullopt);
    port_ = server_.ports().at(0);
  }
  std::string large_;
  HttpServer server_;
  int port_ = 0;
};

TEST_F(HttpServerCompression, GzipWhenAskedWithTheLengthOfWhatIsSent) {
  const RawAnswer a = get_over_loopback(port_, "/large", "Accept-Encoding: gzip\r\n");
  EXPECT_NE(a.head.find("Content-Encoding: gzip\r\n"), std::string::npos) << a.head;
  EXPECT_NE(a.head.find("Vary: Accept-Encoding\r\n"), std::string::npos) << a.head;
  EXPECT_NE(a.head.find("Content-Length: " + std::to_string(a.body.size()) + "\r\n"), std::string::npos) << a.head;
  EXPECT_LT(a.body.size(), large_.size() / 4);
  EXPECT_EQ(gunzip(a.body), large_);
}

TEST_F(HttpServerCompression, PlainWhenNotAskedOrRefusedOrSmall) {
  for (const std::string& extra : {std::string(), std::string("Accept-Encoding: identity\r\n"),
                                   std::string("Accept-Encoding: gzip;q=0\r\n")}) {
    const RawAnswer a = get_over_loopback(port_, "/large", extra);
    EXPECT_EQ(a.head.find("Content-Encoding"), std::string::npos) << extra << a.head;
    EXPECT_NE(a.head.find("Vary: Accept-Encoding\r\n"), std::string::npos) << "a cache must not serve it to a gzip client";
    EXPECT_EQ(a.body, large_) << extra;
  }
  const RawAnswer small = get_over_loopback(port_, "/small", "Accept-Encoding: gzip\r\n");
  EXPECT_EQ(small.head.find("Content-Encoding"), std::string::npos) << small.head;
  EXPECT_EQ(small.body, "ok\n");
}

}  // namespace
}  // namespace ghostwatch
