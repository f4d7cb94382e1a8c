// Reading the small files a config names (password files, certificates, the configs
// themselves) without hanging or exhausting memory on a path that names something else: a FIFO
// or a device blocks or never ends, so only regular files up to a size limit are read.
#pragma once

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>

#include "common/result.h"

namespace ghostwatch {

// Errors: code "unreadable" when the file cannot be opened at all; otherwise the message says
// what is wrong with it.
inline Result<std::string> read_small_file(const std::string& path, std::size_t max_bytes) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Error{"cannot read '" + path + "'", "unreadable"};
  if (!S_ISREG(st.st_mode)) return Error{"'" + path + "' is not a regular file"};
  if (static_cast<std::size_t>(st.st_size) > max_bytes) {
    return Error{"'" + path + "' is larger than " + std::to_string(max_bytes / 1024) + " KiB"};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot read '" + path + "'", "unreadable"};
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace ghostwatch
