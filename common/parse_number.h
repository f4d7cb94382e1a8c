// Strict number parsing: the whole text must be the number (no spaces, no trailing junk).
#pragma once

#include <charconv>
#include <optional>
#include <string_view>

namespace ghostwatch {

template <class T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  if (text.empty()) return std::nullopt;
  auto r = std::from_chars(text.data(), text.data() + text.size(), value);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

template <class T, class Text>
std::optional<T> parse_number(const std::optional<Text>& text) {
  return text ? parse_number<T>(std::string_view(*text)) : std::nullopt;
}

}  // namespace ghostwatch
