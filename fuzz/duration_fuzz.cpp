// Durations: whatever parses formats back to a text that parses to the same duration.
#include "agent/duration.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace ghostwatch;
  const auto d = parse_duration(fuzz::text(data, size));
  if (d && *d >= Duration(0)) {
    const auto again = parse_duration(format_duration(*d));
    FUZZ_CHECK(again && *again == *d);
  }
  return 0;
}
