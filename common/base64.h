// Standard base64 (RFC 4648, with padding), as HTTP basic auth sends credentials.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ghostwatch {

// nullopt when `text` is not valid, canonical padded base64 (unused bits must be zero).
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

}  // namespace ghostwatch
