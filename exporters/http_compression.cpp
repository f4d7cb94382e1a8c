#include "exporters/http_compression.h"

#include <libdeflate.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>

namespace ghostwatch {
namespace {

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// The q-value of one list element ("gzip;q=0.5"): 1 without one, 0 when unreadable (refusing
// an encoding is the safe reading of a malformed weight).
double q_value(std::string_view parameters) {
  while (!parameters.empty()) {
    const std::size_t semicolon = parameters.find(';');
    const std::string_view parameter = trim_spaces(parameters.substr(0, semicolon));
    parameters = semicolon == std::string_view::npos ? std::string_view{} : parameters.substr(semicolon + 1);
    if (parameter.size() < 2 || std::tolower(static_cast<unsigned char>(parameter[0])) != 'q' || parameter[1] != '=') {
      continue;
    }
    const std::string value(trim_spaces(parameter.substr(2)));
    char* end = nullptr;
    const double q = std::strtod(value.c_str(), &end);
    return end != value.c_str() && *end == '\0' && q >= 0 && q <= 1 ? q : 0;
  }
  return 1;
}

}  // namespace

bool accepts_gzip(std::string_view header) {
  std::optional<double> gzip, any;
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    const std::string_view element = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    const std::size_t semicolon = element.find(';');
    const std::string_view coding = trim_spaces(element.substr(0, semicolon));
    const double q = semicolon == std::string_view::npos ? 1 : q_value(element.substr(semicolon + 1));
    if (equals_ignoring_case(coding, "gzip") || equals_ignoring_case(coding, "x-gzip")) gzip = q;
    else if (coding == "*") any = q;
  }
  return gzip ? *gzip > 0 : any.value_or(0) > 0;
}

std::string gzip_body(std::string_view text) {
  std::unique_ptr<libdeflate_compressor, decltype(&libdeflate_free_compressor)> compressor(
      libdeflate_alloc_compressor(1), &libdeflate_free_compressor);
  if (!compressor) throw std::bad_alloc();
  // The metrics text compresses to about 5 %: a buffer of a quarter of it fits, where the bound
  // (more than the text) would be zero-filled and its pages faulted in at every scrape. Text
  // that does not compress (libdeflate answers 0 when it does not fit) takes the bound.
  const std::size_t bound = libdeflate_gzip_compress_bound(compressor.get(), text.size());
  for (std::size_t capacity : {std::min(bound, text.size() / 4 + 1024), bound}) {
    std::string out(capacity, '\0');
    const std::size_t size =
        libdeflate_gzip_compress(compressor.get(), text.data(), text.size(), out.data(), out.size());
    if (size > 0) {
      out.resize(size);
      return out;
    }
  }
  throw std::runtime_error("gzip: the answer did not fit its bound");
}

}  // namespace ghostwatch
