// Web config files (TLS and basic auth): parse or a ConfigError.
#include "agent/config.h"
#include "agent/web_config.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace ghostwatch;
  try {
    const WebConfig w = parse_web_config(std::string(fuzz::text(data, size)), "/tmp/web.yml");
    (void)w;
  } catch (const ConfigError&) {
  }
  return 0;
}
