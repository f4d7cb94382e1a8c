#include "agent/terminal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace ghostwatch {
namespace {

struct Pty {
  int master = -1, slave = -1;
  Pty() {
    master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) return;
    slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  }
  ~Pty() {
    if (master >= 0) close(master);
    if (slave >= 0) close(slave);
  }
};

TEST(Terminal, ATerminalWhoseOtherSideClosedHasHungUp) {
  Pty pty;
  ASSERT_GE(pty.slave, 0);
  EXPECT_FALSE(terminal_hung_up(pty.slave));
  EXPECT_TRUE(write_all(pty.slave, "a table\n"));
  close(pty.master);
  pty.master = -1;
  EXPECT_TRUE(terminal_hung_up(pty.slave));
  errno = 0;
  EXPECT_FALSE(write_all(pty.slave, "a table\n"));
  EXPECT_EQ(errno, EIO);
}

TEST(Terminal, APipeIsNeverAHungUpTerminalAndTakesAWholeTable) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  EXPECT_FALSE(terminal_hung_up(fds[1]));
  // Larger than a pipe's buffer: the kernel takes it in parts, and all of it arrives.
  const std::string table(200'000, 'x');
  std::size_t received = 0;
  std::thread reader([&] {
    char buf[4096];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) received += static_cast<std::size_t>(n);
  });
  EXPECT_TRUE(write_all(fds[1], table));
  close(fds[1]);
  reader.join();
  close(fds[0]);
  EXPECT_EQ(received, table.size());
}

TEST(Terminal, APipeWhoseReaderQuitFailsTheWrite) {
  struct sigaction ignore {}, before{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &before);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);
  errno = 0;
  EXPECT_FALSE(write_all(fds[1], "a table\n"));
  EXPECT_EQ(errno, EPIPE);
  close(fds[1]);
  sigaction(SIGPIPE, &before, nullptr);
}

}  // namespace
}  // namespace ghostwatch
