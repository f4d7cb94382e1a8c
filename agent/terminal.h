// The live view's output: whole writes that report a reader gone, and a check for a terminal
// that hung up.
#pragma once

#include <string_view>

namespace ghostwatch {

// Writes all of `text` to `fd`, retrying short writes and EINTR. False with errno set when the
// other side is gone (EIO from a hung-up terminal, EPIPE from a closed pipe).
bool write_all(int fd, std::string_view text);

// True when `fd` was a terminal that has since hung up: the kernel answers EIO to every call on
// it, where a file that never was a terminal answers ENOTTY.
bool terminal_hung_up(int fd);

}  // namespace ghostwatch
