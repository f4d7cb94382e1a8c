// Helpers for the libFuzzer targets: turn the raw input into the strings parsers take.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace ghostwatch::fuzz {

inline std::string_view text(const uint8_t* data, std::size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// Splits the input at its first NUL byte (one input, two strings), or in the middle.
inline std::pair<std::string, std::string> two_parts(const uint8_t* data, std::size_t size) {
  const std::string_view all = text(data, size);
  std::size_t cut = all.find('\0');
  if (cut == std::string_view::npos) cut = all.size() / 2;
  return {std::string(all.substr(0, cut)), std::string(all.substr(std::min(all.size(), cut + 1)))};
}

// A failed check: abort so that libFuzzer records the input (and the replay fails).
#define FUZZ_CHECK(cond)      \
  do {                        \
    if (!(cond)) __builtin_trap(); \
  } while (0)

}  // namespace ghostwatch::fuzz
