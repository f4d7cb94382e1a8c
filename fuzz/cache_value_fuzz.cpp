// Values read from caches, as every format reads them: a seq or a timestamp, or an error.
#include "common/timestamp.h"
#include "fuzz/fuzz_input.h"
#include "probes/cache/cache_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace ghostwatch;
  const std::string value(fuzz::text(data, size));
  for (auto format : {CacheTargetConfig::Format::plain, CacheTargetConfig::Format::json, CacheTargetConfig::Format::hash}) {
    CacheTargetConfig c;
    c.format = format;
    c.field = format == CacheTargetConfig::Format::json ? "/canary/seq" : "seq";
    (void)cache::parse_cached_seq(value, c);
    (void)cache::parse_cached_timestamp(value, c);
  }
  (void)parse_epoch_micros(value);
  return 0;
}
