// Basic auth credentials: base64 that decodes re-encodes to the same text.
#include "common/base64.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace ghostwatch;
  const std::string_view input = fuzz::text(data, size);
  if (auto decoded = base64_decode(input)) FUZZ_CHECK(base64_encode(*decoded) == input);
  FUZZ_CHECK(base64_decode(base64_encode(input)) == std::string(input));
  return 0;
}
