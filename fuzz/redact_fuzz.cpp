// The scrubber: after registering a secret, no output contains it.
#include "common/redact.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace ghostwatch;
  const auto [secret, text] = fuzz::two_parts(data, size);
  register_secret(secret);
  const std::string out = scrub(text);
  if (secret.size() >= 3 && secret != "***") FUZZ_CHECK(out.find(secret) == std::string::npos);
  forget_secrets();
  return 0;
}
