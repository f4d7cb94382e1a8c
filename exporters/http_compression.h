// Response compression for the agent's HTTP endpoint: a thousand targets' /metrics is some 4 MB
// of text that repeats itself, and Prometheus asks for gzip at every scrape.
#pragma once

#include <string>
#include <string_view>

namespace ghostwatch {

// Whether an Accept-Encoding header (RFC 9110 12.5.3) lets the response be gzip: "gzip" (or
// "x-gzip", or "*" where gzip is not named) with a q-value above 0.
bool accepts_gzip(std::string_view accept_encoding);

// `text` as one gzip member (RFC 1952), by libdeflate at level 1: on a thousand targets'
// /metrics it takes 60% of zlib's level-1 time for a 6% smaller answer, and higher levels cost
// two to three times the CPU for a sixth less (bench/render_bench).
std::string gzip_body(std::string_view text);

}  // namespace ghostwatch
