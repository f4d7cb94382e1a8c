// SQL identifier quoting shared by the backends, so names from the config cannot inject SQL:
// the name is wrapped in `quote` and every `quote` inside it is doubled.
#pragma once

#include <string>
#include <string_view>

namespace ghostwatch {

inline std::string quote_sql_identifier(std::string_view name, char quote) {
  std::string out(1, quote);
  for (char c : name) {
    if (c == quote) out += quote;
    out += c;
  }
  return out + quote;
}

}  // namespace ghostwatch
