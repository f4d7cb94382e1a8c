// A TCP server on 127.0.0.1 whose every connection is answered by a script, for unit tests of
// network clients (what they send, and what they make of errors, silence and closed sockets).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace ghostwatch::testing {

// Accepts connections on 127.0.0.1 and hands each to `serve` (one at a time), keeping all it was sent.
class ScriptedServer {
 public:
  using Serve = std::function<void(ScriptedServer&, int fd)>;
  explicit ScriptedServer(Serve serve) : serve_(std::move(serve)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(listen_fd_, 8), 0);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::jthread([this](std::stop_token stop) { accept_loop(stop); });
  }
  ~ScriptedServer() {
    thread_.request_stop();
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }
  int port() const { return port_; }
  int connections() {
    std::lock_guard lock(mu_);
    return connections_;
  }
  std::string received() {
    std::lock_guard lock(mu_);
    return received_;
  }
  // Reads until everything received on this connection ends with `tail`; false when it closed.
  bool read_until(int fd, std::string_view tail) {
    std::string mine;
    char buffer[512];
    while (mine.size() < tail.size() || mine.compare(mine.size() - tail.size(), tail.size(), tail) != 0) {
      const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) return false;
      mine.append(buffer, static_cast<std::size_t>(n));
      std::lock_guard lock(mu_);
      received_.append(buffer, static_cast<std::size_t>(n));
    }
    return true;
  }
  static void send_all(int fd, std::string_view reply) { ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL); }
  // Keeps the connection open until the client closes it (or sends anything more).
  static void hold_until_closed(int fd) {
    char b;
    ::recv(fd, &b, 1, 0);
  }
  // Sends `reply` one byte at a time, so that the reader sees it in pieces.
  static void send_in_pieces(int fd, std::string_view reply) {
    for (char c : reply) {
      ::send(fd, &c, 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

 private:
  void accept_loop(std::stop_token stop) {
    while (!stop.stop_requested()) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      {
        std::lock_guard lock(mu_);
        ++connections_;
      }
      serve_(*this, fd);
      ::close(fd);
    }
  }
  Serve serve_;
  int listen_fd_ = -1, port_ = 0;
  std::mutex mu_;
  int connections_ = 0;
  std::string received_;
  std::jthread thread_;
};

}  // namespace ghostwatch::testing
