// Whole config files: parse or a ConfigError, never a crash, a hang or another exception; a
// config that parses renders to YAML that parses again.
#include "agent/config.h"
#include "common/redact.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace ghostwatch;
  try {
    const Config c = parse_config(std::string(fuzz::text(data, size)), "fuzz.yaml");
    const std::string rendered = render_config(c);
    try {
      parse_config(rendered, "rendered.yaml");
    } catch (const ConfigError&) {
      // Rendering masks passwords and drops password_file contents; a reparse may then differ,
      // but it must not crash either.
    }
  } catch (const ConfigError&) {
  }
  forget_secrets();  // one process parses millions of configs
  return 0;
}
