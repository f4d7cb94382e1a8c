#include "agent/terminal.h"

#include <termios.h>
#include <unistd.h>

#include <cerrno>

namespace ghostwatch {

bool write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool terminal_hung_up(int fd) {
  termios settings{};
  return tcgetattr(fd, &settings) != 0 && errno == EIO;
}

}  // namespace ghostwatch
